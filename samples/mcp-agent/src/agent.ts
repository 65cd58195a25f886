#!/usr/bin/env node
/**
 * A sample MCP agent: it reaches an MCP server by App ID through its own sidecar — the sidecar's address comes
 * from $DAPR_HTTP_PORT — lists the tools, calls a few, and prints what happens. Target App ID: $MCP_SERVER_APP_ID
 * (default `inventory`).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const sidecarPort = process.env['DAPR_HTTP_PORT'];
const target = process.env['MCP_SERVER_APP_ID'] ?? 'inventory';
if (!sidecarPort) {
  process.stderr.write('DAPR_HTTP_PORT is not set: start the agent with `skein run --app-id agent -- node agent.js`\n');
  process.exit(2);
}

const say = (line: string): void => void process.stdout.write(`[agent] ${line}\n`);

function textOf(result: Record<string, unknown>): string {
  const content = Array.isArray(result['content']) ? (result['content'] as Array<{ type: string; text?: string }>) : [];
  return content.map((part) => (part.type === 'text' ? part.text : `[${part.type}]`)).join(' ');
}

async function main(): Promise<void> {
  const url = new URL(`http://127.0.0.1:${sidecarPort}/v1.0/invoke/${target}/method/mcp`);
  say(`connecting to MCP server "${target}" through my sidecar: ${url.href}`);
  const client = new Client({ name: 'skein-sample-agent', version: '0.1.0' });
  await client.connect(new StreamableHTTPClientTransport(url));
  const { tools } = await client.listTools();
  say(`tools: ${tools.map((tool) => tool.name).join(', ')}`);
  const inventory = await client.callTool({ name: 'get_inventory', arguments: {} });
  say(`get_inventory -> ${textOf(inventory)}`);
  const updated = await client.callTool({ name: 'update_stock', arguments: { sku: 'C-300', delta: 100 } });
  say(`update_stock C-300 +100 -> ${textOf(updated)}`);
  await client.close();
  say('done');
}

main().catch((error: unknown) => {
  say(`failed: ${(error as Error).message}`);
  process.exit(1);
});
