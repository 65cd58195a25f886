import assert from 'node:assert/strict';
import { type SpanEvent, TraceSummaries, buildSpanTree, formatMs, formatTraceSummary, matchTraceIds, renderWaterfall, decisionHeader, formatDecisionLine, matchesDecision, parseDecisionEvent, shortCaller, decision, toDecisionEvent } from '@skein/core';
import { limitFlag, sinceFlag, subjectTokens } from '../src/cli/telemetry-common.js';

const T0 = 1_795_256_130_000_000_000n;

/** A span starting `startMs` after T0 and lasting `durationMs`. */
function span(fields: Partial<SpanEvent> & { spanId: string; startMs: number; durationMs: number }): SpanEvent {
  const { startMs, durationMs, ...rest } = fields;
  const start = T0 + BigInt(Math.round(startMs * 1e6));
  const end = start + BigInt(Math.round(durationMs * 1e6));
  return {
    version: 1,
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    name: 'span',
    kind: 'internal',
    startTime: new Date(Number(start / 1_000_000n)).toISOString(),
    endTime: new Date(Number(end / 1_000_000n)).toISOString(),
    startTimeUnixNano: start.toString(),
    endTimeUnixNano: end.toString(),
    durationMs,
    status: { code: 'unset' },
    attributes: {},
    events: [],
    appId: 'agent',
    namespace: 'default',
    ...rest,
  };
}

const AGENT_ROOT = span({ spanId: 'a000000000000001', name: 'POST /v1.0/invoke/mcp-server/method/mcp', kind: 'server', startMs: 0, durationMs: 20 });
const AGENT_CLIENT = span({ spanId: 'a000000000000002', parentSpanId: 'a000000000000001', name: 'invoke mcp-server', kind: 'client', startMs: 1, durationMs: 18 });
const SERVER = span({
  spanId: 'b000000000000001',
  parentSpanId: 'a000000000000002',
  name: 'tools/call get_weather',
  kind: 'server',
  startMs: 2,
  durationMs: 15,
  appId: 'mcp-server',
  attributes: { 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'get_weather', 'error.type': 'tool_error', 'not.shown': 'x' },
  status: { code: 'error', message: 'tool_error' },
  events: [{ name: 'skein.decision', time: '2026-11-21T10:15:30.003Z', timeUnixNano: (T0 + 3_000_000n).toString(), attributes: { 'skein.decision.source': 'acl', 'skein.decision.allowed': true } }],
});

describe('trace view', () => {
  it('summarises traces span by span: root, apps, tools, count, duration, status', () => {
    const summaries = new TraceSummaries();
    for (const each of [SERVER, AGENT_CLIENT, AGENT_ROOT]) summaries.add(each);
    const other = span({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'c000000000000001', parentSpanId: 'ffffffffffffffff', name: 'orphan', startMs: 50, durationMs: 1 });
    summaries.add(other);
    const [first, second] = summaries.list();
    assert.deepEqual(first, {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      rootName: 'POST /v1.0/invoke/mcp-server/method/mcp',
      apps: ['agent', 'mcp-server'],
      tools: ['get_weather'],
      spanCount: 3,
      startTime: AGENT_ROOT.startTime,
      durationMs: 20,
      status: 'error',
    });
    assert.equal(second?.rootName, 'orphan', 'without a recorded root, the earliest span names the trace');
    assert.equal(second?.status, 'ok');
    assert.deepEqual(summaries.list({ app: 'mcp-server' }).map((trace) => trace.traceId), ['4bf92f3577b34da6a3ce929d0e0e4736']);
    assert.deepEqual(summaries.list({ tool: 'get_weather', status: 'ok' }), []);
    assert.deepEqual(summaries.list({ status: 'ok' }).map((trace) => trace.rootName), ['orphan']);
    assert.deepEqual(summaries.list({}, 1).map((trace) => trace.rootName), ['orphan'], 'the limit keeps the most recent');
    assert.match(formatTraceSummary(first), /^\S+Z\s+4bf92f3577b34da6a3ce929d0e0e4736\s+ERROR\s+3\s+20\.0 ms\s+POST \/v1\.0\/invoke\/mcp-server\/method\/mcp\s+agent,mcp-server$/);
  });

  it('builds the tree by parent id; a span whose parent was not recorded, or a parent cycle, becomes a root', () => {
    const orphan = span({ spanId: 'd000000000000001', parentSpanId: 'eeeeeeeeeeeeeeee', name: 'orphan', startMs: 5, durationMs: 1 });
    const loopA = span({ spanId: 'f000000000000001', parentSpanId: 'f000000000000002', name: 'loop a', startMs: 6, durationMs: 1 });
    const loopB = span({ spanId: 'f000000000000002', parentSpanId: 'f000000000000001', name: 'loop b', startMs: 7, durationMs: 1 });
    const forest = buildSpanTree([loopB, SERVER, orphan, AGENT_CLIENT, AGENT_ROOT, loopA, AGENT_ROOT]);
    const flat: string[] = [];
    const walk = (node: (typeof forest)[number]): void => {
      flat.push(`${node.depth}:${node.span.name}`);
      node.children.forEach(walk);
    };
    forest.forEach(walk);
    assert.deepEqual(flat, ['0:POST /v1.0/invoke/mcp-server/method/mcp', '1:invoke mcp-server', '2:tools/call get_weather', '0:orphan', '0:loop a', '1:loop b']);
  });

  it('renders an indented waterfall with bars, offsets, durations, status, key attributes and events', () => {
    const lines = renderWaterfall([SERVER, AGENT_ROOT, AGENT_CLIENT], { barWidth: 20 });
    assert.equal(lines[0], 'trace 4bf92f3577b34da6a3ce929d0e0e4736  3 spans  apps agent, mcp-server  20.0 ms  ERROR');
    assert.equal(lines[1], `started ${AGENT_ROOT.startTime}`);
    const rows = lines.filter((line) => line.includes('█'));
    assert.equal(rows.length, 3);
    assert.match(rows[0] ?? '', /^POST \/v1\.0\/invoke\/mcp-server\/method\/mcp \[agent\]\s+█{20}\s+\+\s*0\.00 ms\s+20\.0 ms\s+ok$/);
    assert.match(rows[1] ?? '', /^ {2}invoke mcp-server \[agent\]\s+ █{18} \s+\+\s*1\.00 ms\s+18\.0 ms\s+ok$/);
    assert.match(rows[2] ?? '', /^ {4}tools\/call get_weather \[mcp-server\]\s+ {2}█{15} {3}\s+\+\s*2\.00 ms\s+15\.0 ms\s+ERROR: tool_error$/);
    const detail = lines.slice(lines.indexOf(rows[2] ?? '') + 1);
    assert.deepEqual(detail, ['        mcp.method.name=tools/call gen_ai.tool.name=get_weather error.type=tool_error', '        ◆ +3.00 ms skein.decision skein.decision.source=acl skein.decision.allowed=true']);
    assert.deepEqual(renderWaterfall([]), []);
  });

  it('finds a trace by its id or a unique prefix', () => {
    const ids = ['4bf92f3577b34da6a3ce929d0e0e4736', '4bf00000000000000000000000000000', '0af7651916cd43dd8448eb211c80319c'];
    assert.deepEqual(matchTraceIds(ids, '0af7'), ['0af7651916cd43dd8448eb211c80319c']);
    assert.deepEqual(matchTraceIds(ids, '4bf'), ids.slice(0, 2));
    assert.deepEqual(matchTraceIds(ids, '4BF92F3577B34DA6A3CE929D0E0E4736'), ['4bf92f3577b34da6a3ce929d0e0e4736']);
  });

  it('formats durations for people', () => {
    assert.deepEqual([0.4251, 12.34, 250.4, 1240].map(formatMs), ['0.43 ms', '12.3 ms', '250 ms', '1.24 s']);
  });
});

describe('decision view', () => {
  const denied = toDecisionEvent(
    decision({ allowed: false, source: 'tool-policy', rule: 'default', reason: 'no rule matches', caller: 'spiffe://public/ns/default/analyst-agent', target: 'mcp-server', method: 'tools/call', tool: 'drop_table' }),
    { time: new Date('2026-11-21T10:15:30.123Z'), appId: 'mcp-server', namespace: 'default' },
  );
  const allowed = toDecisionEvent(decision({ allowed: true, source: 'acl', rule: 'policies[0]', reason: 'allowed', caller: 'agent', target: 'mcp-server' }), { time: new Date('2026-11-21T10:15:31Z'), appId: 'mcp-server', namespace: 'default' });

  it('parses events of version 1 and refuses anything else', () => {
    assert.deepEqual(parseDecisionEvent(JSON.parse(JSON.stringify(denied))), denied);
    for (const junk of [null, [], { ...denied, version: 2 }, { ...denied, decision: { ...denied.decision, source: 'opa' } }, { ...denied, decision: { ...denied.decision, reason: 1 } }]) {
      assert.equal(parseDecisionEvent(junk), undefined);
    }
  });

  it('filters by source and by refusals', () => {
    assert.equal(matchesDecision(allowed, { deniedOnly: true }), false);
    assert.equal(matchesDecision(denied, { deniedOnly: true, source: 'tool-policy' }), true);
    assert.equal(matchesDecision(denied, { source: 'acl' }), false);
    assert.equal(matchesDecision(allowed, {}), true);
  });

  it('prints one line per decision: time, app, caller, result, source, rule, tool, reason', () => {
    assert.equal(shortCaller('spiffe://public/ns/default/analyst-agent'), 'default/analyst-agent');
    assert.equal(shortCaller('anonymous'), 'anonymous');
    const line = formatDecisionLine(denied);
    assert.match(line, /^2026-11-21T10:15:30\.123Z\s+mcp-server\s+default\/analyst-agent\s+DENY\s+tool-policy\s+default\s+drop_table\s+no rule matches$/);
    assert.match(formatDecisionLine(allowed), /ALLOW\s+acl\s+policies\[0\]\s+-\s+allowed$/);
    assert.equal(decisionHeader().indexOf('RESULT'), line.indexOf('DENY'), 'the header lines up with the columns');
    assert.equal(decisionHeader().indexOf('REASON'), line.indexOf('no rule'));
  });
});

describe('telemetry CLI flags', () => {
  it('--since takes a duration back from now or a time', () => {
    const now = Date.parse('2026-11-21T12:00:00Z');
    assert.equal(sinceFlag('10m', now)?.toISOString(), '2026-11-21T11:50:00.000Z');
    assert.equal(sinceFlag('2026-11-21T10:00:00Z', now)?.toISOString(), '2026-11-21T10:00:00.000Z');
    assert.equal(sinceFlag(undefined, now), undefined);
    assert.throws(() => sinceFlag('yesterday', now), /--since must be a duration/);
  });

  it('--limit is a positive integer; --app and --namespace must be valid subject tokens', () => {
    assert.equal(limitFlag('5', 50), 5);
    assert.equal(limitFlag(undefined, 50), 50);
    for (const bad of ['0', '-1', '1.5', 'many']) assert.throws(() => limitFlag(bad, 50), /--limit must be a positive integer/);
    assert.deepEqual(subjectTokens({}), { app: '*', namespace: '*' });
    assert.deepEqual(subjectTokens({ app: 'mcp-server', namespace: 'prod' }), { app: 'mcp-server', namespace: 'prod' });
    assert.throws(() => subjectTokens({ app: 'a.b' }), /--app "a\.b" is not a valid App ID/);
    assert.throws(() => subjectTokens({ namespace: '>' }), /--namespace ">" is not a valid namespace/);
  });
});
