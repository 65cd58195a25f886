/**
 * The `editor` part: how the VS Code extension's view models hold up with 10,000 spans and 1,000 workflow
 * instances — the work behind drawing each tree, filtering it, opening a waterfall and an instance — against the
 * floor of the same data held as a plain array (one pass over the spans). Reports; asserts nothing.
 */
import { performance } from 'node:perf_hooks';
import type { SpanEvent, WorkflowEvent } from '@skein/core';
import { TraceStore, layoutWaterfall } from 'skein-vscode/model/traces';
import { WorkflowStore } from 'skein-vscode/model/workflows';
import { summarise, type LatencySummary } from './stats.js';
import { markdownTable, ms } from './report.js';

/** The sizes the issue names. */
const SPANS = 10_000;
const SPANS_PER_TRACE = 5;
const INSTANCES = 1_000;
const APPS = ['agent', 'gateway', 'mcp-files', 'mcp-search'];
const TOOLS = ['read_file', 'write_file', 'search', 'list_dir'];
const REPEATS = 30;

export interface EditorReport {
  spans: number;
  instances: number;
  rows: Array<{ operation: string; latency: LatencySummary }>;
  elapsedSeconds: number;
}

const BASE = 1_780_000_000_000n * 1_000_000n;

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, '0');
}

/** 10,000 spans in 2,000 traces over four apps: a client span, a server span, and three below it. */
function makeSpans(): SpanEvent[] {
  const spans: SpanEvent[] = [];
  for (let index = 0; index < SPANS; index += 1) {
    const trace = Math.floor(index / SPANS_PER_TRACE);
    const position = index % SPANS_PER_TRACE;
    const start = BASE + BigInt(trace) * 5_000_000n + BigInt(position) * 100_000n;
    const end = start + 2_000_000n - BigInt(position) * 100_000n;
    spans.push({
      version: 1,
      traceId: hex(trace + 1, 32),
      spanId: hex(index + 1, 16),
      ...(position === 0 ? {} : { parentSpanId: hex(trace * SPANS_PER_TRACE + (position === 1 ? 1 : 2), 16) }),
      name: position === 0 ? 'POST /mcp' : 'tools/call',
      kind: position === 0 ? 'client' : 'server',
      startTime: new Date(Number(start / 1_000_000n)).toISOString(),
      endTime: new Date(Number(end / 1_000_000n)).toISOString(),
      startTimeUnixNano: start.toString(),
      endTimeUnixNano: end.toString(),
      durationMs: Number(end - start) / 1e6,
      status: { code: trace % 17 === 0 && position === 1 ? 'error' : 'unset' },
      attributes: { 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': TOOLS[trace % TOOLS.length] as string },
      events: position === 1 ? [{ name: 'skein.decision', time: '', timeUnixNano: start.toString(), attributes: { 'skein.decision.allowed': trace % 11 !== 0, 'skein.decision.source': 'tool-policy', 'skein.decision.rule': 'r' } }] : [],
      appId: APPS[(trace + position) % APPS.length] as string,
      namespace: 'default',
    });
  }
  return spans;
}

/** 1,000 instances of ten events each: created, four activities scheduled and completed, and an end. */
function makeWorkflowEvents(): WorkflowEvent[] {
  const events: WorkflowEvent[] = [];
  for (let instance = 0; instance < INSTANCES; instance += 1) {
    const base = { version: 1 as const, appId: APPS[instance % 2] as string, namespace: 'default', instanceId: `order-${instance}`, workflowName: 'order', executionId: 'e1', traceId: hex(instance + 1, 32), spanId: hex(instance + 1, 16) };
    const at = (second: number): string => new Date(Date.UTC(2026, 11, 4, 10, 0, 0) + instance * 1000 + second * 10).toISOString();
    events.push({ ...base, type: 'workflow.created', time: at(0) });
    for (let task = 0; task < 4; task += 1) {
      events.push({ ...base, type: 'workflow.activity.scheduled', time: at(1 + task * 2), activityName: `step${task}`, taskId: task });
      events.push({ ...base, type: 'workflow.activity.completed', time: at(2 + task * 2), activityName: `step${task}`, taskId: task, durationMs: 10 });
    }
    if (instance % 3 !== 0) events.push({ ...base, type: instance % 10 === 1 ? 'workflow.failed' : 'workflow.completed', time: at(9), durationMs: 90 });
  }
  return events;
}

function time(operation: () => unknown, repeats = REPEATS): LatencySummary {
  const samples: number[] = [];
  for (let round = 0; round < repeats; round += 1) {
    const began = performance.now();
    operation();
    samples.push(performance.now() - began);
  }
  return summarise(samples);
}

/** Runs the part; every measurement is in this process, on data built here. */
export function runEditor(): EditorReport {
  const began = performance.now();
  const spans = makeSpans();
  const events = makeWorkflowEvents();
  const rows: EditorReport['rows'] = [];
  rows.push({ operation: `floor: one pass over ${SPANS} spans in an array (filter by tool)`, latency: time(() => spans.filter((span) => span.attributes['gen_ai.tool.name'] === 'search').length) });
  const store = new TraceStore();
  const ingest = performance.now();
  for (const span of spans) store.add(span);
  rows.push({ operation: `ingest ${SPANS} spans into the trace store (once)`, latency: summarise([performance.now() - ingest]) });
  rows.push({ operation: 'Traces tree: top level (apps with counts)', latency: time(() => store.byApp()) });
  rows.push({ operation: 'Traces tree: expand one app (newest 200 traces)', latency: time(() => store.byApp({ app: 'agent' }, 200)) });
  rows.push({ operation: 'filter: tool = search', latency: time(() => store.list({ tool: 'search' })) });
  rows.push({ operation: 'filter: status = error, app = gateway', latency: time(() => store.list({ status: 'error', app: 'gateway' })) });
  rows.push({ operation: 'one span arriving (add + re-summarise its trace)', latency: time(() => store.add({ ...(spans[0] as SpanEvent), spanId: hex(Math.floor(Math.random() * 2 ** 48), 16) }), 200) });
  rows.push({ operation: 'waterfall of one 5-span trace', latency: time(() => layoutWaterfall(hex(1, 32), store.spansOf(hex(1, 32)))) });
  const oneBigTrace = spans.map((span) => ({ ...span, traceId: hex(1, 32) }));
  rows.push({ operation: `waterfall of one ${SPANS}-span trace`, latency: time(() => layoutWaterfall(hex(1, 32), oneBigTrace), 5) });
  const workflows = new WorkflowStore();
  const workflowIngest = performance.now();
  for (const event of events) workflows.add(event);
  rows.push({ operation: `ingest ${events.length} workflow events (${INSTANCES} instances, once)`, latency: summarise([performance.now() - workflowIngest]) });
  rows.push({ operation: 'Workflows tree: app → status → instances', latency: time(() => workflows.byAppAndStatus(200)) });
  rows.push({ operation: 'open one instance (timeline)', latency: time(() => workflows.instance('gateway', 'order-501')) });
  rows.push({ operation: 'find an instance by id fragment', latency: time(() => workflows.find('order-99')) });
  return { spans: SPANS, instances: INSTANCES, rows, elapsedSeconds: (performance.now() - began) / 1000 };
}

/** The part as Markdown. */
export function renderEditor(report: EditorReport): string {
  return [
    `### Editor view models (${report.spans} spans, ${report.instances} workflow instances)`,
    '',
    'Time of the work behind each view action, in this process; VS Code then draws only the rows on screen.',
    '',
    markdownTable(['operation', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'runs'], report.rows.map(({ operation, latency }) => [operation, ms(latency.p50), ms(latency.p90), ms(latency.p99), ms(latency.max), String(latency.count)])),
  ].join('\n');
}
