/**
 * The MCP phases: the official MCP SDK client (streamable HTTP) calling a tool, sequentially and from several
 * clients at once. Each client has its own session, initialised before anything is measured.
 */
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Harness, ManagedProcess } from '../src/harness.js';
import { summarise, type LatencySummary } from './stats.js';

/** The sample MCP server (`samples/mcp-server`), the server every MCP phase calls. */
export const MCP_SERVER = fileURLToPath(import.meta.resolve('@skein/sample-mcp-server'));

/** Where a client connects, and the headers it sends on every request (a bearer token, for instance). */
export interface McpEndpoint {
  /** Short label for reports ("direct", "mesh", "chain"). */
  label: string;
  url: string;
  headers?: Record<string, string>;
}

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

/** Starts the sample MCP server on a free port; resolves with the process and its port. */
export async function startMcpServer(harness: Harness, name = 'mcp-server'): Promise<{ proc: ManagedProcess; port: number }> {
  const proc = harness.start(name, process.execPath, [MCP_SERVER], { env: { PORT: '0' } });
  const line = await proc.waitFor(/^\{"listening":\d+/);
  return { proc, port: (JSON.parse(line) as { listening: number }).listening };
}

/** Opens a session (initialize + initialized) on `endpoint`. */
export async function connectMcp(endpoint: McpEndpoint): Promise<Client> {
  const client = new Client({ name: 'skein-bench', version: '0.1.0' });
  const requestInit = endpoint.headers ? { requestInit: { headers: endpoint.headers } } : {};
  await client.connect(new StreamableHTTPClientTransport(new URL(endpoint.url), requestInit));
  return client;
}

/** Ends the session politely (DELETE) so the server frees it, then closes the client. */
export async function disconnectMcp(client: Client): Promise<void> {
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

/** Options of a sequential run on an open session. */
export interface McpSequentialOptions {
  /** Calls made and discarded first. */
  warmup: number;
  count: number;
  /** Called between the warm-up and the measured calls (to read counters over the measured part only). */
  onMeasureStart?: () => void;
}

/** On an open session, one call at a time: `warmup` calls discarded, then `count` measured. */
export async function callSequentially(client: Client, label: string, call: ToolCall, options: McpSequentialOptions): Promise<McpPhaseResult> {
  for (let i = 0; i < options.warmup; i++) await callOnce(client, call);
  const result = newResult(label, 'sequential', 1);
  options.onMeasureStart?.();
  const began = performance.now();
  for (let i = 0; i < options.count; i++) {
    const sentAt = performance.now();
    const error = await callOnce(client, call);
    record(result, performance.now() - sentAt, error);
  }
  result.elapsedMs = performance.now() - began;
  result.callsPerSecond = (result.ok / result.elapsedMs) * 1000;
  return result;
}

/** One client, one session, one call at a time. */
export async function runMcpSequential(endpoint: McpEndpoint, call: ToolCall, options: McpSequentialOptions): Promise<McpPhaseResult> {
  const client = await connectMcp(endpoint);
  try {
    return await callSequentially(client, endpoint.label, call, options);
  } finally {
    await disconnectMcp(client);
  }
}

/** Options of a concurrent phase. */
export interface McpConcurrentOptions {
  clients: number;
  /** Calls each client makes and discards first. */
  warmup: number;
  durationMs: number;
  /** Called once every client has warmed up, just before the measured calls. */
  onMeasureStart?: () => void;
  /** Called when the last measured call has ended, before the sessions are closed. */
  onMeasureEnd?: () => void;
}

/** `clients` clients, each calling in a closed loop for `durationMs`: throughput at a small, fixed concurrency. */
export async function runMcpConcurrent(endpoint: McpEndpoint, call: ToolCall, options: McpConcurrentOptions): Promise<McpPhaseResult> {
  const clients = await Promise.all(Array.from({ length: options.clients }, () => connectMcp(endpoint)));
  try {
    await Promise.all(clients.map(async (client) => {
      for (let i = 0; i < options.warmup; i++) await callOnce(client, call);
    }));
    const result = newResult(endpoint.label, 'concurrent', options.clients);
    options.onMeasureStart?.();
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
    options.onMeasureEnd?.();
    result.callsPerSecond = (result.ok / result.elapsedMs) * 1000;
    return result;
  } finally {
    await Promise.all(clients.map(disconnectMcp));
  }
}

/** Several phases of one path merged into one (the blocks of an interleaved sequential run). */
export function mergeMcpPhases(results: readonly McpPhaseResult[]): McpPhaseResult {
  const first = results[0];
  if (!first) throw new Error('nothing to merge');
  const merged = newResult(first.label, first.mode, first.clients);
  for (const result of results) {
    merged.latencies.push(...result.latencies);
    merged.ok += result.ok;
    merged.errors += result.errors;
    merged.firstError ??= result.firstError;
    merged.elapsedMs += result.elapsedMs;
  }
  merged.callsPerSecond = (merged.ok / merged.elapsedMs) * 1000;
  return merged;
}

/** An MCP phase reduced for the report and the JSON. */
export interface McpReport {
  latency: LatencySummary;
  ok: number;
  errors: number;
  firstError?: string;
  callsPerSecond: number;
  clients: number;
}

/** Reduces a phase to its report. */
export function mcpReportOf(result: McpPhaseResult): McpReport {
  return { latency: summarise(result.latencies), ok: result.ok, errors: result.errors, ...(result.firstError ? { firstError: result.firstError } : {}), callsPerSecond: result.callsPerSecond, clients: result.clients };
}
