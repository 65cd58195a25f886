/**
 * The MCPServers of one sidecar: at start each one scoped to the app is connected with the official MCP SDK client
 * (streamable HTTP or SSE), its tools are discovered within the built-in bounds and cached, and its session is kept
 * open (one warm session per server) until the sidecar stops. A server that cannot be loaded stops the start with a
 * ConfigError naming the MCPServer, its file and the reason, unless it sets `spec.ignoreErrors`: then it is logged
 * and reported unavailable.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { ConfigError, logger, SkeinError } from '@skein/core';
import type { SecretStores } from '../secrets/secret-stores.js';
import type { MCPServerResource } from '../config/types.js';
import { compileMcpServerTarget, transportOf, type McpServerTarget, type McpServerTransportKind } from '../mcp/mcpserver/mcp-server-spec.js';
import { collectTools, type DiscoveredTool } from '../mcp/mcpserver/tool-discovery.js';
import type { ToolHooks } from '../mcp/mcpserver/tool-workflows.js';
import { FIRST_BYTE_TIMEOUT_MS, firstByteTimeoutFetch } from './first-byte-fetch.js';

const log = logger('mcpserver');

/** What `/v1.0/metadata` reports of one MCPServer: never its headers or URL. */
export interface McpServerSummary {
  name: string;
  transport: McpServerTransportKind;
  status: 'ready' | 'unavailable';
  tools: string[];
  /** Why it is unavailable. */
  error?: string;
}

/** One MCPServer resource in scope, as compiled from the files. */
export interface McpServerEntry {
  readonly resource: MCPServerResource;
  readonly file: string;
}

interface LoadedServer {
  readonly summary: McpServerSummary;
  readonly tools: readonly DiscoveredTool[];
  readonly client: Client | undefined;
  readonly timeoutMs: number;
}

/** Where the sidecar's secrets and environment come from, and the seams tests replace. */
export interface McpServersContext {
  stores: SecretStores;
  env?: Readonly<Record<string, string | undefined>>;
  fetch?: typeof fetch;
  /** Name and version the client gives in `initialize`. */
  clientInfo?: { name: string; version: string };
}

function reasonOf(error: unknown): string {
  if (error instanceof SkeinError) return error.message;
  const message = error instanceof Error ? error.message : String(error);
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : undefined;
  return cause && !message.includes(cause) ? `${message} (${cause})` : message;
}

/** The MCPServers a sidecar loaded. Create, `load()`, then `close()`. */
export class McpServers {
  private readonly entries: readonly McpServerEntry[];
  private readonly context: McpServersContext;
  private readonly loaded = new Map<string, LoadedServer>();

  constructor(entries: readonly McpServerEntry[], context: McpServersContext) {
    this.entries = entries;
    this.context = context;
  }

  /**
   * Connects to every server and discovers its tools, all at once. Throws a ConfigError for the first server that
   * fails without `ignoreErrors` (after closing every session it opened); the others are reported unavailable.
   */
  async load(): Promise<void> {
    const results = await Promise.allSettled(this.entries.map((entry) => this.loadOne(entry)));
    const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failure) {
      await this.close();
      throw failure.reason;
    }
  }

  private async loadOne(entry: McpServerEntry): Promise<void> {
    const { resource, file } = entry;
    const name = resource.metadata.name;
    const transport = transportOf(resource);
    let target: McpServerTarget | undefined;
    let client: Client | undefined;
    try {
      target = compileMcpServerTarget(resource, file, this.context);
      client = new Client(this.context.clientInfo ?? { name: 'skein', version: '0.1.0' });
      await client.connect(this.transportFor(target), { timeout: target.requestTimeoutMs });
      const connected = client;
      const timeout = target.requestTimeoutMs;
      const tools = await collectTools(async (cursor) => connected.listTools(cursor === undefined ? {} : { cursor }, { timeout }));
      this.loaded.set(name, { summary: { name, transport, status: 'ready', tools: tools.map((tool) => tool.name) }, tools: Object.freeze(tools), client, timeoutMs: timeout });
      log.info('MCPServer loaded', { name, transport, tools: tools.length });
    } catch (error) {
      await client?.close().catch(() => undefined);
      const reason = reasonOf(error);
      const sentence = error instanceof ConfigError ? reason : `MCPServer "${name}" could not be loaded from ${target?.url.href ?? transport}: ${reason}`;
      this.loaded.set(name, { summary: { name, transport, status: 'unavailable', tools: [], error: sentence }, tools: [], client: undefined, timeoutMs: 0 });
      if (!resource.spec.ignoreErrors) {
        throw error instanceof ConfigError ? error : new ConfigError(file, `/spec/endpoint/${transport}/url`, sentence);
      }
      log.error('MCPServer could not be loaded; it is unavailable (spec.ignoreErrors is true)', { name, reason: sentence });
    }
  }

  private transportFor(target: McpServerTarget): StreamableHTTPClientTransport | SSEClientTransport {
    const headers = Object.fromEntries(target.headers);
    const bounded = firstByteTimeoutFetch(this.context.fetch ?? fetch, FIRST_BYTE_TIMEOUT_MS);
    const options = { requestInit: { headers }, fetch: bounded };
    return target.transport === 'sse' ? new SSEClientTransport(target.url, options) : new StreamableHTTPClientTransport(target.url, options);
  }

  /** Every server, loaded or not, by name. */
  summaries(): McpServerSummary[] {
    return this.entries.map(({ resource }) => this.loaded.get(resource.metadata.name)?.summary).filter((summary): summary is McpServerSummary => summary !== undefined).map((summary) => ({ ...summary, tools: [...summary.tools] }));
  }

  /** The middleware hooks of a server (`spec.middleware`), as loaded. */
  hooks(name: string): ToolHooks | undefined {
    return this.entries.find((entry) => entry.resource.metadata.name === name)?.resource.spec.middleware;
  }

  /** The cached tools of a ready server; undefined when it is not loaded. */
  tools(name: string): readonly DiscoveredTool[] | undefined {
    const server = this.loaded.get(name);
    return server?.summary.status === 'ready' ? server.tools : undefined;
  }

  /**
   * Calls a tool on a ready server's warm session and returns its `CallToolResult` as the server sent it. A protocol
   * or transport failure rejects (the caller decides what the workflow sees).
   */
  async callTool(name: string, tool: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    const server = this.loaded.get(name);
    if (!server?.client || server.summary.status !== 'ready') throw new SkeinError('ERR_MCP_SERVER_UNAVAILABLE', `MCPServer "${name}" is not loaded${server?.summary.error ? `: ${server.summary.error}` : ''}`);
    return await server.client.callTool({ name: tool, arguments: args }, undefined, { timeout: server.timeoutMs });
  }

  /** Closes every session. */
  async close(): Promise<void> {
    const clients = [...this.loaded.values()].flatMap((server) => (server.client ? [server.client] : []));
    await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
  }
}
