/**
 * The benchmark's floor: one half of the least a sidecar pair can do in plain Node — HTTP in, one mutual-TLS hop,
 * HTTP out — with no policy, no tracing, no discovery and no protobuf. Run twice: `FLOOR_ROLE=caller` takes HTTP/1.1
 * from the client and forwards each request over one mTLS connection to `FLOOR_TARGET_PORT`; `FLOOR_ROLE=callee`
 * serves that hop and forwards to the app at `FLOOR_TARGET_PORT` over keep-alive HTTP/1.1. The hop is HTTP/2 (the
 * protocol of Skein's internal hop) or, with `FLOOR_HOP=h1`, HTTPS/1.1 keep-alive. Both ends verify the other's
 * certificate against `FLOOR_CA`.
 */
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import { connect as connectHttp2, createSecureServer, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders as Http2Headers, type ServerHttp2Stream } from 'node:http2';

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const role = env('FLOOR_ROLE');
const hop = process.env['FLOOR_HOP'] === 'h1' ? 'h1' : 'h2';
const targetPort = Number(env('FLOOR_TARGET_PORT'));
const tls = { key: readFileSync(env('FLOOR_KEY')), cert: readFileSync(env('FLOOR_CERT')), ca: readFileSync(env('FLOOR_CA')) };

/** Headers a proxy hop never forwards. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'upgrade', 'te', 'trailer', 'proxy-connection']);

function forwardable(headers: IncomingHttpHeaders | Http2Headers): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(':') || HOP_BY_HOP.has(name)) continue;
    out[name] = value;
  }
  return out;
}

function fail(res: ServerResponse, error: Error): void {
  if (res.headersSent) res.destroy(error);
  else res.writeHead(502, { 'content-type': 'text/plain' }).end(error.message);
}

/**
 * Copies `from` into `to`: a body that fits one buffer goes in one write with the end (as any proxy that reads small
 * bodies whole does), anything else streams with backpressure through `pipe`.
 */
function forward(from: IncomingMessage | ServerHttp2Stream | ClientHttp2Stream, to: NodeJS.WritableStream, length: number | undefined): void {
  if (length === undefined || length > 64 * 1024) {
    from.pipe(to);
    return;
  }
  const chunks: Buffer[] = [];
  from.on('data', (chunk: Buffer) => chunks.push(chunk));
  from.once('end', () => to.end(Buffer.concat(chunks)));
}

function lengthOf(headers: IncomingHttpHeaders | Http2Headers): number | undefined {
  const value = headers['content-length'];
  return typeof value === 'string' ? Number(value) : undefined;
}

function listening(port: number): void {
  process.stdout.write(`${JSON.stringify({ listening: port })}\n`);
}

/** The caller half: HTTP/1.1 in, one mTLS hop out. */
function runCaller(): void {
  let session: ClientHttp2Session | undefined;
  const h2 = (): ClientHttp2Session => {
    if (!session || session.closed || session.destroyed) {
      session = connectHttp2(`https://127.0.0.1:${targetPort}`, { ...tls, servername: 'localhost' });
      session.once('close', () => (session = undefined));
      session.on('error', () => undefined);
    }
    return session;
  };
  const h1Agent = new HttpsAgent({ keepAlive: true, maxSockets: 256, ...tls, servername: 'localhost' });
  const server = createServer({ keepAliveTimeout: 65_000, noDelay: true }, (req: IncomingMessage, res: ServerResponse) => {
    const headers = forwardable(req.headers);
    if (hop === 'h2') {
      const stream = h2().request({ ...headers, [constants.HTTP2_HEADER_METHOD]: req.method ?? 'GET', [constants.HTTP2_HEADER_PATH]: req.url ?? '/' });
      stream.once('response', (head) => {
        res.writeHead(Number(head[constants.HTTP2_HEADER_STATUS] ?? 502), forwardable(head));
        forward(stream, res, lengthOf(head));
      });
      stream.once('error', (error: Error) => fail(res, error));
      forward(req, stream, lengthOf(req.headers));
      return;
    }
    const out = httpsRequest({ host: '127.0.0.1', port: targetPort, method: req.method ?? 'GET', path: req.url ?? '/', headers, agent: h1Agent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, forwardable(answer.headers));
      forward(answer, res, lengthOf(answer.headers));
    });
    out.once('error', (error) => fail(res, error));
    forward(req, out, lengthOf(req.headers));
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    listening(typeof address === 'object' && address ? address.port : 0);
  });
  process.once('SIGTERM', () => process.exit(0));
}

/** The callee half: the mTLS hop in, HTTP/1.1 keep-alive to the app out. */
function runCallee(): void {
  const appAgent = new HttpAgent({ keepAlive: true, maxSockets: 256 });
  const toApp = (method: string, path: string, headers: Record<string, string | string[]>, answer: (status: number, headers: Record<string, string | string[]>, body: IncomingMessage) => void, failed: (error: Error) => void): ReturnType<typeof httpRequest> => {
    const out = httpRequest({ host: '127.0.0.1', port: targetPort, method, path, headers, agent: appAgent }, (res) => answer(res.statusCode ?? 502, forwardable(res.headers), res));
    out.once('error', failed);
    return out;
  };
  const secure = { ...tls, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' as const };
  const ready = (server: { address(): unknown }): void => {
    const address = server.address() as { port?: number } | null;
    listening(address?.port ?? 0);
  };
  if (hop === 'h2') {
    const server = createSecureServer(secure);
    server.on('stream', (stream: ServerHttp2Stream, headers: Http2Headers) => {
      const out = toApp(
        String(headers[constants.HTTP2_HEADER_METHOD] ?? 'GET'),
        String(headers[constants.HTTP2_HEADER_PATH] ?? '/'),
        forwardable(headers),
        (status, responseHeaders, body) => {
          stream.respond({ ...responseHeaders, [constants.HTTP2_HEADER_STATUS]: status });
          forward(body, stream, lengthOf(body.headers));
        },
        () => stream.close(constants.NGHTTP2_INTERNAL_ERROR),
      );
      forward(stream, out, lengthOf(headers));
    });
    server.listen(0, '127.0.0.1', () => ready(server));
  } else {
    const server = createHttpsServer({ ...secure, keepAliveTimeout: 65_000, noDelay: true }, (req, res) => {
      const out = toApp(req.method ?? 'GET', req.url ?? '/', forwardable(req.headers), (status, responseHeaders, body) => {
        res.writeHead(status, responseHeaders);
        forward(body, res, lengthOf(body.headers));
      }, (error) => fail(res, error));
      forward(req, out, lengthOf(req.headers));
    });
    server.listen(0, '127.0.0.1', () => ready(server));
  }
  process.once('SIGTERM', () => process.exit(0));
}

if (role === 'caller') runCaller();
else if (role === 'callee') runCallee();
else throw new Error(`FLOOR_ROLE must be caller or callee, not "${role}"`);
