/**
 * The span as published on the telemetry stream (schema: `@skein/proto/schemas/span-event.schema.json`). One
 * JSON object per finished span, self-contained so a reader (the CLI, the editor) needs no OpenTelemetry code.
 * Pure: encoding and parsing only, no I/O; the conversion from OpenTelemetry spans lives with the tracer.
 */

/** A span or event attribute value: a scalar or a homogeneous list (nulls kept where the SDK had them). */
export type SpanAttributeValue = string | number | boolean | ReadonlyArray<string | number | boolean | null>;

/** Flat attribute map, OpenTelemetry keys unchanged (`mcp.method.name`, `gen_ai.tool.name`, ...). */
export type SpanAttributes = Readonly<Record<string, SpanAttributeValue>>;

/** OpenTelemetry span kinds, spelled as in OTLP JSON without the prefix. */
export type SpanEventKind = 'internal' | 'server' | 'client' | 'producer' | 'consumer';

/** `unset` (no status recorded), `ok`, or `error` with a message. */
export type SpanEventStatusCode = 'unset' | 'ok' | 'error';

/** Something that happened during a span, such as a policy decision. */
export interface SpanTimedEvent {
  readonly name: string;
  /** RFC 3339, UTC, millisecond precision. */
  readonly time: string;
  /** Nanoseconds since the Unix epoch, as a decimal string (exact, unlike a JSON number). */
  readonly timeUnixNano: string;
  readonly attributes: SpanAttributes;
}

/** A link to a span of another (or the same) trace. */
export interface SpanEventLink {
  readonly traceId: string;
  readonly spanId: string;
  readonly attributes: SpanAttributes;
}

/** One finished span as published on `skein.spans.<namespace>.<appId>`. */
export interface SpanEvent {
  /** Schema version of this event shape. */
  readonly version: 1;
  /** W3C trace id, 32 lowercase hex. */
  readonly traceId: string;
  /** W3C span id, 16 lowercase hex. */
  readonly spanId: string;
  /** Span id of the parent; absent on a root span. The parent may have been recorded by another sidecar. */
  readonly parentSpanId?: string;
  readonly name: string;
  readonly kind: SpanEventKind;
  /** RFC 3339, UTC, millisecond precision. */
  readonly startTime: string;
  readonly endTime: string;
  /** Nanoseconds since the Unix epoch, decimal strings: exact, for ordering and offsets. */
  readonly startTimeUnixNano: string;
  readonly endTimeUnixNano: string;
  /** End minus start, in (fractional) milliseconds. */
  readonly durationMs: number;
  readonly status: { readonly code: SpanEventStatusCode; readonly message?: string };
  readonly attributes: SpanAttributes;
  readonly events: readonly SpanTimedEvent[];
  readonly links?: readonly SpanEventLink[];
  /** App ID of the sidecar that recorded the span. */
  readonly appId: string;
  /** Namespace of the sidecar that recorded the span. */
  readonly namespace: string;
  /** The instrumentation scope that created the span. */
  readonly scope?: { readonly name: string; readonly version?: string };
  /** Set when attributes or events were shortened or dropped to keep the message small. */
  readonly truncated?: true;
}

/** Where a span was recorded. */
export interface SpanSource {
  appId: string;
  namespace: string;
}

/** How long a string attribute may stay once a span had to be shortened. */
const SHORTENED_STRING = 256;
/** How many events a shortened span keeps (the first ones: decisions happen early). */
const SHORTENED_EVENTS = 16;

function shortenAttributes(attributes: SpanAttributes): SpanAttributes {
  const out: Record<string, SpanAttributeValue> = {};
  for (const [key, value] of Object.entries(attributes)) {
    out[key] = typeof value === 'string' && value.length > SHORTENED_STRING ? `${value.slice(0, SHORTENED_STRING)}…` : value;
  }
  return out;
}

/**
 * The JSON of `event`, at most `maxBytes` long (UTF-8). Oversized spans lose long attribute values and late
 * events first, then every attribute and event; identity, timing and status always survive, flagged `truncated`.
 */
export function encodeSpanEvent(event: SpanEvent, maxBytes: number): string {
  const whole = JSON.stringify(event);
  if (Buffer.byteLength(whole) <= maxBytes) return whole;
  const shortened: SpanEvent = {
    ...event,
    attributes: shortenAttributes(event.attributes),
    events: event.events.slice(0, SHORTENED_EVENTS).map((timed) => ({ ...timed, attributes: shortenAttributes(timed.attributes) })),
    truncated: true,
  };
  const smaller = JSON.stringify(shortened);
  if (Buffer.byteLength(smaller) <= maxBytes) return smaller;
  const { links: _links, ...bare } = shortened;
  return JSON.stringify({ ...bare, attributes: {}, events: [] });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const UNIX_NANO = /^\d+$/;

/**
 * Reads one message of the stream back into a `SpanEvent`, or undefined when it is not one of version 1. Checks
 * the fields readers rely on (ids, times, status); the rest is taken as published.
 */
export function parseSpanEvent(data: unknown): SpanEvent | undefined {
  if (!isRecord(data) || data['version'] !== 1) return undefined;
  const { traceId, spanId, parentSpanId, name, startTimeUnixNano, endTimeUnixNano, status, appId, namespace } = data;
  if (typeof traceId !== 'string' || !HEX32.test(traceId) || typeof spanId !== 'string' || !HEX16.test(spanId)) return undefined;
  if (parentSpanId !== undefined && (typeof parentSpanId !== 'string' || !HEX16.test(parentSpanId))) return undefined;
  if (typeof name !== 'string' || typeof appId !== 'string' || typeof namespace !== 'string') return undefined;
  if (typeof startTimeUnixNano !== 'string' || !UNIX_NANO.test(startTimeUnixNano) || typeof endTimeUnixNano !== 'string' || !UNIX_NANO.test(endTimeUnixNano)) return undefined;
  if (!isRecord(status) || !['unset', 'ok', 'error'].includes(String(status['code']))) return undefined;
  const attributes = isRecord(data['attributes']) ? data['attributes'] : {};
  const events = Array.isArray(data['events']) ? data['events'].filter((timed): timed is SpanTimedEvent => isRecord(timed) && typeof timed['name'] === 'string' && typeof timed['timeUnixNano'] === 'string' && UNIX_NANO.test(timed['timeUnixNano'])) : [];
  return {
    ...(data as unknown as SpanEvent),
    attributes: attributes as SpanAttributes,
    events: events.map((timed) => ({ ...timed, attributes: isRecord(timed.attributes) ? timed.attributes : {} })),
  };
}
