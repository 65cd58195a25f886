/**
 * Turning published spans into traces for `skein traces`: per-trace summaries for the list, the span tree and the
 * terminal waterfall of one trace. Pure: no I/O, no clock.
 */
import type { SpanAttributeValue, SpanAttributes, SpanEvent } from './span-event.js';

/** A trace is `error` when any of its spans failed. */
export type TraceStatus = 'ok' | 'error';

/** One line of `skein traces`. */
export interface TraceSummary {
  readonly traceId: string;
  /** Name of the root span; the earliest span when the root was not recorded (an untraced caller, say). */
  readonly rootName: string;
  /** App IDs whose sidecars recorded spans of the trace, in order of their first span. */
  readonly apps: readonly string[];
  /** MCP tools called in the trace (`gen_ai.tool.name`). */
  readonly tools: readonly string[];
  readonly spanCount: number;
  /** Start of the earliest span, RFC 3339. */
  readonly startTime: string;
  /** From the earliest start to the latest end, in milliseconds. */
  readonly durationMs: number;
  readonly status: TraceStatus;
}

/** What `skein traces` filters traces on. */
export interface TraceFilter {
  /** Traces any span of which was recorded by this app. */
  app?: string;
  /** Traces calling this MCP tool. */
  tool?: string;
  status?: TraceStatus;
}

/** A span failed when its status says so or it carries an `error.type` (a tool result with `isError`, say). */
export function isErrorSpan(span: SpanEvent): boolean {
  return span.status.code === 'error' || span.attributes['error.type'] !== undefined;
}

function toolOf(span: SpanEvent): string | undefined {
  const tool = span.attributes['gen_ai.tool.name'];
  return typeof tool === 'string' ? tool : undefined;
}

interface Accumulated {
  traceId: string;
  root: SpanEvent | undefined;
  earliest: SpanEvent;
  start: bigint;
  end: bigint;
  /** App ID → its earliest span's start and end, for ordering the apps by when they joined the trace. */
  apps: Map<string, { start: bigint; end: bigint }>;
  tools: string[];
  spanCount: number;
  error: boolean;
}

/**
 * Summaries of every trace seen, built one span at a time so listing a large stream keeps only a few numbers
 * per trace, never the spans.
 */
export class TraceSummaries {
  private readonly traces = new Map<string, Accumulated>();

  /** Counts `span` into the summary of its trace. */
  add(span: SpanEvent): void {
    const start = BigInt(span.startTimeUnixNano);
    const end = BigInt(span.endTimeUnixNano);
    const known = this.traces.get(span.traceId);
    if (!known) {
      this.traces.set(span.traceId, {
        traceId: span.traceId,
        root: span.parentSpanId === undefined ? span : undefined,
        earliest: span,
        start,
        end,
        apps: new Map([[span.appId, { start, end }]]),
        tools: toolOf(span) === undefined ? [] : [toolOf(span) as string],
        spanCount: 1,
        error: isErrorSpan(span),
      });
      return;
    }
    if (span.parentSpanId === undefined && (!known.root || start < BigInt(known.root.startTimeUnixNano))) known.root = span;
    if (start < known.start) {
      known.start = start;
      known.earliest = span;
    }
    if (end > known.end) known.end = end;
    const joined = known.apps.get(span.appId);
    if (joined === undefined || earlier({ start, end }, joined) < 0) known.apps.set(span.appId, { start, end });
    const tool = toolOf(span);
    if (tool !== undefined && !known.tools.includes(tool)) known.tools.push(tool);
    known.spanCount += 1;
    known.error ||= isErrorSpan(span);
  }

  /** The `limit` most recent traces passing `filter`, oldest first (so the newest ends up next to the prompt). */
  list(filter: TraceFilter = {}, limit = Infinity): TraceSummary[] {
    const matching = [...this.traces.values()]
      .filter((trace) => (filter.app === undefined || trace.apps.has(filter.app)) && (filter.tool === undefined || trace.tools.includes(filter.tool)))
      .filter((trace) => filter.status === undefined || (filter.status === 'error') === trace.error)
      .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.traceId.localeCompare(b.traceId)));
    return matching.slice(Math.max(0, matching.length - limit)).map((trace) => ({
      traceId: trace.traceId,
      rootName: (trace.root ?? trace.earliest).name,
      apps: [...trace.apps.entries()].sort(([, a], [, b]) => earlier(a, b)).map(([app]) => app),
      tools: [...trace.tools],
      spanCount: trace.spanCount,
      startTime: new Date(Number(trace.start / 1_000_000n)).toISOString(),
      durationMs: nanosToMs(trace.end - trace.start),
      status: trace.error ? 'error' : 'ok',
    }));
  }
}

/**
 * Orders by start, then the longer first: SDK start times often have only millisecond precision, and of two spans
 * starting in the same millisecond the enclosing one (the caller) ends later.
 */
function earlier(a: { start: bigint; end: bigint }, b: { start: bigint; end: bigint }): number {
  if (a.start !== b.start) return a.start < b.start ? -1 : 1;
  return a.end > b.end ? -1 : a.end < b.end ? 1 : 0;
}

function nanosToMs(nanos: bigint): number {
  return Number(nanos) / 1e6;
}

/** Milliseconds as people read them: `0.42 ms`, `12.3 ms`, `1.24 s`. */
export function formatMs(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** Header of the trace list. */
export function traceListHeader(): string {
  return ['START'.padEnd(24), 'TRACE ID'.padEnd(32), 'STATUS', 'SPANS', 'DURATION'.padStart(9), 'ROOT'.padEnd(28), 'APPS'].join('  ');
}

/** One trace as a line of the list. */
export function formatTraceSummary(summary: TraceSummary): string {
  return [
    summary.startTime.padEnd(24),
    summary.traceId,
    (summary.status === 'error' ? 'ERROR' : 'ok').padEnd(6),
    String(summary.spanCount).padStart(5),
    formatMs(summary.durationMs).padStart(9),
    summary.rootName.padEnd(28),
    summary.apps.join(','),
  ].join('  ');
}

/** Trace ids among `ids` that `query` names: the one equal to it, or every one starting with it. */
export function matchTraceIds(ids: Iterable<string>, query: string): string[] {
  const wanted = query.toLowerCase();
  const all = [...ids];
  return all.includes(wanted) ? [wanted] : all.filter((id) => id.startsWith(wanted));
}

/** A span with its children, ordered by start. */
export interface SpanNode {
  readonly span: SpanEvent;
  readonly depth: number;
  readonly children: SpanNode[];
}

/** Start and end of each span, parsed once per tree: a sort compares each span many times. */
function spanTimes(spans: Iterable<SpanEvent>): Map<SpanEvent, { start: bigint; end: bigint }> {
  const times = new Map<SpanEvent, { start: bigint; end: bigint }>();
  for (const span of spans) times.set(span, { start: BigInt(span.startTimeUnixNano), end: BigInt(span.endTimeUnixNano) });
  return times;
}

function byStartOf(times: Map<SpanEvent, { start: bigint; end: bigint }>): (a: SpanEvent, b: SpanEvent) => number {
  return (a, b) => {
    const order = earlier(times.get(a) as { start: bigint; end: bigint }, times.get(b) as { start: bigint; end: bigint });
    return order !== 0 ? order : a.name.localeCompare(b.name);
  };
}

/**
 * The spans of one trace as a forest by `parentSpanId`. A span whose parent was not recorded (sampled out, recorded
 * by an untraced caller, or dropped) becomes a root, so nothing published is ever hidden. A repeated span id keeps
 * its first copy.
 */
export function buildSpanTree(spans: readonly SpanEvent[]): SpanNode[] {
  const unique = new Map<string, SpanEvent>();
  for (const span of spans) if (!unique.has(span.spanId)) unique.set(span.spanId, span);
  const children = new Map<string, SpanEvent[]>();
  const roots: SpanEvent[] = [];
  for (const span of unique.values()) {
    const parent = span.parentSpanId;
    if (parent !== undefined && parent !== span.spanId && unique.has(parent)) {
      const siblings = children.get(parent) ?? [];
      siblings.push(span);
      children.set(parent, siblings);
    } else {
      roots.push(span);
    }
  }
  const byStart = byStartOf(spanTimes(unique.values()));
  const placed = new Set<string>();
  const grow = (span: SpanEvent, depth: number): SpanNode => {
    placed.add(span.spanId);
    const kids = (children.get(span.spanId) ?? []).filter((child) => !placed.has(child.spanId)).sort(byStart);
    return { span, depth, children: kids.map((child) => grow(child, depth + 1)) };
  };
  const forest = roots.sort(byStart).map((root) => grow(root, 0));
  // Spans in a parent cycle (malformed data) are reachable from no root; show them as roots too.
  for (const span of [...unique.values()].sort(byStart)) if (!placed.has(span.spanId)) forest.push(grow(span, 0));
  return forest;
}

/** The span tree of `spans` as one list in tree order: each span followed by its children (a waterfall's rows). */
export function spanTreeInOrder(spans: readonly SpanEvent[]): SpanNode[] {
  const nodes: SpanNode[] = [];
  const walk = (node: SpanNode): void => {
    nodes.push(node);
    node.children.forEach(walk);
  };
  buildSpanTree(spans).forEach(walk);
  return nodes;
}

/** Attributes shown under a span in the waterfall, in this order, when present. */
export const KEY_ATTRIBUTES: readonly string[] = Object.freeze([
  'mcp.method.name',
  'gen_ai.tool.name',
  'mcp.session.id',
  'jsonrpc.request.id',
  'error.type',
  'http.request.method',
  'url.path',
  'http.response.status_code',
  'rpc.method',
  'rpc.grpc.status_code',
  'server.address',
]);

/** Layout of the waterfall. */
export interface WaterfallOptions {
  /** Characters of the timeline bar. */
  barWidth?: number;
  /** Characters of the span-name column (indent included); longer names are cut with `…`. */
  labelWidth?: number;
  /** Attributes listed per event at most. */
  maxEventAttributes?: number;
}

function formatValue(value: SpanAttributeValue): string {
  const text = Array.isArray(value) ? `[${value.map((item) => String(item)).join(',')}]` : String(value);
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}

function formatAttributes(attributes: SpanAttributes, keys: readonly string[]): string {
  return keys
    .filter((key) => attributes[key] !== undefined)
    .map((key) => `${key}=${formatValue(attributes[key] as SpanAttributeValue)}`)
    .join(' ');
}

function fit(text: string, width: number): string {
  return text.length <= width ? text.padEnd(width) : `${text.slice(0, Math.max(0, width - 1))}…`;
}

/**
 * One trace as an indented waterfall: a header, then per span its name and app (indented by depth), a bar placed
 * and sized on the trace's timeline, offset, duration and status; under it the key attributes and its events
 * (policy decisions among them) with their offsets.
 */
export function renderWaterfall(spans: readonly SpanEvent[], options: WaterfallOptions = {}): string[] {
  if (spans.length === 0) return [];
  const barWidth = options.barWidth ?? 40;
  const maxEventAttributes = options.maxEventAttributes ?? 8;
  const nodes = spanTreeInOrder(spans);
  const start = nodes.reduce((min, node) => (BigInt(node.span.startTimeUnixNano) < min ? BigInt(node.span.startTimeUnixNano) : min), BigInt(nodes[0]?.span.startTimeUnixNano ?? '0'));
  const end = nodes.reduce((max, node) => (BigInt(node.span.endTimeUnixNano) > max ? BigInt(node.span.endTimeUnixNano) : max), start);
  const total = end - start;
  const label = (node: SpanNode): string => `${'  '.repeat(node.depth)}${node.span.name} [${node.span.appId}]`;
  const labelWidth = options.labelWidth ?? Math.min(60, Math.max(...nodes.map((node) => label(node).length)));
  const offsetMs = (nanos: string): number => nanosToMs(BigInt(nanos) - start);
  const column = (ms: number): number => (total === 0n ? 0 : Math.min(barWidth - 1, Math.floor((ms / nanosToMs(total)) * barWidth)));

  const apps = [...new Set(nodes.map((node) => node.span.appId))];
  const failed = nodes.some((node) => isErrorSpan(node.span));
  const first = nodes.find((node) => BigInt(node.span.startTimeUnixNano) === start)?.span;
  const lines = [
    `trace ${nodes[0]?.span.traceId ?? ''}  ${nodes.length} span${nodes.length === 1 ? '' : 's'}  apps ${apps.join(', ')}  ${formatMs(nanosToMs(total))}  ${failed ? 'ERROR' : 'ok'}`,
    `started ${first?.startTime ?? ''}`,
    '',
    `${''.padEnd(labelWidth)}  ${'0'.padEnd(barWidth - formatMs(nanosToMs(total)).length)}${formatMs(nanosToMs(total))}`,
  ];
  for (const node of nodes) {
    const { span } = node;
    const from = column(offsetMs(span.startTimeUnixNano));
    const to = Math.max(from + 1, Math.min(barWidth, Math.ceil(total === 0n ? barWidth : (offsetMs(span.endTimeUnixNano) / nanosToMs(total)) * barWidth)));
    const bar = `${' '.repeat(from)}${'█'.repeat(to - from)}`.padEnd(barWidth);
    // `unset` is OpenTelemetry's default for a span that did not fail; people read it as ok.
    const status = isErrorSpan(span) ? `ERROR${span.status.message ? `: ${span.status.message}` : ''}` : 'ok';
    lines.push(`${fit(label(node), labelWidth)}  ${bar}  +${formatMs(offsetMs(span.startTimeUnixNano)).padStart(9)}  ${formatMs(span.durationMs).padStart(9)}  ${status}`);
    const indent = `${'  '.repeat(node.depth)}    `;
    const keys = formatAttributes(span.attributes, KEY_ATTRIBUTES);
    if (keys) lines.push(`${indent}${keys}`);
    for (const timed of span.events) {
      const attributes = formatAttributes(timed.attributes, Object.keys(timed.attributes).slice(0, maxEventAttributes));
      lines.push(`${indent}◆ +${formatMs(offsetMs(timed.timeUnixNano))} ${timed.name}${attributes ? ` ${attributes}` : ''}`);
    }
  }
  return lines;
}
