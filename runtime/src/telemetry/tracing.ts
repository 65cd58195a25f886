import { createRequire } from 'node:module';
import { ROOT_CONTEXT, context as otelContext, trace, SpanKind, SpanStatusCode, TraceFlags, type Context, type Span, type Tracer, type TextMapGetter, type TextMapSetter, type Attributes } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ParentBasedSampler, RandomIdGenerator, SamplingDecision, TraceIdRatioBasedSampler, type IdGenerator, type SpanExporter, type SpanLimits, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { OTLPTraceExporter as OtlpExporterClass } from '@opentelemetry/exporter-trace-otlp-http';
import { logger } from '@skein/core';
import type { TracingSpec } from '../config/types.js';

const log = logger('tracing');

export { SpanKind, SpanStatusCode, type Context, type Span, type Attributes };

/** Tracing settings, from `Configuration.spec.tracing`. */
export interface TracingOptions {
  appId: string;
  namespace: string;
  /** 0..1; 0 records nothing, but incoming trace context is still passed on. */
  samplingRate: number;
  /** OTLP/HTTP traces URL (…/v1/traces), when spans are exported there. */
  otlpUrl: string | undefined;
}

/** Reads `spec.tracing` into options. No tracing section: sampling 0 (nothing recorded, context still propagated). */
export function tracingOptionsFrom(spec: TracingSpec | undefined, appId: string, namespace: string): TracingOptions {
  const rate = spec?.samplingRate === undefined || spec.samplingRate === '' ? (spec ? 1 : 0) : Number(spec.samplingRate);
  let otlpUrl: string | undefined;
  const address = spec?.otel?.endpointAddress;
  if (address) {
    const base = /^https?:\/\//.test(address) ? address : `${spec?.otel?.isSecure ? 'https' : 'http'}://${address}`;
    otlpUrl = base.endsWith('/v1/traces') ? base : `${base.replace(/\/$/, '')}/v1/traces`;
  }
  return { appId, namespace, samplingRate: Math.min(1, Math.max(0, rate)), otlpUrl };
}

/**
 * Limits on every span: several attribute values (tool names, decision reasons, request ids) come from callers,
 * so without them one request could make every exported span, stream event and collector entry arbitrarily large.
 */
export const SPAN_LIMITS: Readonly<Required<SpanLimits>> = Object.freeze({
  attributeValueLengthLimit: 256,
  attributeCountLimit: 128,
  linkCountLimit: 128,
  // A 2025-03-26 batch of 100 messages puts one decision event per message on its span; all of them are kept.
  eventCountLimit: 128,
  attributePerEventCountLimit: 32,
  attributePerLinkCountLimit: 32,
});

const getter: TextMapGetter<Record<string, string | string[] | undefined>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key.toLowerCase()],
};
const setter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

/**
 * A span that already happened, with ids and times of its own rather than generated ones: a workflow's run and its
 * activities, recorded from the instance's history by whichever sidecar owns it at the end.
 */
export interface FinishedSpan {
  name: string;
  kind: SpanKind;
  traceId: string;
  spanId: string;
  /** Span id of the parent; absent for a root span. */
  parentSpanId?: string | undefined;
  /** Whether the trace is sampled, when a caller's trace context said so; otherwise decided from the trace id. */
  sampled?: boolean | undefined;
  startMs: number;
  endMs: number;
  attributes: Attributes;
  /** Marks the span failed (see {@link failSpan}). */
  error?: { type: string; message: string } | undefined;
}

/** Random ids, except for the one span being started by {@link Tracing.record}, whose ids are given. */
class GivenIdGenerator implements IdGenerator {
  given: { traceId: string; spanId: string } | undefined;
  private readonly random = new RandomIdGenerator();

  generateTraceId(): string {
    return this.given?.traceId ?? this.random.generateTraceId();
  }

  generateSpanId(): string {
    return this.given?.spanId ?? this.random.generateSpanId();
  }
}

/**
 * The OTLP/HTTP exporter, loaded only by a sidecar that sends to a collector: with its transformer and metrics
 * packages it is about 8 MiB of resident memory that every other sidecar would carry for nothing.
 */
function otlpExporter(): typeof OtlpExporterClass {
  return (createRequire(import.meta.url)('@opentelemetry/exporter-trace-otlp-http') as { OTLPTraceExporter: typeof OtlpExporterClass }).OTLPTraceExporter;
}

/**
 * A sidecar's tracing: an OpenTelemetry provider whose spans go to the configured OTLP/HTTP endpoint and to any
 * extra exporters (the telemetry stream), always through batching processors, so a slow or dead collector never
 * delays a call. Context travels as W3C `traceparent`/`tracestate`; a malformed header is ignored and a new trace
 * starts.
 */
export class Tracing {
  readonly tracer: Tracer;
  readonly enabled: boolean;
  private readonly provider: NodeTracerProvider | undefined;
  private readonly propagator = new W3CTraceContextPropagator();
  private readonly ids = new GivenIdGenerator();
  private readonly rootSampler: TraceIdRatioBasedSampler;

  constructor(options: TracingOptions, extraExporters: readonly SpanExporter[] = []) {
    this.enabled = options.samplingRate > 0;
    this.rootSampler = new TraceIdRatioBasedSampler(options.samplingRate);
    if (!this.enabled) {
      this.provider = undefined;
      this.tracer = trace.getTracer('skein');
      return;
    }
    const processors: SpanProcessor[] = [];
    const batch = { maxQueueSize: 4096, maxExportBatchSize: 256, scheduledDelayMillis: 500, exportTimeoutMillis: 10_000 };
    if (options.otlpUrl) processors.push(new BatchSpanProcessor(new (otlpExporter())({ url: options.otlpUrl, timeoutMillis: 5000 }), batch));
    for (const exporter of extraExporters) processors.push(new BatchSpanProcessor(exporter, batch));
    this.provider = new NodeTracerProvider({
      resource: resourceFromAttributes({ 'service.name': options.appId, 'service.namespace': options.namespace, 'skein.app_id': options.appId }),
      sampler: new ParentBasedSampler({ root: this.rootSampler }),
      idGenerator: this.ids,
      spanLimits: { ...SPAN_LIMITS },
      spanProcessors: processors,
    });
    this.tracer = this.provider.getTracer('skein', '0.1.0');
    log.info('tracing on', { samplingRate: options.samplingRate, otlp: options.otlpUrl ?? 'none', exporters: extraExporters.length });
  }

  /** The context carried by `traceparent`/`tracestate` in `carrier` (lower-case keys); the root context when absent or malformed. */
  extract(carrier: Record<string, string | string[] | undefined>): Context {
    return this.propagator.extract(otelContext.active(), carrier, getter);
  }

  /** `traceparent` (and `tracestate`) for `ctx`; empty when nothing is being traced there. */
  inject(ctx: Context): Record<string, string> {
    const carrier: Record<string, string> = {};
    this.propagator.inject(ctx, carrier, setter);
    return carrier;
  }

  /** Starts a span as a child of `parent`; returns it with the context that has it as the active span. */
  start(name: string, kind: SpanKind, parent: Context, attributes: Attributes = {}): { span: Span; context: Context } {
    const span = this.tracer.startSpan(name, { kind, attributes }, parent);
    return { span, context: trace.setSpan(parent, span) };
  }

  /**
   * Records a span that already happened, under the ids it is given. Whether it is kept follows `sampled` or, without
   * it, the ratio sampler on the trace id, which every sidecar decides the same way: the spans of one trace recorded
   * by different sidecars are all kept or all dropped.
   */
  record(finished: FinishedSpan): void {
    if (!this.enabled) return;
    const sampled = finished.sampled ?? this.rootSampler.shouldSample(ROOT_CONTEXT, finished.traceId).decision === SamplingDecision.RECORD_AND_SAMPLED;
    const parent = finished.parentSpanId
      ? trace.setSpanContext(ROOT_CONTEXT, { traceId: finished.traceId, spanId: finished.parentSpanId, traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE, isRemote: true })
      : ROOT_CONTEXT;
    // startSpan asks the id generator synchronously, once for the span id and (for a root) once for the trace id.
    this.ids.given = { traceId: finished.traceId, spanId: finished.spanId };
    let span: Span;
    try {
      span = this.tracer.startSpan(finished.name, { kind: finished.kind, attributes: finished.attributes, startTime: finished.startMs }, parent);
    } finally {
      this.ids.given = undefined;
    }
    if (finished.error) failSpan(span, finished.error.type, finished.error.message);
    span.end(Math.max(finished.startMs, finished.endMs));
  }

  /** Flushes what is queued and stops exporting. */
  async shutdown(): Promise<void> {
    await this.provider?.shutdown().catch((error: unknown) => log.warn('tracing shutdown failed', { reason: (error as Error).message }));
  }
}

/** Marks a span failed with `message` and an `error.type`. */
export function failSpan(span: Span, errorType: string, message: string): void {
  span.setAttribute('error.type', errorType);
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}
