/**
 * The traces the editor shows: spans from the telemetry stream kept per trace, summarised and filtered for the
 * tree (app → trace → spans), and laid out for the waterfall. Pure: no VS Code, no I/O, no clock.
 */
import { KEY_ATTRIBUTES, isErrorSpan, spanTreeInOrder, type SpanEvent, type SpanNode } from '@skein/core';

/** Span event names the runtime records, read here to mark the waterfall. */
export const SPAN_EVENTS = Object.freeze({
  decision: 'skein.decision',
  retry: 'skein.retry',
  timeout: 'skein.timeout',
  breaker: 'skein.circuit_breaker.state',
});

/** A call counts as failed when its span failed, or a policy refused it on the way. */
export function isFailedSpan(span: SpanEvent): boolean {
  return isErrorSpan(span) || span.events.some((event) => event.name === SPAN_EVENTS.decision && event.attributes['skein.decision.allowed'] === false);
}

/** What the trace list filters on. Every field narrows; none set shows everything. */
export interface TraceFilter {
  /** Traces any span of which this app recorded. */
  app?: string;
  /** Traces with a span of this MCP method (`tools/call`, ...). */
  method?: string;
  /** Traces calling this tool. */
  tool?: string;
  status?: 'ok' | 'error';
  /** Traces that started at or after this time (ms since the epoch). */
  sinceMs?: number;
}

/** One trace as the list shows it. */
export interface TraceItem {
  readonly traceId: string;
  readonly rootName: string;
  readonly apps: readonly string[];
  readonly methods: readonly string[];
  readonly tools: readonly string[];
  readonly spanCount: number;
  /** Start of the earliest span, ms since the epoch. */
  readonly startMs: number;
  readonly durationMs: number;
  readonly status: 'ok' | 'error';
}

interface Held {
  spans: SpanEvent[];
  ids: Set<string>;
  item: TraceItem;
}

function stringAttribute(span: SpanEvent, key: string): string | undefined {
  const value = span.attributes[key];
  return typeof value === 'string' ? value : undefined;
}

function nanosToMs(nanos: string): number {
  return Number(BigInt(nanos) / 1000n) / 1000;
}

function summarise(traceId: string, spans: readonly SpanEvent[]): TraceItem {
  let start = Infinity;
  let end = -Infinity;
  let root: SpanEvent | undefined;
  let earliest: SpanEvent | undefined;
  const apps: string[] = [];
  const methods = new Set<string>();
  const tools = new Set<string>();
  let failed = false;
  for (const span of spans) {
    const from = nanosToMs(span.startTimeUnixNano);
    const to = nanosToMs(span.endTimeUnixNano);
    if (from < start) {
      start = from;
      earliest = span;
    }
    if (to > end) end = to;
    if (span.parentSpanId === undefined && (!root || from < nanosToMs(root.startTimeUnixNano))) root = span;
    if (!apps.includes(span.appId)) apps.push(span.appId);
    const method = stringAttribute(span, 'mcp.method.name');
    if (method) methods.add(method);
    const tool = stringAttribute(span, 'gen_ai.tool.name');
    if (tool) tools.add(tool);
    failed ||= isFailedSpan(span);
  }
  return {
    traceId,
    rootName: (root ?? earliest)?.name ?? '',
    apps,
    methods: [...methods],
    tools: [...tools],
    spanCount: spans.length,
    startMs: start,
    durationMs: Math.max(0, end - start),
    status: failed ? 'error' : 'ok',
  };
}

/** True when `item` passes `filter`. */
export function matchesTrace(item: TraceItem, filter: TraceFilter): boolean {
  if (filter.app !== undefined && !item.apps.includes(filter.app)) return false;
  if (filter.method !== undefined && !item.methods.includes(filter.method)) return false;
  if (filter.tool !== undefined && !item.tools.includes(filter.tool)) return false;
  if (filter.status !== undefined && item.status !== filter.status) return false;
  if (filter.sinceMs !== undefined && item.startMs < filter.sinceMs) return false;
  return true;
}

/**
 * Spans of the most recent traces, at most `maxSpans` in all: when more arrive, the traces that started first are
 * forgotten whole (a trace is never shown with half its spans dropped for room).
 */
export class TraceStore {
  private readonly traces = new Map<string, Held>();
  private spanCount = 0;
  private readonly maxSpans: number;

  constructor(options: { maxSpans?: number } = {}) {
    this.maxSpans = options.maxSpans ?? 50_000;
  }

  /** Adds a span; false when it was seen already (the stream is read again after a reconnect). */
  add(span: SpanEvent): boolean {
    let held = this.traces.get(span.traceId);
    if (held?.ids.has(span.spanId)) return false;
    if (!held) {
      held = { spans: [], ids: new Set(), item: summarise(span.traceId, []) };
      this.traces.set(span.traceId, held);
    }
    held.spans.push(span);
    held.ids.add(span.spanId);
    held.item = summarise(span.traceId, held.spans);
    this.spanCount += 1;
    this.evict();
    return true;
  }

  private evict(): void {
    if (this.spanCount <= this.maxSpans) return;
    const oldestFirst = [...this.traces.values()].sort((a, b) => a.item.startMs - b.item.startMs);
    for (const held of oldestFirst) {
      if (this.spanCount <= this.maxSpans || this.traces.size === 1) break;
      this.traces.delete(held.item.traceId);
      this.spanCount -= held.spans.length;
    }
  }

  get size(): number {
    return this.traces.size;
  }

  /** Forgets everything (a new connection reads the history window again). */
  clear(): void {
    this.traces.clear();
    this.spanCount = 0;
  }

  get spans(): number {
    return this.spanCount;
  }

  /** Traces passing `filter`, newest first, at most `limit`. */
  list(filter: TraceFilter = {}, limit = Infinity): TraceItem[] {
    const items: TraceItem[] = [];
    for (const held of this.traces.values()) if (matchesTrace(held.item, filter)) items.push(held.item);
    items.sort((a, b) => b.startMs - a.startMs || a.traceId.localeCompare(b.traceId));
    return items.slice(0, limit);
  }

  /** The trace list grouped by app (a trace appears under every app that recorded a span of it), apps by name. */
  byApp(filter: TraceFilter = {}, limitPerApp = Infinity): Array<{ app: string; traces: TraceItem[] }> {
    const groups = new Map<string, TraceItem[]>();
    for (const item of this.list(filter)) {
      for (const app of item.apps) {
        if (filter.app !== undefined && app !== filter.app) continue;
        const group = groups.get(app) ?? [];
        if (group.length < limitPerApp) group.push(item);
        groups.set(app, group);
      }
    }
    return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([app, traces]) => ({ app, traces }));
  }

  trace(traceId: string): TraceItem | undefined {
    return this.traces.get(traceId)?.item;
  }

  spansOf(traceId: string): readonly SpanEvent[] {
    return this.traces.get(traceId)?.spans ?? [];
  }

  /** Every value seen of what the filter can narrow by, for the filter pickers. */
  facets(): { apps: string[]; methods: string[]; tools: string[] } {
    const apps = new Set<string>();
    const methods = new Set<string>();
    const tools = new Set<string>();
    for (const { item } of this.traces.values()) {
      item.apps.forEach((app) => apps.add(app));
      item.methods.forEach((method) => methods.add(method));
      item.tools.forEach((tool) => tools.add(tool));
    }
    const sorted = (values: Set<string>): string[] => [...values].sort();
    return { apps: sorted(apps), methods: sorted(methods), tools: sorted(tools) };
  }
}

/** A marker on a span of the waterfall: a decision, a retry, a timeout or a breaker transition. */
export interface WaterfallMarker {
  readonly kind: 'decision-allow' | 'decision-deny' | 'retry' | 'timeout' | 'breaker' | 'event';
  /** Offset from the trace start, ms. */
  readonly offsetMs: number;
  readonly label: string;
  readonly attributes: Readonly<Record<string, string>>;
}

/** One row of the waterfall, in tree order. */
export interface WaterfallRow {
  readonly spanId: string;
  readonly name: string;
  readonly appId: string;
  readonly depth: number;
  readonly offsetMs: number;
  readonly durationMs: number;
  /** Position and width of the bar, as fractions of the trace (0..1). */
  readonly left: number;
  readonly width: number;
  readonly error: boolean;
  readonly statusMessage?: string;
  readonly kind: string;
  /** MCP and call attributes worth a column: method, tool, session, protocol version, JSON-RPC id, ... */
  readonly attributes: ReadonlyArray<readonly [string, string]>;
  readonly markers: readonly WaterfallMarker[];
  readonly truncated: boolean;
}

/** The waterfall of one trace. */
export interface Waterfall {
  readonly traceId: string;
  readonly totalMs: number;
  readonly startTime: string;
  readonly apps: readonly string[];
  readonly error: boolean;
  readonly rows: readonly WaterfallRow[];
}

/** Attributes a waterfall row shows, in this order, when the span has them: the CLI's, and two more. */
export const WATERFALL_ATTRIBUTES: readonly string[] = Object.freeze([...KEY_ATTRIBUTES, 'mcp.protocol.version', 'skein.target.app_id']);

function text(value: unknown): string {
  return Array.isArray(value) ? value.map(String).join(', ') : String(value);
}

function markerOf(event: SpanEvent['events'][number], offsetMs: number): WaterfallMarker {
  const attributes = Object.fromEntries(Object.entries(event.attributes).map(([key, value]) => [key, text(value)]));
  switch (event.name) {
    case SPAN_EVENTS.decision: {
      const allowed = event.attributes['skein.decision.allowed'] === true;
      return { kind: allowed ? 'decision-allow' : 'decision-deny', offsetMs, label: `${allowed ? 'allowed' : 'denied'} by ${text(event.attributes['skein.decision.source'])} rule ${text(event.attributes['skein.decision.rule'])}`, attributes };
    }
    case SPAN_EVENTS.retry:
      return { kind: 'retry', offsetMs, label: `retry ${text(event.attributes['skein.retry.attempt'])}`, attributes };
    case SPAN_EVENTS.timeout:
      return { kind: 'timeout', offsetMs, label: `timed out after ${text(event.attributes['skein.timeout.ms'])} ms`, attributes };
    case SPAN_EVENTS.breaker:
      return { kind: 'breaker', offsetMs, label: `breaker ${text(event.attributes['skein.circuit_breaker.from'])} → ${text(event.attributes['skein.circuit_breaker.to'])}`, attributes };
    default:
      return { kind: 'event', offsetMs, label: event.name, attributes };
  }
}

/** Lays out one trace: rows in tree order (children under their parent, across sidecars), bars on one timeline. */
export function layoutWaterfall(traceId: string, spans: readonly SpanEvent[]): Waterfall {
  const nodes = spanTreeInOrder(spans);
  if (nodes.length === 0) return { traceId, totalMs: 0, startTime: '', apps: [], error: false, rows: [] };
  let first = (nodes[0] as SpanNode).span;
  let start = BigInt(first.startTimeUnixNano);
  let end = start;
  for (const { span } of nodes) {
    const from = BigInt(span.startTimeUnixNano);
    const to = BigInt(span.endTimeUnixNano);
    if (from < start) {
      start = from;
      first = span;
    }
    if (to > end) end = to;
  }
  const totalMs = Number(end - start) / 1e6;
  const offset = (nanos: string): number => Number(BigInt(nanos) - start) / 1e6;
  const fraction = (ms: number): number => (totalMs === 0 ? 0 : Math.min(1, Math.max(0, ms / totalMs)));
  const rows = nodes.map(({ span, depth }): WaterfallRow => {
    const offsetMs = offset(span.startTimeUnixNano);
    const error = isFailedSpan(span);
    return {
      spanId: span.spanId,
      name: span.name,
      appId: span.appId,
      depth,
      offsetMs,
      durationMs: span.durationMs,
      left: fraction(offsetMs),
      width: Math.max(fraction(span.durationMs), 0.002),
      error,
      ...(span.status.message ? { statusMessage: span.status.message } : {}),
      kind: span.kind,
      attributes: WATERFALL_ATTRIBUTES.filter((key) => span.attributes[key] !== undefined).map((key) => [key, text(span.attributes[key])] as const),
      markers: span.events.map((event) => markerOf(event, offset(event.timeUnixNano))),
      truncated: span.truncated === true,
    };
  });
  return { traceId, totalMs, startTime: first.startTime, apps: [...new Set(rows.map((row) => row.appId))], error: rows.some((row) => row.error), rows };
}
