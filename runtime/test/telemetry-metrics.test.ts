import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { Metrics, MetricsMiddleware, OVERFLOW_LABEL_VALUE } from '../src/telemetry/metrics.js';
import { MetricsServer } from '../src/telemetry/metrics-server.js';
import { SkeinError } from '@skein/core';
import type { Call, CallResponse } from '../src/pipeline/pipeline.js';

function request(fields: Partial<Call> = {}): Call {
  return {
    caller: { trustDomain: 'public', namespace: 'default', appId: 'agent' },
    target: { appId: 'mcp-server', namespace: 'default' },
    verb: 'post',
    method: 'mcp',
    query: '',
    headers: [],
    body: Buffer.alloc(0),
    decisions: [],
    signal: new AbortController().signal,
    ...fields,
  };
}

function answer(status: number): CallResponse {
  return { status, headers: [], body: Readable.from([]) };
}

/** The samples of `text` as `name{labels} value` lines, comments dropped. */
function samples(text: string): string[] {
  return text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
}

describe('metrics registry', () => {
  it('writes counters in the text exposition format, labels escaped, constant labels first', () => {
    const metrics = new Metrics({ constantLabels: { app_id: 'a' } });
    const counter = metrics.counter('skein_things_total', 'Things.\nCounted with a \\ backslash.', ['kind']);
    counter.inc({ kind: 'plain' });
    counter.inc({ kind: 'plain' }, 2);
    counter.inc({ kind: 'say "hi"\nback\\slash' });
    assert.equal(
      metrics.exposition(),
      [
        '# HELP skein_things_total Things.\\nCounted with a \\\\ backslash.',
        '# TYPE skein_things_total counter',
        'skein_things_total{app_id="a",kind="plain"} 3',
        'skein_things_total{app_id="a",kind="say \\"hi\\"\\nback\\\\slash"} 1',
        '',
      ].join('\n'),
    );
    assert.equal(counter.get({ kind: 'plain' }), 3);
    assert.equal(counter.get({ kind: 'never' }), 0);
    assert.doesNotMatch(metrics.exposition(), /never/, 'reading a series does not create it');
  });

  it('writes histograms with cumulative buckets, +Inf, sum and count; empty labels are left out', () => {
    const metrics = new Metrics();
    const histogram = metrics.histogram('skein_wait_seconds', 'Waits.', ['tool'], [0.1, 1, 0.5]);
    histogram.observe({ tool: '' }, 0.05);
    histogram.observe({ tool: '' }, 0.5);
    histogram.observe({ tool: '' }, 7);
    assert.deepEqual(samples(metrics.exposition()), [
      'skein_wait_seconds_bucket{le="0.1"} 1',
      'skein_wait_seconds_bucket{le="0.5"} 2',
      'skein_wait_seconds_bucket{le="1"} 2',
      'skein_wait_seconds_bucket{le="+Inf"} 3',
      'skein_wait_seconds_sum 7.55',
      'skein_wait_seconds_count 3',
    ]);
  });

  it('is get-or-create by name, and refuses the same name with another type or labels', () => {
    const metrics = new Metrics();
    assert.equal(metrics.counter('c_total', 'c', ['x']), metrics.counter('c_total', 'c', ['x']));
    assert.throws(() => metrics.histogram('c_total', 'c', ['x']), /already registered as a counter/);
    assert.throws(() => metrics.counter('c_total', 'c', ['y']), /already registered/);
    assert.throws(() => metrics.counter('bad-name', 'c'), /invalid metric name/);
    assert.throws(() => metrics.counter('d_total', 'd', ['__reserved']), /invalid label name/);
    assert.throws(() => metrics.counter('e_total', 'e').inc({}, -1), /cannot be increased by -1/);
  });

  it('folds label combinations beyond the series limit into one overflow series', () => {
    const metrics = new Metrics({ maxSeriesPerMetric: 2 });
    const counter = metrics.counter('tools_total', 'per tool', ['tool']);
    for (const tool of ['a', 'b', 'c', 'd', 'a']) counter.inc({ tool });
    assert.deepEqual(samples(metrics.exposition()), ['tools_total{tool="a"} 2', 'tools_total{tool="b"} 1', `tools_total{tool="${OVERFLOW_LABEL_VALUE}"} 2`]);
  });
});

describe('MetricsMiddleware', () => {
  it('counts and times calls by peer, verb, MCP method and tool, and status; the MCP labels come from later stages', async () => {
    const metrics = new Metrics({ constantLabels: { app_id: 'mcp-server' } });
    const stage = new MetricsMiddleware(metrics, 'inbound');
    await stage.handle(request(), async (inner) => {
      inner.mcp = { method: 'tools/call', tool: 'get_weather', count: 1 };
      return answer(200);
    });
    await stage.handle(request(), async () => answer(503));
    const text = metrics.exposition();
    assert.match(text, /^skein_requests_total\{app_id="mcp-server",direction="inbound",peer_app_id="agent",verb="POST",mcp_method="tools\/call",mcp_tool="get_weather",status="200"\} 1$/m);
    assert.match(text, /^skein_requests_total\{app_id="mcp-server",direction="inbound",peer_app_id="agent",verb="POST",status="503"\} 1$/m);
    assert.match(text, /^skein_request_errors_total\{app_id="mcp-server",direction="inbound",peer_app_id="agent",verb="POST",error="HTTP_503"\} 1$/m);
    assert.doesNotMatch(text, /skein_request_errors_total\{[^}]*mcp_tool="get_weather"/, 'a 200 is not an error');
    assert.match(text, /^skein_request_duration_seconds_count\{app_id="mcp-server",direction="inbound",peer_app_id="agent",verb="POST",mcp_method="tools\/call",mcp_tool="get_weather"\} 1$/m);
  });

  it('counts a refusal thrown by a later stage with its code and status, and rethrows it unchanged', async () => {
    const metrics = new Metrics();
    const stage = new MetricsMiddleware(metrics, 'inbound');
    const refusal = new SkeinError('ERR_DIRECT_INVOKE_ACL_DENIED', 'denied');
    await assert.rejects(
      stage.handle(request({ caller: undefined }), () => Promise.reject(refusal)),
      (error) => error === refusal,
    );
    const text = metrics.exposition();
    assert.match(text, /^skein_requests_total\{direction="inbound",peer_app_id="unknown",verb="POST",status="403"\} 1$/m);
    assert.match(text, /^skein_request_errors_total\{direction="inbound",peer_app_id="unknown",verb="POST",error="ERR_DIRECT_INVOKE_ACL_DENIED"\} 1$/m);
  });

  it('names the callee as the peer on the outbound side, and shares instruments across stages', async () => {
    const metrics = new Metrics();
    await new MetricsMiddleware(metrics, 'outbound').handle(request({ caller: undefined }), async () => answer(204));
    await new MetricsMiddleware(metrics, 'inbound').handle(request(), async () => answer(204));
    const text = metrics.exposition();
    assert.match(text, /^skein_requests_total\{direction="outbound",peer_app_id="mcp-server",verb="POST",status="204"\} 1$/m);
    assert.match(text, /^skein_requests_total\{direction="inbound",peer_app_id="agent",verb="POST",status="204"\} 1$/m);
    assert.equal(text.match(/^# TYPE skein_requests_total counter$/gm)?.length, 1);
  });
});

describe('MetricsServer', () => {
  it('serves /metrics with the Prometheus content type, 404 elsewhere, 405 for other methods', async () => {
    const metrics = new Metrics();
    metrics.counter('up_total', 'up').inc();
    const server = new MetricsServer(metrics, { host: '127.0.0.1', port: 0 });
    const port = await server.start();
    try {
      const ok = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
      assert.match(await ok.text(), /^up_total 1$/m);
      assert.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
      assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })).status, 405);
    } finally {
      await server.stop();
    }
  });
});
