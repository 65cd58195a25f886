import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SkeinError } from '@skein/core';
import { PROMETHEUS_CONTENT_TYPE, type Metrics } from './metrics.js';

/** Where the metrics endpoint listens. */
export interface MetricsServerOptions {
  /** 127.0.0.1 unless a scraper elsewhere must reach it. */
  host: string;
  /** 0 picks a free port. */
  port: number;
}

/**
 * Serves `GET /metrics` (Prometheus text format) on a port of its own, apart from the Dapr API: a scraper needs
 * no API token and never reaches the API through it.
 */
export class MetricsServer {
  private readonly metrics: Metrics;
  private readonly options: MetricsServerOptions;
  private server: Server | undefined;

  constructor(metrics: Metrics, options: MetricsServerOptions) {
    this.metrics = metrics;
    this.options = options;
  }

  /** Listens; resolves with the bound port. */
  async start(): Promise<number> {
    const server = createServer((request, response) => {
      const path = (request.url ?? '/').split('?')[0];
      if (path !== '/metrics') {
        response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: the metrics are at /metrics\n');
        return;
      }
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
        return;
      }
      const body = this.metrics.exposition();
      response.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      response.end(request.method === 'HEAD' ? undefined : body);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) => reject(new SkeinError('ERR_INTERNAL', `the metrics endpoint cannot listen on ${this.options.host}:${this.options.port}: ${error.message}`, { cause: error })));
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  /** Stops listening and closes open scrapes. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
