import { request, type IncomingMessage, type IncomingHttpHeaders } from 'node:http';

/** A whole HTTP response. */
export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json<T = unknown>(): T;
}

/** Sends a request with a raw path (nothing normalised) and reads the whole response. */
export function httpRequest(url: string, options: { method?: string; path?: string; headers?: Record<string, string | string[]>; body?: string | Buffer | AsyncIterable<Buffer> } = {}): Promise<HttpResult> {
  const target = new URL(url);
  const headers = { ...(options.headers ?? {}) };
  // Node frames GET/DELETE/OPTIONS bodies only with an explicit length.
  if ((typeof options.body === 'string' || Buffer.isBuffer(options.body)) && headers['content-length'] === undefined) headers['content-length'] = String(Buffer.byteLength(options.body));
  return new Promise((resolve, reject) => {
    const req = request(
      { host: target.hostname, port: target.port, method: options.method ?? 'GET', path: options.path ?? `${target.pathname}${target.search}`, headers },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: <T>() => JSON.parse(body) as T });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    const body = options.body;
    if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) {
      req.end(body);
      return;
    }
    void (async () => {
      try {
        for await (const chunk of body) if (!req.write(chunk)) await new Promise((done) => req.once('drain', done));
        req.end();
      } catch (error) {
        req.destroy(error as Error);
      }
    })();
  });
}

/** Opens a streaming response and hands back its head plus an async line reader (for SSE). */
export function openStream(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; nextEvent(): Promise<string | undefined>; close(): void }> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: target.hostname, port: target.port, path: `${target.pathname}${target.search}`, headers }, (res) => {
      let buffered = '';
      const queue: string[] = [];
      const waiters: Array<(event: string | undefined) => void> = [];
      let ended = false;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let at: number;
        while ((at = buffered.indexOf('\n\n')) !== -1) {
          const event = buffered.slice(0, at);
          buffered = buffered.slice(at + 2);
          const waiter = waiters.shift();
          if (waiter) waiter(event);
          else queue.push(event);
        }
      });
      res.on('end', () => {
        ended = true;
        for (const waiter of waiters.splice(0)) waiter(undefined);
      });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        nextEvent: () => {
          const queued = queue.shift();
          if (queued !== undefined) return Promise.resolve(queued);
          if (ended) return Promise.resolve(undefined);
          return new Promise((done) => waiters.push(done));
        },
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}
