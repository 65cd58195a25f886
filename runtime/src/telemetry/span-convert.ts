/** Conversion of finished OpenTelemetry SDK spans into the published `SpanEvent` (core's wire shape). */
import { SpanKind, SpanStatusCode, type Attributes, type HrTime } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { SpanAttributeValue, SpanEvent, SpanEventKind, SpanSource } from '@skein/core';

const KINDS: Record<SpanKind, SpanEventKind> = {
  [SpanKind.INTERNAL]: 'internal',
  [SpanKind.SERVER]: 'server',
  [SpanKind.CLIENT]: 'client',
  [SpanKind.PRODUCER]: 'producer',
  [SpanKind.CONSUMER]: 'consumer',
};

const NANOS_PER_SECOND = 1_000_000_000n;

/** Nanoseconds since the epoch of an OpenTelemetry `HrTime`, as a decimal string. */
export function hrTimeToUnixNano(time: HrTime): string {
  return (BigInt(time[0]) * NANOS_PER_SECOND + BigInt(time[1])).toString();
}

function hrTimeToIso(time: HrTime): string {
  return new Date(time[0] * 1000 + Math.floor(time[1] / 1e6)).toISOString();
}

function toAttributes(attributes: Attributes | undefined): Record<string, SpanAttributeValue> {
  const out: Record<string, SpanAttributeValue> = {};
  for (const [key, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null) continue;
    out[key] = Array.isArray(value) ? value.map((item: unknown) => (item === undefined || item === null ? null : (item as string | number | boolean))) : (value);
  }
  return out;
}

/** Converts a finished SDK span into the published event. */
export function toSpanEvent(span: ReadableSpan, source: SpanSource): SpanEvent {
  const context = span.spanContext();
  const status = span.status.code === SpanStatusCode.ERROR ? 'error' : span.status.code === SpanStatusCode.OK ? 'ok' : 'unset';
  const event: { -readonly [K in keyof SpanEvent]: SpanEvent[K] } = {
    version: 1,
    traceId: context.traceId,
    spanId: context.spanId,
    name: span.name,
    kind: KINDS[span.kind] ?? 'internal',
    startTime: hrTimeToIso(span.startTime),
    endTime: hrTimeToIso(span.endTime),
    startTimeUnixNano: hrTimeToUnixNano(span.startTime),
    endTimeUnixNano: hrTimeToUnixNano(span.endTime),
    durationMs: span.duration[0] * 1000 + span.duration[1] / 1e6,
    status: span.status.message ? { code: status, message: span.status.message } : { code: status },
    attributes: toAttributes(span.attributes),
    events: span.events.map((timed) => ({ name: timed.name, time: hrTimeToIso(timed.time), timeUnixNano: hrTimeToUnixNano(timed.time), attributes: toAttributes(timed.attributes) })),
    appId: source.appId,
    namespace: source.namespace,
  };
  const parent = span.parentSpanContext?.spanId;
  if (parent) event.parentSpanId = parent;
  if (span.links.length > 0) event.links = span.links.map((link) => ({ traceId: link.context.traceId, spanId: link.context.spanId, attributes: toAttributes(link.attributes) }));
  const scope = span.instrumentationScope;
  if (scope.name) event.scope = scope.version ? { name: scope.name, version: scope.version } : { name: scope.name };
  return event;
}

