/**
 * A test MCP server on the official SDK's low-level `Server`, over streamable HTTP at `/mcp` (stateless) and the
 * legacy HTTP+SSE transport at `/sse` + `/messages`. `tools/list` answers one tool a page over `TOOL_PAGES` pages
 * (default 3), or forever with `ENDLESS_PAGES=1`. Every request's headers are recorded; `GET /seen-headers` returns
 * them, and `GET /calls` every tools/call it answered. Listens on $PORT (0: a free one) and prints `{"listening":<port>}`.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { listen } from './listen.js';

const pages = Number(process.env['TOOL_PAGES'] ?? 3);
const endless = process.env['ENDLESS_PAGES'] === '1';
const seen: IncomingHttpHeaders[] = [];
/** Every tools/call the server answered: the tool and its arguments (`GET /calls`). */
const calls: Array<{ name: string; arguments: unknown }> = [];

function buildServer(): Server {
  const server = new Server({ name: 'skein-test-tools', version: '0.1.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, (request) => {
    const page = Number(request.params?.cursor ?? 0);
    const tool = { name: `tool_${page}`, description: `Tool of page ${page}.`, inputSchema: { type: 'object' as const, properties: { city: { type: 'string' } }, required: ['city'] } };
    const more = endless || page + 1 < pages;
    return { tools: [tool], ...(more ? { nextCursor: String(page + 1) } : {}) };
  });
  server.setRequestHandler(CallToolRequestSchema, (request) => {
    calls.push({ name: request.params.name, arguments: request.params.arguments ?? {} });
    return { content: [{ type: 'text', text: `called ${request.params.name} for ${JSON.stringify(request.params.arguments ?? {})}` }] };
  });
  return server;
}

const sse = new Map<string, SSEServerTransport>();

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/calls') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(calls));
    return;
  }
  if (url.pathname === '/seen-headers') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(seen));
    return;
  }
  seen.push(req.headers);
  if (url.pathname === '/mcp') {
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    const server = buildServer();
    res.once('close', () => void transport.close().then(() => server.close()));
    await server.connect(transport);
    await transport.handleRequest(req, res);
    return;
  }
  if (url.pathname === '/sse' && req.method === 'GET') {
    const transport = new SSEServerTransport('/messages', res);
    sse.set(transport.sessionId, transport);
    res.once('close', () => sse.delete(transport.sessionId));
    await buildServer().connect(transport);
    return;
  }
  const session = sse.get(url.searchParams.get('sessionId') ?? '');
  if (url.pathname === '/messages' && session) {
    await session.handlePostMessage(req, res);
    return;
  }
  res.writeHead(404).end();
}

listen(
  createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(error));
    });
  }),
);
