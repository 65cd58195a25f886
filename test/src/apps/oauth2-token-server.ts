/**
 * A small OAuth2 authorization server for end-to-end tests: the client-credentials grant (client authentication
 * by HTTP Basic or in the body) at `POST /token`, and RFC 7662 introspection at `POST /introspect` for resource
 * servers. Clients come from $CLIENTS (`{"<id>": {"secret", "expiresIn", "mode"}}`); `mode` is `ok`, `fail`
 * (answers 500) or `garbage` (answers 200 with a body that is not a token), and `POST /_mode?client=&mode=`
 * changes it. Every token request is counted (`GET /_stats`) and printed as a line, `{"tokenRequest":n,...}`,
 * so tests wait on what happened, never on time.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import { listen } from './listen.js';

interface ClientSettings {
  secret: string;
  expiresIn?: number;
  mode?: 'ok' | 'fail' | 'garbage';
}

const clients = JSON.parse(process.env['CLIENTS'] ?? '{}') as Record<string, ClientSettings>;
const requests: Record<string, number> = {};
const issued: Record<string, number> = {};
const tokens = new Map<string, { client: string; expiresAt: number }>();

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** RFC 6749 §2.3.1: form-encoded id and secret, then Basic. */
function basicCredentials(header: string | undefined): { id: string; secret: string } | undefined {
  const match = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (!match) return undefined;
  const text = Buffer.from(match[1] as string, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon === -1) return undefined;
  const decode = (part: string): string => decodeURIComponent(part.replace(/\+/g, ' '));
  return { id: decode(text.slice(0, colon)), secret: decode(text.slice(colon + 1)) };
}

const server = createServer((req, res) => {
  void (async () => {
    const url = new URL(req.url ?? '/', 'http://token-server');
    const json = (status: number, body: unknown): void => void res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
    if (url.pathname === '/_stats') return json(200, { requests, issued });
    if (url.pathname === '/_mode' && req.method === 'POST') {
      const client = clients[url.searchParams.get('client') ?? ''];
      if (!client) return json(404, { error: 'no such client' });
      client.mode = (url.searchParams.get('mode') ?? 'ok') as ClientSettings['mode'];
      return json(200, { mode: client.mode });
    }
    const form = new URLSearchParams(await readBody(req));
    if (url.pathname === '/introspect' && req.method === 'POST') {
      const held = tokens.get(form.get('token') ?? '');
      return json(200, held && held.expiresAt > Date.now() ? { active: true, client_id: held.client } : { active: false });
    }
    if (url.pathname !== '/token' || req.method !== 'POST') return json(404, { error: 'not_found' });
    const basic = basicCredentials(req.headers.authorization);
    const id = basic?.id ?? form.get('client_id') ?? '';
    const secret = basic?.secret ?? form.get('client_secret') ?? '';
    requests[id] = (requests[id] ?? 0) + 1;
    process.stdout.write(`${JSON.stringify({ tokenRequest: requests[id], client: id, scope: form.get('scope'), audience: form.get('audience') })}\n`);
    const client = clients[id];
    if (form.get('grant_type') !== 'client_credentials') return json(400, { error: 'unsupported_grant_type' });
    if (!client || client.secret !== secret) return json(401, { error: 'invalid_client' });
    if (client.mode === 'fail') return json(500, { error: 'server_error' });
    if (client.mode === 'garbage') {
      res.writeHead(200, { 'content-type': 'text/html' }).end(`<html>oops ${secret}</html>`);
      return undefined;
    }
    const accessToken = randomBytes(32).toString('base64url');
    const expiresIn = client.expiresIn ?? 3600;
    tokens.set(accessToken, { client: id, expiresAt: Date.now() + expiresIn * 1000 });
    issued[id] = (issued[id] ?? 0) + 1;
    process.stdout.write(`${JSON.stringify({ issued: issued[id], client: id })}\n`);
    return json(200, { access_token: accessToken, token_type: 'bearer', expires_in: expiresIn });
  })().catch((error: unknown) => {
    if (!res.headersSent) res.writeHead(500).end(String(error));
  });
});

listen(server);
