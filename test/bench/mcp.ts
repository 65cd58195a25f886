/**
 * The MCP baseline: the official MCP SDK client (streamable HTTP) calling a tool, sequentially and from several
 * clients at once. Each client has its own session, initialised before anything is measured.
 */
import { performance } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

/** What one MCP phase measured. */
export interface McpPhaseResult {
  label: string;
  mode: 'sequential' | 'concurrent';
  clients: number;
  /** Milliseconds per successful `tools/call`, request sent to result parsed. */
  latencies: number[];
  ok: number;
  /** Calls that threw or returned `isError: true`. */
  errors: number;
  firstError?: string;
  elapsedMs: number;
  callsPerSecond: number;
}

/** The tool call every phase makes. */
export interface ToolCall {
  name: string;
  arguments: Record<string, unknown>;
}

async function connect(url: string): Promise<Client> {
  const client = new Client({ name: 'skein-bench', version: '0.1.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

/** Ends the session politely (DELETE) so the server frees it, then closes the client. */
async function disconnect(client: Client): Promise<void> {
  const transport = client.transport as StreamableHTTPClientTransport | undefined;
  try {
    await transport?.terminateSession();
  } catch {
    // the session is gone either way once the server stops
  }
  await client.close();
}

/** Calls the tool once; resolves with an error message or undefined. */
async function callOnce(client: Client, call: ToolCall): Promise<string | undefined> {
  try {
    const result = await client.callTool(call);
    return result.isError ? `tool error: ${JSON.stringify(result.content)}` : undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

function newResult(label: string, mode: McpPhaseResult['mode'], clients: number): McpPhaseResult {
  return { label, mode, clients, latencies: [], ok: 0, errors: 0, elapsedMs: 0, callsPerSecond: 0 };
}

function record(result: McpPhaseResult, took: number, error: string | undefined): void {
  if (error === undefined) {
    result.ok++;
    result.latencies.push(took);
    return;
  }
  result.errors++;
  result.firstError ??= error;
}

/** One client, one call at a time: `warmup` calls discarded, then `count` measured. */
export async function runMcpSequential(label: string, url: string, call: ToolCall, options: { warmup: number; count: number }): Promise<McpPhaseResult> {
  const client = await connect(url);
  try {
    for (let i = 0; i < options.warmup; i++) await callOnce(client, call);
    const result = newResult(label, 'sequential', 1);
    const began = performance.now();
    for (let i = 0; i < options.count; i++) {
      const sentAt = performance.now();
      const error = await callOnce(client, call);
      record(result, performance.now() - sentAt, error);
    }
    result.elapsedMs = performance.now() - began;
    result.callsPerSecond = (result.ok / result.elapsedMs) * 1000;
    return result;
  } finally {
    await disconnect(client);
  }
}

/** `clients` clients, each calling in a closed loop for `durationMs`: throughput at a small, fixed concurrency. */
export async function runMcpConcurrent(label: string, url: string, call: ToolCall, options: { clients: number; warmup: number; durationMs: number }): Promise<McpPhaseResult> {
  const clients = await Promise.all(Array.from({ length: options.clients }, () => connect(url)));
  try {
    await Promise.all(clients.map(async (client) => {
      for (let i = 0; i < options.warmup; i++) await callOnce(client, call);
    }));
    const result = newResult(label, 'concurrent', options.clients);
    const began = performance.now();
    const deadline = began + options.durationMs;
    await Promise.all(
      clients.map(async (client) => {
        while (performance.now() < deadline) {
          const sentAt = performance.now();
          const error = await callOnce(client, call);
          record(result, performance.now() - sentAt, error);
        }
      }),
    );
    result.elapsedMs = performance.now() - began;
    result.callsPerSecond = (result.ok / result.elapsedMs) * 1000;
    return result;
  } finally {
    await Promise.all(clients.map(disconnect));
  }
}
