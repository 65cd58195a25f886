/**
 * A resource server in front of a real MCP server, for end-to-end tests: every request must carry a bearer token
 * that the authorization server at $INTROSPECT_URL says is active (RFC 7662), or it is refused with 401 and never
 * reaches $UPSTREAM. Accepted requests are proxied, streaming both ways (SSE included). With $TLS_CERT_FILE and
 * $TLS_KEY_FILE it serves HTTPS; with $TLS_CA_FILE too, it requires a client certificate signed by that CA.
 *
 * Its own paths: `GET /_stats` (accepted, refused, tokens seen), `GET /_last` (headers and client certificate of
 * the last accepted request), `/_whoami` (answers the token and client certificate it saw), `/_status/<n>`
 * (answers status n).
 */
import { createServer as createHttpServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { listen } from './listen.js';

const upstream = new URL(process.env['UPSTREAM'] ?? 'http://127.0.0.1:1');
const introspectUrl = process.env['INTROSPECT_URL'] ?? '';
let accepted = 0;
let refused = 0;
const tokens: string[] = [];
let last: { headers: Record<string, string | string[] | undefined>; clientCertificate: string | null } | undefined;

async function active(token: string): Promise<boolean> {
  const response = await fetch(introspectUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token }).toString() });
  return response.ok && ((await response.json()) as { active?: boolean }).active === true;
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://gate');
  if (url.pathname === '/_stats') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ accepted, refused, tokens }));
    return;
  }
  if (url.pathname === '/_last') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(last ?? null));
    return;
  }
  void (async () => {
    const match = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    const token = match?.[1];
    if (!token || !(await active(token))) {
      refused++;
      req.resume();
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"', 'content-type': 'text/plain' }).end('a valid bearer token is required');
      return;
    }
    accepted++;
    if (!tokens.includes(token)) tokens.push(token);
    const peer = (req.socket as Partial<TLSSocket>).getPeerCertificate?.();
    last = { headers: req.headers, clientCertificate: peer && peer.subject ? String(peer.subject.CN) : null };
    if (url.pathname === '/_whoami') {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, clientCertificate: last.clientCertificate }));
      return;
    }
    const status = /^\/_status\/(\d{3})$/.exec(url.pathname);
    if (status) {
      req.resume();
      res.writeHead(Number(status[1]), { 'content-type': 'text/plain', 'x-gate': 'yes' }).end('as you asked');
      return;
    }
    const headers = { ...req.headers, host: upstream.host };
    delete headers.authorization;
    const outgoing = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      res.flushHeaders();
      answer.pipe(res);
    });
    outgoing.on('error', () => res.destroy());
    res.on('close', () => outgoing.destroy());
    req.pipe(outgoing);
  })().catch(() => {
    if (!res.headersSent) res.writeHead(502).end('gate failure');
  });
}

const certFile = process.env['TLS_CERT_FILE'];
const keyFile = process.env['TLS_KEY_FILE'];
const caFile = process.env['TLS_CA_FILE'];
const server =
  certFile && keyFile
    ? createHttpsServer({ cert: readFileSync(certFile), key: readFileSync(keyFile), ...(caFile ? { ca: readFileSync(caFile), requestCert: true, rejectUnauthorized: true } : {}) }, handle)
    : createHttpServer(handle);

listen(server);
