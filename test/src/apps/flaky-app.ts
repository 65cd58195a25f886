/**
 * An HTTP app that misbehaves on request, for resiliency tests. It reads every request body to the end, then:
 * `/fail-first/<n>` answers 503 to the first n requests (per `key` query parameter) and 200 after;
 * `/status/<code>` always answers that status; `/hang` never answers. `/_count?key=<k>` says how many requests
 * with that key (or, without one, in all) arrived, so tests prove how many attempts the target saw.
 */
import { createServer } from 'node:http';
import { listen } from './listen.js';

const counts = new Map<string, number>();
let total = 0;

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://app');
  if (url.pathname === '/_count') {
    const key = url.searchParams.get('key');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ requests: key === null ? total : (counts.get(key) ?? 0) }));
    return;
  }
  const key = url.searchParams.get('key') ?? url.pathname;
  const seen = (counts.get(key) ?? 0) + 1;
  counts.set(key, seen);
  total++;
  let bytes = 0;
  req.on('data', (chunk: Buffer) => (bytes += chunk.length));
  req.on('end', () => {
    const failFirst = /^\/fail-first\/(\d+)$/.exec(url.pathname);
    if (failFirst) {
      const failing = seen <= Number(failFirst[1]);
      res.writeHead(failing ? 503 : 200, { 'content-type': 'application/json' }).end(JSON.stringify({ attempt: seen, bytes, failing }));
      return;
    }
    const status = /^\/status\/(\d{3})$/.exec(url.pathname);
    if (status) {
      res.writeHead(Number(status[1]), { 'content-type': 'application/json' }).end(JSON.stringify({ attempt: seen, bytes }));
      return;
    }
    if (url.pathname === '/hang') return;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ attempt: seen, bytes }));
  });
});

listen(server);
