import type { NatsConnection } from '@nats-io/transport-node';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { spanSubject, logger, encodeSpanEvent, type SpanSource } from '@skein/core';
import { toSpanEvent } from './span-convert.js';

const log = logger('telemetry');

/** Largest message one span becomes; bigger spans are shortened (`truncated: true`), never split or refused. */
export const MAX_SPAN_EVENT_BYTES = 64 * 1024;

/** How long `forceFlush` waits for the server to confirm what was published. */
const FLUSH_TIMEOUT_MS = 2000;

/**
 * Publishes every finished span as one `SpanEvent` JSON message on `skein.spans.<namespace>.<appId>`
 * (schema: `@skein/proto/schemas/span-event.schema.json`), where the telemetry stream keeps it.
 *
 * It never blocks or fails the traffic that produced the spans: publishes are fire-and-forget core NATS
 * publishes, each message is at most {@link MAX_SPAN_EVENT_BYTES}, and while the connection is down spans are
 * dropped (and counted) instead of piling up in the client's reconnect buffer. `export()` always calls back.
 */
export class NatsSpanExporter implements SpanExporter {
  private readonly nc: NatsConnection;
  private readonly source: SpanSource;
  private readonly subject: string;
  private connected = true;
  private stopped = false;
  private droppedTotal = 0;
  private droppedWhileDisconnected = 0;

  constructor(nc: NatsConnection, source: { appId: string; namespace: string }) {
    this.nc = nc;
    this.source = { appId: source.appId, namespace: source.namespace };
    this.subject = spanSubject(source.namespace, source.appId);
    // Ends with the connection, or at the first status change after shutdown.
    void (async () => {
      for await (const event of nc.status()) {
        if (this.stopped) break;
        if (event.type === 'disconnect') this.connected = false;
        if (event.type === 'reconnect') this.onReconnect();
      }
    })();
  }

  /** Spans dropped so far because the connection was down or closed. */
  get dropped(): number {
    return this.droppedTotal;
  }

  private onReconnect(): void {
    this.connected = true;
    if (this.droppedWhileDisconnected > 0) log.warn('spans were dropped while NATS was unreachable', { dropped: this.droppedWhileDisconnected });
    this.droppedWhileDisconnected = 0;
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.stopped || this.nc.isClosed() || !this.connected) {
      this.droppedTotal += spans.length;
      this.droppedWhileDisconnected += spans.length;
      resultCallback({ code: ExportResultCode.FAILED, error: new Error(`${spans.length} span(s) dropped: ${this.stopped ? 'the exporter is shut down' : 'NATS is unreachable'}`) });
      return;
    }
    let failed: Error | undefined;
    for (const span of spans) {
      try {
        this.nc.publish(this.subject, encodeSpanEvent(toSpanEvent(span, this.source), MAX_SPAN_EVENT_BYTES));
      } catch (error) {
        // A closed or draining connection throws synchronously; the remaining spans would fail the same way.
        failed = error as Error;
        this.droppedTotal += 1;
      }
    }
    resultCallback(failed ? { code: ExportResultCode.FAILED, error: failed } : { code: ExportResultCode.SUCCESS });
  }

  /** Waits (briefly, bounded) until the server has seen what was published. */
  async forceFlush(): Promise<void> {
    if (this.stopped || this.nc.isClosed() || !this.connected) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, FLUSH_TIMEOUT_MS);
    });
    await Promise.race([this.nc.flush().catch(() => undefined), timeout]);
    clearTimeout(timer);
  }

  /** Flushes, then refuses further spans. The connection belongs to the caller and stays open. */
  async shutdown(): Promise<void> {
    await this.forceFlush();
    this.stopped = true;
  }
}
