import assert from 'node:assert/strict';
import type { DecisionEvent, SpanEvent, WorkflowEvent } from '@skein/core';
import { TraceStore, layoutWaterfall, isFailedSpan } from '../src/model/traces.js';
import { DecisionStore } from '../src/model/decisions.js';
import { WorkflowStore } from '../src/model/workflows.js';
import { locateRule, ruleTarget } from '../src/model/rule-location.js';
import { parseFromWebview } from '../src/webview/protocol.js';
import { dryRunToolPolicy, formatDryRun } from '../src/model/dry-run.js';
import { replayLaunchConfiguration } from '../src/model/replay-debug.js';

const BASE = 1_780_000_000_000n * 1_000_000n;

function span(fields: Partial<SpanEvent> & { traceId: string; spanId: string; startMs: number; durationMs: number }): SpanEvent {
  const start = BASE + BigInt(Math.round(fields.startMs * 1e6));
  const end = start + BigInt(Math.round(fields.durationMs * 1e6));
  const { startMs: _s, ...rest } = fields;
  return {
    version: 1,
    name: 'span',
    kind: 'server',
    startTime: new Date(Number(start / 1_000_000n)).toISOString(),
    endTime: new Date(Number(end / 1_000_000n)).toISOString(),
    startTimeUnixNano: start.toString(),
    endTimeUnixNano: end.toString(),
    status: { code: 'unset' },
    attributes: {},
    events: [],
    appId: 'agent',
    namespace: 'default',
    ...rest,
  };
}

const T1 = 'a'.repeat(32);
const T2 = 'b'.repeat(32);

function mcpTrace(traceId: string, startMs: number, options: { denied?: boolean; tool?: string } = {}): SpanEvent[] {
  const decision = { name: 'skein.decision', time: '', timeUnixNano: (BASE + BigInt(Math.round((startMs + 1) * 1e6))).toString(), attributes: { 'skein.decision.allowed': !options.denied, 'skein.decision.source': 'tool-policy', 'skein.decision.rule': options.denied ? 'no-writes' : 'reads', 'skein.decision.reason': 'because' } };
  return [
    span({ traceId, spanId: `${traceId.slice(0, 15)}1`, name: 'POST /mcp', kind: 'client', appId: 'agent', startMs, durationMs: 10 }),
    span({ traceId, spanId: `${traceId.slice(0, 15)}2`, parentSpanId: `${traceId.slice(0, 15)}1`, name: 'tools/call', appId: 'mcp-server', startMs: startMs + 1, durationMs: 8, attributes: { 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': options.tool ?? 'read_file', 'mcp.session.id': 's-1', 'jsonrpc.request.id': '7' }, events: [decision] }),
  ];
}

describe('trace store (the Traces view model)', () => {
  it('groups traces by every app that recorded a span, newest first, with their MCP facets', () => {
    const store = new TraceStore();
    [...mcpTrace(T1, 0), ...mcpTrace(T2, 100, { denied: true, tool: 'write_file' })].forEach((one) => store.add(one));
    const groups = store.byApp();
    assert.deepEqual(groups.map((group) => group.app), ['agent', 'mcp-server']);
    assert.deepEqual(groups[0]?.traces.map((trace) => trace.traceId), [T2, T1]);
    const item = store.trace(T1);
    assert.deepEqual(item?.methods, ['tools/call']);
    assert.deepEqual(item?.tools, ['read_file']);
    assert.equal(item?.rootName, 'POST /mcp');
    assert.equal(item?.durationMs, 10);
    assert.deepEqual(store.facets().tools, ['read_file', 'write_file']);
  });

  it('counts a call a policy denied as an error, like a failed span or an isError result', () => {
    const store = new TraceStore();
    [...mcpTrace(T1, 0), ...mcpTrace(T2, 100, { denied: true })].forEach((one) => store.add(one));
    assert.equal(store.trace(T2)?.status, 'error');
    assert.equal(store.trace(T1)?.status, 'ok');
    assert.ok(isFailedSpan(span({ traceId: T1, spanId: '1'.repeat(16), startMs: 0, durationMs: 1, attributes: { 'error.type': 'tool_error' } })));
  });

  it('filters by app, method, tool, status and time; every filter narrows', () => {
    const store = new TraceStore();
    [...mcpTrace(T1, 0), ...mcpTrace(T2, 100, { denied: true, tool: 'write_file' })].forEach((one) => store.add(one));
    assert.deepEqual(store.list({ status: 'error' }).map((trace) => trace.traceId), [T2]);
    assert.deepEqual(store.list({ tool: 'read_file' }).map((trace) => trace.traceId), [T1]);
    assert.deepEqual(store.list({ method: 'tools/call', app: 'mcp-server' }).length, 2);
    assert.deepEqual(store.list({ method: 'initialize' }), []);
    assert.deepEqual(store.list({ sinceMs: Number(BASE / 1_000_000n) + 50 }).map((trace) => trace.traceId), [T2]);
    assert.deepEqual(store.list({ tool: 'read_file', status: 'error' }), []);
  });

  it('ignores a span seen again (the stream is re-read after a reconnect)', () => {
    const store = new TraceStore();
    const [first] = mcpTrace(T1, 0);
    assert.ok(first);
    assert.equal(store.add(first), true);
    assert.equal(store.add(first), false);
    assert.equal(store.spans, 1);
  });

  it('forgets the oldest traces whole when over its span budget', () => {
    const store = new TraceStore({ maxSpans: 4 });
    for (let index = 0; index < 5; index += 1) mcpTrace(index.toString(16).padStart(32, '0'), index * 10).forEach((one) => store.add(one));
    assert.equal(store.spans, 4);
    assert.deepEqual(store.list().map((trace) => trace.traceId), ['4'.padStart(32, '0'), '3'.padStart(32, '0')]);
  });

  it('lays out the waterfall in tree order across sidecars, with decision markers where they were made', () => {
    const waterfall = layoutWaterfall(T2, mcpTrace(T2, 0, { denied: true }).reverse());
    assert.equal(waterfall.totalMs, 10);
    assert.deepEqual(waterfall.rows.map((row) => [row.name, row.appId, row.depth]), [['POST /mcp', 'agent', 0], ['tools/call', 'mcp-server', 1]]);
    const call = waterfall.rows[1];
    assert.ok(call);
    assert.equal(call.left, 0.1);
    assert.equal(call.width, 0.8);
    assert.equal(call.error, true);
    assert.deepEqual(call.attributes.slice(0, 3), [['mcp.method.name', 'tools/call'], ['gen_ai.tool.name', 'read_file'], ['mcp.session.id', 's-1']]);
    assert.equal(call.markers[0]?.kind, 'decision-deny');
    assert.equal(call.markers[0]?.label, 'denied by tool-policy rule no-writes');
    assert.equal(call.markers[0]?.offsetMs, 1);
    assert.equal(waterfall.error, true);
  });

  it('shows retries, timeouts and breaker transitions as markers', () => {
    const events: SpanEvent['events'] = [
      { name: 'skein.retry', time: '', timeUnixNano: (BASE + 2_000_000n).toString(), attributes: { 'skein.retry.attempt': 2 } },
      { name: 'skein.timeout', time: '', timeUnixNano: (BASE + 3_000_000n).toString(), attributes: { 'skein.timeout.ms': 500 } },
      { name: 'skein.circuit_breaker.state', time: '', timeUnixNano: (BASE + 4_000_000n).toString(), attributes: { 'skein.circuit_breaker.from': 'closed', 'skein.circuit_breaker.to': 'open' } },
    ];
    const waterfall = layoutWaterfall(T1, [span({ traceId: T1, spanId: '1'.repeat(16), startMs: 0, durationMs: 5, events })]);
    assert.deepEqual(waterfall.rows[0]?.markers.map((marker) => marker.label), ['retry 2', 'timed out after 500 ms', 'breaker closed → open']);
  });
});

function decision(fields: { app?: string; allowed: boolean; source?: DecisionEvent['decision']['source']; rule: string; traceId?: string; target?: string; time?: string }): DecisionEvent {
  return {
    version: 1,
    time: fields.time ?? '2026-12-04T10:00:00.000Z',
    appId: fields.app ?? 'mcp-server',
    namespace: 'default',
    ...(fields.traceId ? { traceId: fields.traceId } : {}),
    decision: { allowed: fields.allowed, source: fields.source ?? 'tool-policy', rule: fields.rule, reason: 'r', caller: 'spiffe://public/ns/default/agent', target: fields.target ?? 'mcp-server', method: 'tools/call', tool: 'read_file' },
  };
}

describe('decision store (the Decisions view model)', () => {
  it('groups by the deciding app, newest first, counting refusals; filters narrow', () => {
    const store = new DecisionStore();
    store.add(decision({ allowed: true, rule: 'reads' }));
    store.add(decision({ allowed: false, rule: 'no-writes', traceId: T1 }));
    store.add(decision({ app: 'agent', allowed: false, source: 'acl', rule: 'default' }));
    const groups = store.byApp();
    assert.deepEqual(groups.map((group) => [group.app, group.decisions.length, group.denied]), [['agent', 1, 1], ['mcp-server', 2, 1]]);
    assert.deepEqual(groups[1]?.decisions.map((item) => item.event.decision.rule), ['no-writes', 'reads']);
    assert.deepEqual(store.list({ deniedOnly: true, source: 'tool-policy' }).map((item) => item.event.decision.rule), ['no-writes']);
    assert.deepEqual(store.ofTrace(T1).map((item) => item.event.decision.rule), ['no-writes']);
  });

  it('keeps the most recent decisions within its budget', () => {
    const store = new DecisionStore({ max: 2 });
    for (const rule of ['a', 'b', 'c']) store.add(decision({ allowed: true, rule }));
    assert.deepEqual(store.list().map((item) => item.event.decision.rule), ['c', 'b']);
  });
});

describe('rule location (from a decision to its YAML)', () => {
  const policy = `apiVersion: skein.dev/v1alpha1
kind: MCPToolPolicy
metadata:
  name: tools
scopes: [mcp-server]
spec:
  defaultAction: deny
  rules:
    - name: reads
      action: allow
    - name: no-writes
      action: deny
`;
  const configuration = `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: acl
spec:
  accessControl:
    defaultAction: deny
    policies:
      - appId: agent
        namespace: default
        operations:
          - name: /mcp
            action: allow
`;
  const files = [{ uri: 'file:///w/config.yaml', text: configuration }, { uri: 'file:///w/policy.yaml', text: `${configuration}---\n${policy}` }];

  it('finds a tool-policy rule by name, in a file of several documents', () => {
    const location = locateRule(decision({ allowed: false, rule: 'no-writes' }), files);
    assert.deepEqual(location, { uri: 'file:///w/policy.yaml', range: { start: { line: 24, character: 12 }, end: { line: 24, character: 21 } } });
  });

  it('finds the default action when no rule matched', () => {
    const location = locateRule(decision({ allowed: false, rule: 'default' }), files);
    assert.equal(location?.uri, 'file:///w/policy.yaml');
    assert.equal(location?.range.start.line, 20);
  });

  it('finds an access-control operation by its index path', () => {
    const location = locateRule(decision({ allowed: true, source: 'acl', rule: 'policies[0].operations[0]' }), files);
    assert.equal(location?.uri, 'file:///w/config.yaml');
    assert.equal(location?.range.start.line, 11);
  });

  it('says nowhere for a rule no file holds, or a refusal no rule made', () => {
    assert.equal(locateRule(decision({ allowed: false, rule: 'gone' }), files), undefined);
    assert.equal(ruleTarget(decision({ allowed: false, source: 'acl', rule: 'malformed-caller' })), undefined);
  });
});

function workflowEvent(type: WorkflowEvent['type'], seconds: number, extra: Partial<WorkflowEvent> = {}): WorkflowEvent {
  return { version: 1, type, time: new Date(Date.UTC(2026, 11, 4, 10, 0, seconds)).toISOString(), appId: 'orders', namespace: 'default', instanceId: 'o-1', workflowName: 'order', executionId: 'e1', traceId: T1, spanId: '1'.repeat(16), ...extra };
}

describe('workflow store (the Workflows view model)', () => {
  it('follows an instance through its events: status, timeline with durations and attempts, final failure', () => {
    const store = new WorkflowStore();
    store.add(workflowEvent('workflow.created', 0));
    store.add(workflowEvent('workflow.activity.scheduled', 1, { activityName: 'charge', taskId: 0 }));
    assert.equal(store.instance('orders', 'o-1')?.status, 'RUNNING');
    store.add(workflowEvent('workflow.activity.failed', 2, { activityName: 'charge', taskId: 0, durationMs: 1000, failure: { type: 'Error', message: 'card declined' } }));
    store.add(workflowEvent('workflow.activity.scheduled', 3, { activityName: 'charge', taskId: 1 }));
    store.add(workflowEvent('workflow.activity.completed', 4, { activityName: 'charge', taskId: 1, durationMs: 1000 }));
    store.add(workflowEvent('workflow.timer.created', 4, { timerId: 2, fireAt: '2026-12-04T10:00:06.000Z' }));
    store.add(workflowEvent('workflow.timer.fired', 6, { timerId: 2 }));
    store.add(workflowEvent('workflow.event.raised', 7, { eventName: 'approved' }));
    store.add(workflowEvent('workflow.failed', 8, { durationMs: 8000, failure: { type: 'Error', message: 'boom' } }));
    const view = store.instance('orders', 'o-1');
    assert.ok(view);
    assert.equal(view.status, 'FAILED');
    assert.deepEqual(view.failure, { type: 'Error', message: 'boom' });
    assert.deepEqual(view.timeline.map((entry) => [entry.kind, entry.label, entry.status, entry.attempt, entry.durationMs]), [
      ['lifecycle', 'started', 'ok', undefined, undefined],
      ['activity', 'charge', 'failed', 1, 1000],
      ['activity', 'charge', 'ok', 2, 1000],
      ['timer', 'timer until 2026-12-04T10:00:06.000Z', 'ok', undefined, 2000],
      ['event', 'event approved', 'ok', undefined, undefined],
      ['lifecycle', 'failed', 'failed', undefined, undefined],
    ]);
  });

  it('shows suspension, applies each event once, and puts children on their parent', () => {
    const store = new WorkflowStore();
    store.add(workflowEvent('workflow.created', 0));
    store.add(workflowEvent('workflow.suspended', 1));
    assert.equal(store.add(workflowEvent('workflow.suspended', 1)), false);
    assert.equal(store.instance('orders', 'o-1')?.status, 'SUSPENDED');
    store.add(workflowEvent('workflow.resumed', 2));
    store.add(workflowEvent('workflow.created', 3, { instanceId: 'o-1:child', workflowName: 'ship', parentInstanceId: 'o-1' }));
    store.add(workflowEvent('workflow.completed', 5, { instanceId: 'o-1:child', workflowName: 'ship', durationMs: 2000 }));
    const child = store.instance('orders', 'o-1')?.timeline.find((entry) => entry.kind === 'child');
    assert.deepEqual([child?.label, child?.status, child?.durationMs, child?.childInstanceId], ['child ship', 'ok', 2000, 'o-1:child']);
    const tree = store.byAppAndStatus();
    assert.deepEqual(tree[0]?.statuses.map((entry) => [entry.status, entry.count]), [['RUNNING', 1], ['COMPLETED', 1]]);
  });

  it('starts a fresh view when the instance is created again under a new execution', () => {
    const store = new WorkflowStore();
    store.add(workflowEvent('workflow.created', 0));
    store.add(workflowEvent('workflow.completed', 1, { durationMs: 1000 }));
    store.add(workflowEvent('workflow.created', 2, { executionId: 'e2' }));
    const view = store.instance('orders', 'o-1');
    assert.equal(view?.status, 'RUNNING');
    assert.equal(view?.executionId, 'e2');
    assert.equal(view?.timeline.length, 1);
  });
});

describe('webview messages', () => {
  it('accepts only the messages of the protocol, with well-formed fields', () => {
    assert.deepEqual(parseFromWebview({ type: 'copyTraceId', traceId: T1 }), { type: 'copyTraceId', traceId: T1 });
    assert.deepEqual(parseFromWebview({ type: 'action', action: 'terminate' }), { type: 'action', action: 'terminate' });
    assert.equal(parseFromWebview({ type: 'copyTraceId', traceId: 'not-hex' }), undefined);
    assert.equal(parseFromWebview({ type: 'action', action: 'rm -rf' }), undefined);
    assert.equal(parseFromWebview({ type: 'openInstance', instanceId: '../../etc' }), undefined);
    assert.equal(parseFromWebview('ready'), undefined);
    assert.equal(parseFromWebview({ type: 'eval', code: '1' }), undefined);
  });
});

describe('policy dry run', () => {
  const recorded = (tool: string, allowed: boolean, rule: string, caller = 'agent'): DecisionEvent => ({
    version: 1,
    time: '2026-12-04T10:00:00.000Z',
    appId: 'mcp-server',
    namespace: 'default',
    decision: { allowed, source: 'tool-policy', rule, reason: 'then', caller: `spiffe://public/ns/default/${caller}`, target: 'mcp-server', method: 'tools/call', tool },
  });
  const edited = `apiVersion: skein.dev/v1alpha1
kind: MCPToolPolicy
metadata:
  name: tools
scopes: [mcp-server]
spec:
  defaultAction: deny
  rules:
    - name: no-deletes
      action: deny
      tools: ["delete_*"]
    - name: big-reads
      action: deny
      tools: ["read_file"]
      when: args.size > 100
    - name: agent-tools
      action: allow
      callers: { appIds: [agent] }
`;

  it('shows which recorded calls the edited policy would decide differently, with the runtime compiler', () => {
    const run = dryRunToolPolicy(edited, [recorded('delete_file', true, 'agent-tools'), recorded('write_file', true, 'agent-tools'), recorded('write_file', false, 'default', 'intruder'), recorded('read_file', true, 'agent-tools')]);
    assert.deepEqual(run.policies, ['tools']);
    assert.equal(run.replayed, 4);
    assert.deepEqual(run.rows.map((row) => [row.tool, row.change, row.after.rule, row.certain]), [
      ['delete_file', 'now-denied', 'no-deletes', true],
      ['write_file', 'same', 'agent-tools', true],
      ['write_file', 'same', 'default', true],
      ['read_file', 'now-denied', 'big-reads', false],
    ]);
    assert.equal(run.nowDenied, 2);
    assert.equal(run.uncertain, 1);
    const lines = formatDryRun(run);
    assert.match(lines[0] ?? '', /4 recorded calls replayed; 2 allowed → denied, 0 denied → allowed, 1 depend on arguments/);
    assert.equal(lines.length, 3);
    assert.match(lines[2] ?? '', /read_file {2}ALLOW → DENY {2}rule agent-tools → big-reads {2}\(uncertain\)/);
  });

  it('replays only calls to the apps the policy protects, and says when the file does not compile', () => {
    const other = { ...recorded('x', true, 'r'), appId: 'elsewhere' };
    assert.equal(dryRunToolPolicy(edited, [other]).replayed, 0);
    assert.deepEqual(formatDryRun(dryRunToolPolicy(edited.replace('args.size > 100', 'args.size >'), [])), ['No MCPToolPolicy in this file compiles; fix its problems first.']);
  });
});

describe('debugging an instance (the replay launch configuration)', () => {
  it('runs skein workflows replay under the Node debugger with the app as its child, up to the chosen event', () => {
    const configuration = replayLaunchConfiguration({ instanceId: 'o-1', workflowName: 'order', grpcPort: 50002, until: 3, appCommand: ['node', 'dist/worker.js'], cliPath: '/x/cli.js', cwd: '/w' });
    assert.equal(configuration.type, 'node');
    assert.equal(configuration.program, '/x/cli.js');
    assert.deepEqual(configuration.args, ['workflows', 'replay', 'o-1', '--dapr-grpc-port', '50002', '--until', '3', '--', 'node', 'dist/worker.js']);
    assert.equal(configuration.autoAttachChildProcesses, true);
    assert.equal(configuration.name, 'Replay order o-1 to event 3');
  });

  it('says why when the app was not started by skein run', () => {
    assert.throws(() => replayLaunchConfiguration({ instanceId: 'o-1', workflowName: 'order', grpcPort: 1, appCommand: [], cliPath: '/x', cwd: '/w' }), /its command is unknown/);
  });

  it('accepts a debug message from the instance view only with a sane event number', () => {
    assert.deepEqual(parseFromWebview({ type: 'debug', until: 4 }), { type: 'debug', until: 4 });
    assert.deepEqual(parseFromWebview({ type: 'debug' }), { type: 'debug' });
    assert.equal(parseFromWebview({ type: 'debug', until: -1 }), undefined);
    assert.equal(parseFromWebview({ type: 'debug', until: '3; rm' }), undefined);
  });
});

describe('stores start over on a new connection', () => {
  it('clear forgets every trace, decision and instance', () => {
    const traces = new TraceStore();
    mcpTrace(T1, 0).forEach((one) => traces.add(one));
    traces.clear();
    assert.deepEqual([traces.size, traces.spans, traces.list().length], [0, 0, 0]);
    const decisions = new DecisionStore();
    decisions.add(decision({ allowed: true, rule: 'r' }));
    decisions.clear();
    assert.equal(decisions.list().length, 0);
    const workflows = new WorkflowStore();
    workflows.add(workflowEvent('workflow.created', 0));
    workflows.clear();
    assert.equal(workflows.list().length, 0);
    assert.equal(workflows.add(workflowEvent('workflow.created', 0)), true, 'an event seen before the clear is taken again');
  });
});
