import { context as otelContext, trace, SpanKind, SpanStatusCode, type Context, type Span, type Tracer, type TextMapGetter, type TextMapSetter, type Attributes } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, type SpanExporter, type SpanLimits, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
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

  constructor(options: TracingOptions, extraExporters: readonly SpanExporter[] = []) {
    this.enabled = options.samplingRate > 0;
    if (!this.enabled) {
      this.provider = undefined;
      this.tracer = trace.getTracer('skein');
      return;
    }
    const processors: SpanProcessor[] = [];
    const batch = { maxQueueSize: 4096, maxExportBatchSize: 256, scheduledDelayMillis: 500, exportTimeoutMillis: 10_000 };
    if (options.otlpUrl) processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: options.otlpUrl, timeoutMillis: 5000 }), batch));
    for (const exporter of extraExporters) processors.push(new BatchSpanProcessor(exporter, batch));
    this.provider = new NodeTracerProvider({
      resource: resourceFromAttributes({ 'service.name': options.appId, 'service.namespace': options.namespace, 'skein.app_id': options.appId }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(options.samplingRate) }),
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
