/**
 * An actor host for end-to-end tests, speaking Dapr's app protocol: `GET /dapr/config`, `PUT
 * /actors/<type>/<id>/method/<method>` (also `remind/<name>` and `timer/<name>`) and `DELETE /actors/<type>/<id>`.
 * It records every turn with start and end times so tests can prove turns never overlapped (on this instance or,
 * comparing instances, across hosts), and offers methods that use the sidecar's actor API (state, nested calls).
 * Any other method echoes what reached the app, every request header included.
 *
 * Environment: ACTOR_TYPES (comma-separated, default Counter), IDLE_TIMEOUT, SCAN_INTERVAL, REENTRANCY=true,
 * MAX_STACK_DEPTH, ENTITIES_CONFIG (JSON, Dapr's per-type `entitiesConfig`), INSTANCE (a label echoed back), RECORD_TURNS=false
 * (count turns and reminder fires without keeping them, for long benchmark runs). `GET /_counts` gives the counts alone. The sidecar's URL arrives with `POST /_sidecar`.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { listen } from './listen.js';

interface TurnRecord {
  actorType: string;
  actorId: string;
  method: string;
  start: number;
  end: number;
}

const instance = process.env['INSTANCE'] ?? '';
const actorTypes = (process.env['ACTOR_TYPES'] ?? 'Counter').split(',').filter(Boolean);
let sidecar = process.env['DAPR_HTTP_PORT'] ? `http://127.0.0.1:${process.env['DAPR_HTTP_PORT']}` : '';
const turns: TurnRecord[] = [];
const deactivations: Array<{ actorType: string; actorId: string; at: number }> = [];
const reminders: Array<{ actorType: string; actorId: string; name: string; at: number; body: unknown }> = [];
const timers: Array<{ actorType: string; actorId: string; name: string; at: number; body: unknown }> = [];
const running = new Map<string, number>();
let overlaps = 0;
const recordTurns = process.env['RECORD_TURNS'] !== 'false';
const counts = { turns: 0, reminders: 0, timers: 0 };
const fireCounts = new Map<string, number>();

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers }).end(text);
}

/** Calls this app's sidecar. */
function callSidecar(method: string, path: string, body: string | undefined, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(path, sidecar);
    const req = request({ host: target.hostname, port: target.port, path: target.pathname, method, headers: { 'content-type': 'application/json', ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function method(actorType: string, actorId: string, name: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const text = await readBody(req);
  const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  const key = `${actorType}/${actorId}`;
  const concurrent = (running.get(key) ?? 0) + 1;
  running.set(key, concurrent);
  if (concurrent > 1) overlaps++;
  const record: TurnRecord = { actorType, actorId, method: name, start: Date.now(), end: 0 };
  const reentrancyId = req.headers['dapr-reentrancy-id'];
  try {
    if (name.startsWith('remind/')) {
      counts.reminders++;
      if (recordTurns) reminders.push({ actorType, actorId, name: name.slice('remind/'.length), at: Date.now(), body });
      const cancelAfter = Number((body['data'] as Record<string, unknown> | null)?.['cancelAfter'] ?? 0);
      // Counted per actor and reminder name (not by filtering the record), so many fires stay cheap.
      const fireKey = `${actorId}\u0000${name}`;
      const fired = (fireCounts.get(fireKey) ?? 0) + 1;
      fireCounts.set(fireKey, fired);
      json(res, 200, { ok: true }, cancelAfter > 0 && fired >= cancelAfter ? { 'X-DaprReminderCancel': 'true' } : {});
      return;
    }
    if (name.startsWith('timer/')) {
      counts.timers++;
      timers.push({ actorType, actorId, name: name.slice('timer/'.length), at: Date.now(), body });
      json(res, 200, { ok: true });
      return;
    }
    switch (name) {
      case 'slow':
        await sleep(Number(body['ms'] ?? 50));
        json(res, 200, { instance, actorType, actorId });
        return;
      case 'fail':
        json(res, 500, { error: 'as you asked' }, { 'x-actor-error': 'yes' });
        return;
      case 'incr': {
        // Read-modify-write through the sidecar's state API, inside the turn: safe because turns never overlap.
        const current = await callSidecar('GET', `/v1.0/actors/${actorType}/${actorId}/state/count`, undefined);
        const count = current.status === 200 ? Number(JSON.parse(current.body)) : 0;
        const saved = await callSidecar('POST', `/v1.0/actors/${actorType}/${actorId}/state`, JSON.stringify([{ operation: 'upsert', request: { key: 'count', value: count + 1 } }]));
        if (saved.status !== 204) throw new Error(`state save failed: ${saved.status} ${saved.body}`);
        json(res, 200, { instance, count: count + 1 });
        return;
      }
      case 'recurse': {
        // Calls itself `depth` more times, nested, passing the reentrancy id on.
        const depth = Number(body['depth'] ?? 0);
        if (depth <= 0) {
          json(res, 200, { instance, reentrancyId });
          return;
        }
        const inner = await callSidecar('PUT', `/v1.0/actors/${actorType}/${actorId}/method/recurse`, JSON.stringify({ depth: depth - 1 }), typeof reentrancyId === 'string' ? { 'dapr-reentrancy-id': reentrancyId } : {});
        res.writeHead(inner.status, { 'content-type': 'application/json' }).end(inner.body);
        return;
      }
      default:
        json(res, 200, { instance, actorType, actorId, method: name, verb: req.method, body, reentrancyId: reentrancyId ?? null, header: req.headers['x-test'] ?? null, headers: req.headers });
    }
  } finally {
    record.end = Date.now();
    counts.turns++;
    if (recordTurns) turns.push(record);
    running.set(key, (running.get(key) ?? 1) - 1);
  }
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://app');
  const parts = url.pathname.split('/').slice(1).map(decodeURIComponent);
  void (async () => {
    try {
      if (url.pathname === '/dapr/config') {
        json(res, 200, {
          entities: actorTypes,
          actorIdleTimeout: process.env['IDLE_TIMEOUT'] ?? '1h',
          actorScanInterval: process.env['SCAN_INTERVAL'] ?? '30s',
          drainOngoingCallTimeout: '10s',
          reentrancy: { enabled: process.env['REENTRANCY'] === 'true', maxStackDepth: Number(process.env['MAX_STACK_DEPTH'] ?? 32) },
          entitiesConfig: JSON.parse(process.env['ENTITIES_CONFIG'] ?? '[]') as unknown,
        });
        return;
      }
      if (url.pathname === '/_sidecar' && req.method === 'POST') {
        sidecar = ((JSON.parse(await readBody(req)) as { url: string }).url);
        res.writeHead(204).end();
        return;
      }
      if (url.pathname === '/_events') {
        json(res, 200, { instance, turns, deactivations, reminders, timers, overlaps, inProgress: [...running].filter(([, count]) => count > 0).map(([key]) => key) });
        return;
      }
      if (url.pathname === '/_counts') {
        json(res, 200, counts);
        return;
      }
      if (url.pathname === '/healthz') {
        res.writeHead(200).end('ok');
        return;
      }
      if (parts[0] === 'actors' && parts.length === 3 && req.method === 'DELETE') {
        deactivations.push({ actorType: parts[1] as string, actorId: parts[2] as string, at: Date.now() });
        res.writeHead(200).end();
        return;
      }
      if (parts[0] === 'actors' && parts[3] === 'method' && parts.length >= 5 && req.method === 'PUT') {
        await method(parts[1] as string, parts[2] as string, parts.slice(4).join('/'), req, res);
        return;
      }
      json(res, 404, { error: `no route ${req.method ?? ''} ${url.pathname}` });
    } catch (error) {
      if (!res.headersSent) json(res, 500, { error: (error as Error).message });
    }
  })();
});

listen(server);
