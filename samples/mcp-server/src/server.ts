#!/usr/bin/env node
/**
 * A sample MCP server built on the official MCP SDK, serving streamable HTTP with sessions at `/mcp`.
 * Its tools are the inventory tools of the access-control examples: get_inventory, get_schema, update_stock,
 * drop_table. Listens on $APP_PORT (or $PORT; 0 picks a free port) and prints `{"listening":<port>}`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { seedInventory, SCHEMAS } from './inventory.js';

const inventory = seedInventory();
const tables = new Set(Object.keys(SCHEMAS));

/** One MCP server per session; they share the inventory. */
function buildServer(): McpServer {
  const server = new McpServer({ name: 'skein-sample-inventory', version: '0.1.0' });
  server.registerTool(
    'get_inventory',
    { description: 'List items in stock, or one item by SKU.', inputSchema: { sku: z.string().optional().describe('Only this SKU') } },
    async ({ sku }) => {
      const items = sku ? [...inventory.values()].filter((item) => item.sku === sku) : [...inventory.values()];
      return { content: [{ type: 'text', text: JSON.stringify(items) }] };
    },
  );
  server.registerTool(
    'get_schema',
    { description: 'Describe the columns of a table.', inputSchema: { table: z.string() } },
    async ({ table }) => {
      const columns = SCHEMAS[table];
      if (!columns || !tables.has(table)) return { isError: true, content: [{ type: 'text', text: `no table ${table}` }] };
      return { content: [{ type: 'text', text: columns.join(', ') }] };
    },
  );
  server.registerTool(
    'update_stock',
    { description: 'Change the stock of an item by a signed amount.', inputSchema: { sku: z.string(), delta: z.number().int() } },
    async ({ sku, delta }) => {
      const item = inventory.get(sku);
      if (!item) return { isError: true, content: [{ type: 'text', text: `no item ${sku}` }] };
      item.stock += delta;
      return { content: [{ type: 'text', text: JSON.stringify(item) }] };
    },
  );
  server.registerTool(
    'drop_table',
    { description: 'Delete a whole table. Destructive.', inputSchema: { table: z.string() } },
    async ({ table }) => {
      const existed = tables.delete(table);
      return { content: [{ type: 'text', text: existed ? `dropped ${table}` : `no table ${table}` }] };
    },
  );
  return server;
}

const transports = new Map<string, StreamableHTTPServerTransport>();

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? (JSON.parse(text) as unknown) : undefined;
}

function jsonRpcError(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname !== '/mcp') {
    res.writeHead(404).end();
    return;
  }
  const sessionId = req.headers['mcp-session-id'];
  const existing = typeof sessionId === 'string' ? transports.get(sessionId) : undefined;
  if (req.method === 'POST') {
    let body: unknown;
    try {
      body = await readJson(req);
    } catch {
      jsonRpcError(res, 400, 'Parse error');
      return;
    }
    if (existing) {
      await existing.handleRequest(req, res, body);
      return;
    }
    if (sessionId === undefined && isInitializeRequest(body)) {
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => void transports.set(id, transport),
      });
      transport.onclose = () => {
        if (transport.sessionId) transports.delete(transport.sessionId);
      };
      await buildServer().connect(transport);
      await transport.handleRequest(req, res, body);
      return;
    }
    jsonRpcError(res, sessionId === undefined ? 400 : 404, sessionId === undefined ? 'Bad Request: no session' : 'Session not found');
    return;
  }
  if (req.method === 'GET' || req.method === 'DELETE') {
    if (!existing) {
      jsonRpcError(res, 404, 'Session not found');
      return;
    }
    await existing.handleRequest(req, res);
    return;
  }
  res.writeHead(405, { allow: 'GET, POST, DELETE' }).end();
}

const server = createServer((req, res) => {
  handle(req, res).catch((error: unknown) => {
    if (!res.headersSent) jsonRpcError(res, 500, (error as Error).message);
  });
});
const port = Number(process.env['APP_PORT'] ?? process.env['PORT'] ?? 0);
server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ listening: typeof address === 'object' && address ? address.port : port })}\n`);
});
process.on('SIGTERM', () => {
  for (const transport of transports.values()) void transport.close();
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
