import assert from 'node:assert/strict';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { MCPToolPolicyResource } from '../src/config/types.js';
import { JSONRPC_CODES, parseJsonRpcBody, rewriteBatch, type JsonRpcInspection } from '../src/mcp/jsonrpc.js';
import { isValidToolName, MAX_TOOL_NAME_LENGTH, toolNameProblem } from '../src/mcp/tool-name.js';
import { compileToolPolicy, evaluateToolPolicy } from '../src/policy/tool-policy.js';
import { mcpInfoOf, mcpSpanName } from '../src/telemetry/mcp-info.js';
import { MAX_LABEL_VALUE_LENGTH, Metrics } from '../src/telemetry/metrics.js';
import { SPAN_LIMITS, SpanKind, Tracing } from '../src/telemetry/tracing.js';
import { truncate, TRUNCATION_MARK } from '@skein/core';

const HUGE = 'x'.repeat(60_000);
const call = (name: string, id: number | string = 1): string => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });

function refusedProblem(inspection: JsonRpcInspection): { code: number; message: string; where: string; id: unknown } {
  if (inspection.ok) assert.fail('expected the body to be refused');
  return inspection.problem;
}

describe('caller-chosen names are bounded', () => {
  describe('tool name form', () => {
    it('accepts the MCP specification\'s recommended form, up to 128 characters', () => {
      for (const name of ['get_weather', 'admin.tools.list', 'files/read-v2', 'A', 'x'.repeat(MAX_TOOL_NAME_LENGTH)]) assert.equal(toolNameProblem(name), undefined, name);
    });

    it('refuses longer names and other characters, without repeating the name', () => {
      for (const name of ['x'.repeat(MAX_TOOL_NAME_LENGTH + 1), HUGE, 'get weather', 'tool,other', 'naïve', 'a\nb', 'a"b', '']) {
        const problem = toolNameProblem(name);
        assert.ok(problem, `"${name.slice(0, 20)}" is refused`);
        if (name.length > 0) assert.ok(!problem.includes(name), 'the problem never repeats the name');
        assert.equal(isValidToolName(name), false);
      }
    });
  });

  describe('JSON-RPC inspector', () => {
    it('refuses a tools/call whose name is too long with -32602, naming the problem but not the name', () => {
      const problem = refusedProblem(parseJsonRpcBody(call(HUGE, 9)));
      assert.equal(problem.code, JSONRPC_CODES.INVALID_PARAMS);
      assert.equal(problem.where, '/params/name');
      assert.equal(problem.id, 9);
      assert.match(problem.message, /is 60000 characters long, over the limit of 128/);
      assert.ok(problem.message.length < 300, 'the answer stays small');
    });

    it('refuses a tools/call whose name has characters outside [A-Za-z0-9_./-]', () => {
      const problem = refusedProblem(parseJsonRpcBody(call('drop table; --')));
      assert.equal(problem.code, JSONRPC_CODES.INVALID_PARAMS);
      assert.match(problem.message, /may only contain letters, digits/);
      assert.ok(!problem.message.includes('drop table'));
    });

    it('still accepts valid names, including one of exactly 128 characters', () => {
      const inspection = parseJsonRpcBody(call('y'.repeat(128)));
      assert.ok(inspection.ok);
      const [message] = inspection.messages;
      assert.equal(message?.kind === 'request' ? message.toolName : undefined, 'y'.repeat(128));
    });

    it('answers an invalid name inside a batch on its own and forwards the rest', () => {
      const body = `[${call('ok_tool', 1)},${call(HUGE, 2)}]`;
      const inspection = parseJsonRpcBody(body);
      assert.ok(inspection.ok);
      const plan = rewriteBatch(inspection, () => undefined);
      assert.deepEqual(plan.forwarded, [0]);
      assert.equal(plan.answers.length, 1);
      assert.equal(plan.answers[0]?.id, 2);
      assert.equal(plan.answers[0]?.error.code, JSONRPC_CODES.INVALID_PARAMS);
      assert.ok(JSON.stringify(plan.answers).length < 500);
    });
  });

  describe('mcpInfoOf', () => {
    const body = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

    it('does not report an invalid tool name as a tool, so spans and metrics never see it', () => {
      for (const name of [HUGE, 'x'.repeat(129), 'has space', 'semi;colon']) {
        const info = mcpInfoOf(body({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name } }), 'application/json');
        assert.ok(info);
        assert.equal(info.method, 'tools/call');
        assert.equal(info.tool, undefined);
        assert.equal(mcpSpanName(info), 'tools/call');
      }
    });

    it('still reports a valid tool', () => {
      assert.equal(mcpInfoOf(body({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'ns/get.v2' } }), 'application/json')?.tool, 'ns/get.v2');
    });

    it('ignores a method too long to be an MCP method', () => {
      assert.equal(mcpInfoOf(body({ jsonrpc: '2.0', id: 1, method: 'm'.repeat(10_000) }), 'application/json'), undefined);
    });
  });

  describe('metric labels', () => {
    it('truncates every label value to 128 characters', () => {
      const metrics = new Metrics();
      const counter = metrics.counter('calls_total', 'per tool', ['tool', 'other']);
      for (let i = 0; i < 150; i++) counter.inc({ tool: `${i}-${HUGE}`, other: 'short' });
      const text = metrics.exposition();
      assert.ok(text.length < 150 * 200, `the exposition is ${text.length} characters`);
      for (const line of text.split('\n').filter((entry) => entry.startsWith('calls_total{'))) {
        const value = /tool="([^"]*)"/.exec(line)?.[1] ?? '';
        assert.equal(value.length, MAX_LABEL_VALUE_LENGTH);
        assert.ok(value.endsWith(TRUNCATION_MARK));
        assert.match(line, /other="short"/);
      }
    });

    it('counts the same long value in one series, and a short value as it is', () => {
      const metrics = new Metrics();
      const counter = metrics.counter('calls_total', 'per tool', ['tool']);
      counter.inc({ tool: HUGE });
      counter.inc({ tool: HUGE });
      counter.inc({ tool: 'get_weather' });
      assert.equal(counter.get({ tool: HUGE }), 2);
      assert.match(metrics.exposition(), /calls_total\{tool="get_weather"\} 1/);
    });
  });

  describe('decision reasons', () => {
    const resource: MCPToolPolicyResource = {
      apiVersion: 'skein.dev/v1alpha1',
      kind: 'MCPToolPolicy',
      metadata: { name: 'limits' },
      spec: { rules: [{ name: 'reads', action: 'allow', methods: ['tools/call'], tools: ['get_*'] }] },
    };
    const compiled = compileToolPolicy(resource, 'limits.yaml', { target: 'mcp-server' });

    it('truncate a long tool name and method in the reason and the decision', () => {
      const denied = evaluateToolPolicy(compiled, { callerAppId: 'agent', method: 'tools/call', toolName: HUGE });
      assert.equal(denied.allowed, false);
      assert.ok(denied.reason.length < 400, `the reason is ${denied.reason.length} characters`);
      assert.ok(denied.reason.includes(TRUNCATION_MARK));
      assert.equal(denied.tool?.length, 128);
      const odd = evaluateToolPolicy(compiled, { callerAppId: 'agent', method: HUGE });
      assert.ok(odd.reason.length < 400);
      assert.equal(odd.method?.length, 128);
    });

    it('keep short names whole', () => {
      const allowed = evaluateToolPolicy(compiled, { callerAppId: 'agent', method: 'tools/call', toolName: 'get_weather' });
      assert.equal(allowed.reason, 'rule "reads" allows tools/call "get_weather"');
      assert.equal(allowed.tool, 'get_weather');
    });
  });

  describe('span limits', () => {
    it('bound attribute values, attributes and events on every span of the sidecar\'s provider', async () => {
      const finished: ReadableSpan[] = [];
      const exporter: SpanExporter = {
        export: (spans: ReadableSpan[], done: (result: ExportResult) => void) => {
          finished.push(...spans);
          done({ code: ExportResultCode.SUCCESS });
        },
        shutdown: () => Promise.resolve(),
      };
      const tracing = new Tracing({ appId: 'mcp-server', namespace: 'default', samplingRate: 1, otlpUrl: undefined }, [exporter]);
      const { span } = tracing.start('tools/call', SpanKind.SERVER, tracing.extract({}), { 'gen_ai.tool.name': HUGE });
      for (let i = 0; i < 500; i++) span.setAttribute(`extra.${i}`, i);
      for (let i = 0; i < 500; i++) span.addEvent('skein.decision', { 'skein.decision.reason': HUGE });
      span.end();
      await tracing.shutdown();
      const [recorded] = finished;
      assert.ok(recorded);
      assert.equal(String(recorded.attributes['gen_ai.tool.name']).length, SPAN_LIMITS.attributeValueLengthLimit);
      assert.equal(Object.keys(recorded.attributes).length, SPAN_LIMITS.attributeCountLimit);
      assert.equal(recorded.events.length, SPAN_LIMITS.eventCountLimit);
      assert.equal(String(recorded.events[0]?.attributes?.['skein.decision.reason']).length, SPAN_LIMITS.attributeValueLengthLimit);
    });
  });

  describe('truncate', () => {
    it('keeps short text, marks cut text, and never splits a surrogate pair', () => {
      assert.equal(truncate('abc', 5), 'abc');
      assert.equal(truncate('abcdef', 4), `abc${TRUNCATION_MARK}`);
      const cut = truncate(`ab${'😀'.repeat(10)}`, 4);
      assert.ok(cut.length <= 4);
      assert.doesNotMatch(cut, /[\uD800-\uDBFF](?![\uDC00-\uDFFF])/, 'no lone high surrogate');
    });
  });
});
