import { createServer, type Server } from 'node:http';
import { EventEmitter } from 'node:events';
import { gunzipSync } from 'node:zlib';

/** A span as the OTLP/HTTP JSON encoding carries it, flattened for assertions. */
export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, string | number | boolean>;
  events: Array<{ name: string; attributes: Record<string, string | number | boolean> }>;
  status: { code?: number; message?: string };
}

type AnyValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };

function flatten(attributes: Array<{ key: string; value: AnyValue }> | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of attributes ?? []) {
    out[key] = value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : undefined) ?? value.boolValue ?? value.doubleValue ?? '';
  }
  return out;
}

/**
 * A real OTLP/HTTP trace receiver (JSON encoding) on 127.0.0.1:0: what an OpenTelemetry Collector would receive.
 * Tests wait on its `spans` event rather than on time.
 */
export class OtlpReceiver extends EventEmitter {
  readonly spans: ReceivedSpan[] = [];
  private server: Server | undefined;
  port = 0;

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        let raw = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
        if (req.url === '/v1/traces' && String(req.headers['content-type']).includes('json')) this.ingest(JSON.parse(raw.toString('utf8')) as OtlpTraces);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
  }

  private ingest(body: OtlpTraces): void {
    for (const resourceSpans of body.resourceSpans ?? []) {
      const service = String(flatten(resourceSpans.resource?.attributes)['service.name'] ?? '');
      for (const scope of resourceSpans.scopeSpans ?? []) {
        for (const span of scope.spans ?? []) {
          this.spans.push({
            service,
            traceId: span.traceId,
            spanId: span.spanId,
            parentSpanId: span.parentSpanId ?? '',
            name: span.name,
            kind: span.kind,
            attributes: flatten(span.attributes),
            events: (span.events ?? []).map((event) => ({ name: event.name, attributes: flatten(event.attributes) })),
            status: span.status ?? {},
          });
        }
      }
    }
    this.emit('spans');
  }

  /** Resolves once `predicate` holds over the spans received so far (checked on each delivery). */
  waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs = 20_000): Promise<ReceivedSpan[]> {
    if (predicate(this.spans)) return Promise.resolve(this.spans);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('spans', check);
        reject(new Error(`spans never matched; received: ${this.spans.map((span) => `${span.service}:${span.name}`).join(', ')}`));
      }, timeoutMs);
      const check = (): void => {
        if (!predicate(this.spans)) return;
        clearTimeout(timer);
        this.off('spans', check);
        resolve(this.spans);
      };
      this.on('spans', check);
    });
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

interface OtlpTraces {
  resourceSpans?: Array<{
    resource?: { attributes?: Array<{ key: string; value: AnyValue }> };
    scopeSpans?: Array<{
      spans?: Array<{
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        attributes?: Array<{ key: string; value: AnyValue }>;
        events?: Array<{ name: string; attributes?: Array<{ key: string; value: AnyValue }> }>;
        status?: { code?: number; message?: string };
      }>;
    }>;
  }>;
}
