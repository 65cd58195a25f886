import assert from 'node:assert/strict';
import { isToolError, mcpInfoOf, mcpSpanName } from '../src/telemetry/mcp-info.js';
import { withTraceHeaders } from '../src/telemetry/spans.js';
import { ToolResultWatch } from '../src/telemetry/tool-result.js';
import { tracingOptionsFrom } from '../src/telemetry/tracing.js';

const body = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

describe('mcpInfoOf', function () {
  it('reads method, tool, id and _meta trace context of a tools/call', function () {
    const info = mcpInfoOf(body({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'get_inventory', arguments: { secret: 'x' }, _meta: { traceparent: '00-a-b-01', tracestate: 'k=v' } } }), 'application/json');
    assert.deepEqual(info, { method: 'tools/call', tool: 'get_inventory', requestId: 7, count: 1, traceparent: '00-a-b-01', tracestate: 'k=v' });
    assert.equal(mcpSpanName(info), 'tools/call get_inventory');
  });

  it('counts a batch and names it by its first message', function () {
    const info = mcpInfoOf(body([{ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { jsonrpc: '2.0', id: 2, method: 'ping' }]), undefined);
    assert.equal(info?.method, 'tools/list');
    assert.equal(info?.count, 2);
    assert.equal(mcpSpanName(info), 'tools/list');
  });

  it('ignores what is not JSON-RPC: other content types, garbage, empty bodies', function () {
    assert.equal(mcpInfoOf(body({ jsonrpc: '2.0', id: 1, method: 'x' }), 'text/plain'), undefined);
    assert.equal(mcpInfoOf(Buffer.from('{nope'), 'application/json'), undefined);
    assert.equal(mcpInfoOf(Buffer.alloc(0), 'application/json'), undefined);
    assert.equal(mcpInfoOf(body({ hello: 'world' }), 'application/json'), undefined);
  });
});

describe('tool errors', function () {
  it('finds isError in a JSON answer, for the right request id', function () {
    const answer = JSON.stringify({ jsonrpc: '2.0', id: 3, result: { isError: true, content: [] } });
    assert.equal(isToolError(answer, 3), true);
    assert.equal(isToolError(answer, 4), false);
    assert.equal(isToolError(JSON.stringify({ jsonrpc: '2.0', id: 3, result: { content: [] } }), 3), false);
  });

  it('watches JSON and SSE answers as they stream by', function () {
    const json = new ToolResultWatch('application/json');
    json.push(Buffer.from('{"jsonrpc":"2.0","id":1,"result":{"isE'));
    json.push(Buffer.from('rror":true}}'));
    assert.equal(json.failed(), true);
    const sse = new ToolResultWatch('text/event-stream');
    sse.push(Buffer.from('event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{"content":[]}}\n\n'));
    assert.equal(sse.failed(), false);
    sse.push(Buffer.from('event: message\ndata: {"jsonrpc":"2.0","id":2,"result":{"isError":true}}\n\n'));
    assert.equal(sse.failed(), true);
  });
});

describe('trace headers', function () {
  it('replace whatever trace context the caller sent, and leave everything else', function () {
    const out = withTraceHeaders([['traceparent', 'old'], ['tracestate', 'old'], ['x', '1']], { traceparent: 'new' });
    assert.deepEqual(out, [['x', '1'], ['traceparent', 'new']]);
    const untouched: Array<[string, string]> = [['traceparent', 'old']];
    assert.equal(withTraceHeaders(untouched, {}), untouched);
  });
});

describe('tracing options', function () {
  it('follow Configuration.spec.tracing', function () {
    assert.deepEqual(tracingOptionsFrom(undefined, 'a', 'default'), { appId: 'a', namespace: 'default', samplingRate: 0, otlpUrl: undefined });
    assert.equal(tracingOptionsFrom({}, 'a', 'd').samplingRate, 1);
    assert.equal(tracingOptionsFrom({ samplingRate: '0.25' }, 'a', 'd').samplingRate, 0.25);
    assert.equal(tracingOptionsFrom({ otel: { endpointAddress: 'collector:4318' } }, 'a', 'd').otlpUrl, 'http://collector:4318/v1/traces');
    assert.equal(tracingOptionsFrom({ otel: { endpointAddress: 'collector:4318', isSecure: true } }, 'a', 'd').otlpUrl, 'https://collector:4318/v1/traces');
    assert.equal(tracingOptionsFrom({ otel: { endpointAddress: 'http://c:1/v1/traces' } }, 'a', 'd').otlpUrl, 'http://c:1/v1/traces');
  });
});
