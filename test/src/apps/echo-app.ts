/**
 * A plain HTTP app for end-to-end tests. It echoes what reached it (so tests see exactly what the sidecar
 * forwarded), streams server-sent events on demand, counts requests (so tests prove what never arrived) and
 * reports chosen environment variables (`/_env?names=A,B`).
 */
import { createServer, type ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { listen } from './listen.js';

let requests = 0;
const streams = new Map<string, ServerResponse>();

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://app');
  if (url.pathname === '/_count') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ requests }));
    return;
  }
  if (url.pathname === '/_env') {
    // Reports the named variables (null when unset), so tests see exactly what environment the app was given.
    const names = (url.searchParams.get('names') ?? '').split(',').filter(Boolean);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(Object.fromEntries(names.map((name) => [name, process.env[name] ?? null]))));
    return;
  }
  requests++;
  if (url.pathname === '/sse') {
    // Sends one event now and one more each time /sse/next is called; the test drives the pace.
    const id = url.searchParams.get('id') ?? 'default';
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(`data: event 0\n\n`);
    streams.set(id, res);
    return;
  }
  if (url.pathname === '/sse/next') {
    const id = url.searchParams.get('id') ?? 'default';
    const stream = streams.get(id);
    const n = Number(url.searchParams.get('n') ?? '1');
    const last = url.searchParams.get('last') === '1';
    stream?.write(`data: event ${n}\n\n`);
    if (last) {
      stream?.end();
      streams.delete(id);
    }
    res.writeHead(stream ? 204 : 404).end();
    return;
  }
  if (url.pathname.startsWith('/status/')) {
    res.writeHead(Number(url.pathname.slice('/status/'.length)), { 'content-type': 'text/plain', 'x-app': 'echo' }).end('as you asked');
    return;
  }
  const hash = createHash('sha256');
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    hash.update(chunk);
  });
  req.on('end', () => {
    const body = JSON.stringify({
      instance: process.env['INSTANCE'] ?? '',
      appId: process.env['APP_ID'] ?? '',
      daprHttpPort: process.env['DAPR_HTTP_PORT'] ?? '',
      method: req.method,
      url: req.url,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      bodySize: size,
      bodySha256: hash.digest('hex'),
    });
    res.writeHead(200, { 'content-type': 'application/json', 'x-echo': 'yes', 'set-cookie': ['a=1', 'b=2'] }).end(body);
  });
});

listen(server);
