import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { context, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NatsSpanExporter } from '@skein/runtime';
import { BUCKETS, DEFAULT_TELEMETRY_RETENTION, mintOperatorTls, readCa } from '@skein/core';
import { Harness, type AppHandle, type ManagedProcess, type SidecarHandle } from '../src/harness.js';
import { httpRequest } from '../src/http.js';

const ALLOW_ANALYST = `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: mcp-server-policy
spec:
  accessControl:
    defaultAction: deny
    trustDomain: "public"
    policies:
    - appId: analyst-agent
      defaultAction: allow
      namespace: "default"
`;
const DENY_ALL = `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: deny-all
spec:
  accessControl:
    defaultAction: deny
    trustDomain: "public"
`;

interface DecisionLine {
  appId: string;
  decision: { allowed: boolean; source: string; rule: string; caller: string };
}

/** One sample of a Prometheus text exposition. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] as string] = pair[2] as string;
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the one sample of `name` whose labels include `labels`. */
function sampleValue(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const found = samples.filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
  return found[0]?.value;
}

describe('telemetry: the stream, skein decisions, skein traces, /metrics', function () {
  const harness = new Harness();
  let natsUrl: string;
  let app: AppHandle;
  let nc: NatsConnection;
  let server: SidecarHandle;

  /** Runs the real CLI to completion; resolves with its exit code and every line it wrote. */
  async function skein(args: string[]): Promise<{ code: number | null; lines: string[]; proc: ManagedProcess }> {
    const proc = harness.skein(args[0] ?? 'skein', [...args, '--home', harness.home, '--nats-url', natsUrl]);
    // 'close' (not 'exit') fires once stdout and stderr are drained, so no line is missed.
    const closed = new Promise<number | null>((resolve) => proc.child.once('close', (code) => resolve(code)));
    const code = await closed;
    return { code, lines: [...proc.lines], proc };
  }

  /** The decision events `skein decisions --json <args>` prints. */
  async function decisions(args: string[]): Promise<DecisionLine[]> {
    const { code, lines, proc } = await skein(['decisions', '--json', ...args]);
    assert.equal(code, 0, proc.output());
    return lines.filter((line) => line.startsWith('{') && line.includes('"decision"')).map((line) => JSON.parse(line) as DecisionLine);
  }

  /**
   * Waits until everything published so far on the telemetry subjects is stored: a JetStream publish is acked only
   * after the stream stored every message queued before it.
   */
  async function stored(): Promise<void> {
    await jetstream(nc).publish('skein.spans.e2e.barrier', '{"barrier":true}');
  }

  before(async function () {
    const { nats } = await harness.controlPlane();
    natsUrl = nats.url;
    app = await harness.app('echo-app');
    nc = await connect({ servers: natsUrl, tls: (({ certPem, keyPem, caPem }) => ({ cert: certPem, key: keyPem, ca: caPem }))(mintOperatorTls(readCa(harness.home), 'e2e-observer')) });
    const config = (name: string, text: string): string => {
      const path = join(harness.dir('configs'), `${name}.yaml`);
      writeFileSync(path, text);
      return path;
    };
    [server] = await Promise.all([
      harness.sidecar({ appId: 'mcp-server', appPort: app.port, args: ['--config', config('mcp-server', ALLOW_ANALYST)] }),
      harness.sidecar({ appId: 'locked', appPort: app.port, args: ['--config', config('locked', DENY_ALL)] }),
    ]);
  });
  after(async () => {
    await nc?.close();
    await harness.cleanup();
  });

  it('each sidecar creates the telemetry stream at start, with the default retention when nobody configured one', async function () {
    const info = await (await jetstreamManager(nc)).streams.info(BUCKETS.telemetry);
    assert.deepEqual(info.config.subjects, ['skein.decisions.>', 'skein.spans.>', 'skein.workflows.>']);
    assert.equal(info.config.max_age, DEFAULT_TELEMETRY_RETENTION.maxAgeMs * 1e6);
    assert.equal(info.config.max_bytes, DEFAULT_TELEMETRY_RETENTION.maxBytes);
    assert.equal(info.config.discard, 'old');
  });

  it('skein decisions lists the decisions real sidecars made, and its filters work', async function () {
    const decisionsSeen = nc.subscribe('skein.decisions.>', { max: 3 });
    const [analyst, other] = await Promise.all([harness.sidecar({ appId: 'analyst-agent' }), harness.sidecar({ appId: 'other-agent' })]);
    assert.equal((await httpRequest(`${analyst.url}/v1.0/invoke/mcp-server/method/mcp`, { method: 'POST', body: '{}' })).status, 200);
    assert.equal((await httpRequest(`${other.url}/v1.0/invoke/mcp-server/method/mcp`, { method: 'POST', body: '{}' })).status, 403);
    assert.equal((await httpRequest(`${analyst.url}/v1.0/invoke/locked/method/admin`, { method: 'POST', body: '{}' })).status, 403);
    for await (const _message of decisionsSeen) {
      // Three decisions reached NATS; `stored()` then makes sure the stream has them too.
    }
    await stored();

    // Independent reads of the same stream, run side by side to keep the suite short.
    const [all, ofServer, denied, deniedOfServer, jwt, acl, last, future] = await Promise.all([
      decisions([]),
      decisions(['--app', 'mcp-server']),
      decisions(['--denied']),
      decisions(['--app', 'mcp-server', '--denied']),
      decisions(['--source', 'jwt']),
      decisions(['--source', 'acl']),
      decisions(['--limit', '1']),
      decisions(['--since', new Date(Date.now() + 60_000).toISOString()]),
    ]);
    assert.deepEqual(
      all.map((event) => [event.appId, event.decision.allowed, event.decision.source, event.decision.caller]),
      [
        ['mcp-server', true, 'acl', 'spiffe://public/ns/default/analyst-agent'],
        ['mcp-server', false, 'acl', 'spiffe://public/ns/default/other-agent'],
        ['locked', false, 'acl', 'spiffe://public/ns/default/analyst-agent'],
      ],
    );
    assert.deepEqual(ofServer.map((event) => event.decision.caller), ['spiffe://public/ns/default/analyst-agent', 'spiffe://public/ns/default/other-agent']);
    assert.deepEqual(denied.map((event) => event.appId), ['mcp-server', 'locked']);
    assert.deepEqual(deniedOfServer.map((event) => event.decision.rule), ['default']);
    assert.deepEqual(jwt, []);
    assert.equal(acl.length, 3);
    assert.deepEqual(last.map((event) => event.appId), ['locked'], 'the limit keeps the most recent');
    assert.deepEqual(future, []);

    // The human form: a header, then one line per decision with time, app, caller, result, source, rule, reason.
    const [text, bad] = await Promise.all([skein(['decisions', '--app', 'mcp-server']), skein(['decisions', '--source', 'opa'])]);
    assert.equal(text.code, 0, text.proc.output());
    const rows = text.lines.filter((line) => /^\d{4}-\d{2}-\d{2}T/.test(line));
    assert.equal(rows.length, 2, text.proc.output());
    assert.match(text.lines.find((line) => line.startsWith('TIME')) ?? '', /TIME\s+APP\s+CALLER\s+RESULT\s+SOURCE\s+RULE\s+TOOL\s+REASON/);
    assert.match(rows[0] ?? '', /Z\s+mcp-server\s+default\/analyst-agent\s+ALLOW\s+acl\s+policies\[0\]\s+-\s+\S/);
    assert.match(rows[1] ?? '', /Z\s+mcp-server\s+default\/other-agent\s+DENY\s+acl\s+default\s+-\s+\S/);
    assert.equal(bad.code, 2);
    assert.match(bad.proc.output(), /--source must be one of acl, tool-policy, jwt/);
  });

  it('skein decisions --follow prints the stored decisions, then new ones as they are made, until Ctrl-C', async function () {
    const follow = harness.skein('decisions-follow', ['decisions', '--follow', '--json', '--app', 'locked', '--home', harness.home, '--nats-url', natsUrl]);
    const closed = new Promise<number | null>((resolve) => follow.child.once('close', (code) => resolve(code)));
    // stdout and stderr are separate pipes: wait for each rather than rely on their interleaving.
    await follow.waitFor((text) => text.includes('"decision"') && text.includes('analyst-agent'));
    await follow.waitFor(/^following new decisions/);
    const caller = await harness.sidecar({ appId: 'late-agent' });
    assert.equal((await httpRequest(`${caller.url}/v1.0/invoke/locked/method/admin`, { method: 'POST', body: '{}' })).status, 403);
    const line = await follow.waitFor((text) => text.includes('late-agent'));
    assert.equal((JSON.parse(line) as DecisionLine).decision.caller, 'spiffe://public/ns/default/late-agent');
    follow.signal('SIGINT');
    assert.equal(await closed, 0, follow.output());
  });

  it('/metrics of the callee counts its calls, refusals included, with durations', async function () {
    const ready = server.proc.records().find((record) => record.msg === 'ready' && record['what'] === 'sidecar');
    const metricsPort = Number(ready?.['metricsPort']);
    assert.ok(metricsPort > 0, 'the ready record announces metricsPort');
    const res = await httpRequest(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const samples = parseExposition(res.body);
    const base = { app_id: 'mcp-server', namespace: 'default', direction: 'inbound', verb: 'POST' };
    assert.equal(sampleValue(samples, 'skein_requests_total', { ...base, peer_app_id: 'analyst-agent', status: '200' }), 1);
    assert.equal(sampleValue(samples, 'skein_requests_total', { ...base, peer_app_id: 'other-agent', status: '403' }), 1);
    assert.equal(sampleValue(samples, 'skein_request_errors_total', { ...base, peer_app_id: 'other-agent', error: 'ERR_DIRECT_INVOKE_ACL_DENIED' }), 1);
    assert.equal(sampleValue(samples, 'skein_request_errors_total', { ...base, peer_app_id: 'analyst-agent' }), undefined, 'an allowed call is no error');
    assert.equal(sampleValue(samples, 'skein_request_duration_seconds_count', { ...base, peer_app_id: 'analyst-agent' }), 1);
    assert.equal(sampleValue(samples, 'skein_request_duration_seconds_bucket', { ...base, peer_app_id: 'analyst-agent', le: '+Inf' }), 1);
    assert.ok((sampleValue(samples, 'skein_request_duration_seconds_sum', { ...base, peer_app_id: 'other-agent' }) ?? -1) >= 0);
  });

  it('spans published by NatsSpanExporter are listed by skein traces and shown as a waterfall', async function () {
    // Two providers stand in for two sidecars; the callee's span continues the caller's trace.
    const agent = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new NatsSpanExporter(nc, { appId: 'agent', namespace: 'default' }))] });
    const callee = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new NatsSpanExporter(nc, { appId: 'weather-server', namespace: 'default' }))] });
    const call = (tool: string, fail: boolean): string => {
      const root = agent.getTracer('skein.sidecar').startSpan(`tools/call ${tool}`, { kind: SpanKind.SERVER, attributes: { 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': tool } });
      const hop = agent.getTracer('skein.sidecar').startSpan('invoke weather-server', { kind: SpanKind.CLIENT }, trace.setSpan(context.active(), root));
      const served = callee.getTracer('skein.sidecar').startSpan(`tools/call ${tool}`, { kind: SpanKind.SERVER, attributes: { 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': tool } }, trace.setSpan(context.active(), hop));
      served.addEvent('skein.decision', { 'skein.decision.source': 'acl', 'skein.decision.allowed': true, 'skein.decision.rule': 'policies[0]' });
      if (fail) {
        served.setAttribute('error.type', 'tool_error');
        served.setStatus({ code: SpanStatusCode.ERROR, message: 'tool_error' });
      }
      served.end();
      hop.end();
      root.end();
      return root.spanContext().traceId;
    };
    const failed = call('get_weather', true);
    const fine = call('get_time', false);
    await Promise.all([agent.forceFlush(), callee.forceFlush()]);
    await stored();

    const list = async (args: string[]): Promise<Array<{ traceId: string; rootName: string; apps: string[]; spanCount: number; status: string }>> => {
      const { code, lines, proc } = await skein(['traces', '--json', ...args]);
      assert.equal(code, 0, proc.output());
      return lines.filter((line) => line.startsWith('{') && line.includes('"traceId"')).map((line) => JSON.parse(line) as { traceId: string; rootName: string; apps: string[]; spanCount: number; status: string });
    };
    assert.deepEqual(
      (await list([])).map((summary) => [summary.traceId, summary.rootName, summary.apps, summary.spanCount, summary.status]),
      [
        [failed, 'tools/call get_weather', ['agent', 'weather-server'], 3, 'error'],
        [fine, 'tools/call get_time', ['agent', 'weather-server'], 3, 'ok'],
      ],
    );
    const [byTool, byStatus, byAppLimited, byNobody] = await Promise.all([list(['--tool', 'get_time']), list(['--status', 'error']), list(['--app', 'weather-server', '--limit', '1']), list(['--app', 'nobody'])]);
    assert.deepEqual(byTool.map((summary) => summary.traceId), [fine]);
    assert.deepEqual(byStatus.map((summary) => summary.traceId), [failed]);
    assert.deepEqual(byAppLimited.map((summary) => summary.traceId), [fine]);
    assert.deepEqual(byNobody, []);

    const [table, waterfall, missing] = await Promise.all([skein(['traces']), skein(['traces', failed.slice(0, 12)]), skein(['traces', 'ffffffffffffffffffffffffffffffff'])]);
    assert.equal(table.code, 0, table.proc.output());
    assert.ok(table.lines.some((line) => line.includes(failed) && /ERROR\s+3\s/.test(line)), table.proc.output());

    assert.equal(waterfall.code, 0, waterfall.proc.output());
    const out = waterfall.lines;
    assert.match(out[0] ?? '', new RegExp(`^trace ${failed}  3 spans  apps agent, weather-server  .* ERROR$`));
    const rows = out.filter((line) => line.includes('█'));
    assert.match(rows[0] ?? '', /^tools\/call get_weather \[agent\]\s+█+/);
    assert.match(rows[1] ?? '', /^ {2}invoke weather-server \[agent\]\s/);
    assert.match(rows[2] ?? '', /^ {4}tools\/call get_weather \[weather-server\]\s.*ERROR: tool_error$/);
    assert.ok(out.includes('        mcp.method.name=tools/call gen_ai.tool.name=get_weather error.type=tool_error'), waterfall.proc.output());
    assert.ok(out.some((line) => /^ {8}◆ \+[\d.]+ ms skein\.decision skein\.decision\.source=acl skein\.decision\.allowed=true skein\.decision\.rule=policies\[0\]$/.test(line)), waterfall.proc.output());
    assert.equal(missing.code, 1);
    assert.match(missing.proc.output(), /ERR_NOT_FOUND: no spans of trace ffffffffffffffffffffffffffffffff/);
    await Promise.all([agent.shutdown(), callee.shutdown()]);
  });

  it('NatsSpanExporter never throws or waits when NATS is gone: export() calls back at once, failed, and counts the drop', async function () {
    const memory = new InMemorySpanExporter();
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] }).getTracer('t').startSpan('lost').end();
    const tls = mintOperatorTls(readCa(harness.home), 'e2e-closed');
    const gone = await connect({ servers: natsUrl, tls: { cert: tls.certPem, key: tls.keyPem, ca: tls.caPem } });
    const exporter = new NatsSpanExporter(gone, { appId: 'agent', namespace: 'default' });
    await gone.close();
    let result: { code: number; error?: Error } | undefined;
    exporter.export(memory.getFinishedSpans(), (outcome) => {
      result = outcome;
    });
    assert.ok(result, 'called back synchronously');
    assert.notEqual(result.code, 0);
    assert.match(result.error?.message ?? '', /1 span\(s\) dropped/);
    assert.equal(exporter.dropped, 1);
    await exporter.shutdown();
  });

  it('skein up sets the stream retention from its flags', async function () {
    const home = harness.dir('up-home');
    const up = harness.skein('up', ['up', '--home', home, '--nats-port', '0', '--sentry-port', '0', '--placement-port', '0', '--telemetry-max-age', '90m', '--telemetry-max-bytes', '32Mi']);
    const ready = await up.waitForRecord('ready', { what: 'control-plane' });
    const tls = mintOperatorTls(readCa(home), 'e2e-observer');
    const upNats = await connect({ servers: String(ready['natsUrl']), tls: { cert: tls.certPem, key: tls.keyPem, ca: tls.caPem } });
    try {
      const { config } = await (await jetstreamManager(upNats)).streams.info(BUCKETS.telemetry);
      assert.equal(config.max_age, 90 * 60 * 1e9);
      assert.equal(config.max_bytes, 32 * 1024 * 1024);
      assert.deepEqual(config.subjects, ['skein.decisions.>', 'skein.spans.>', 'skein.workflows.>']);
    } finally {
      await upNats.close();
    }
    up.signal('SIGINT');
    assert.equal((await up.exited).code, 0);

    const bad = harness.skein('up-bad', ['up', '--home', harness.dir('up-bad'), '--telemetry-max-age', 'forever']);
    assert.equal((await bad.exited).code, 2);
    assert.match(bad.output(), /--telemetry-max-age must be a duration/);
  });
});
