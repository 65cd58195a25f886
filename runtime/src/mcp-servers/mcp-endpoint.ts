/**
 * Each MCPServer served back as an MCP endpoint at `/v1.0/mcp/<server>` (streamable HTTP, stateless): an
 * off-the-shelf MCP client lists tools through the server's ListTools workflow and calls them through its
 * CallTool.<tool> workflow, hooks and all, with the results the workflow API gives. The MCP protocol itself is the
 * official SDK's server.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { SkeinError } from '@skein/core';
import { WorkflowStatus, statusName, type Workflows } from '../workflow/api.js';
import { toolWorkflowName } from '../mcp/mcpserver/tool-workflows.js';

/** How long a tools/list or tools/call waits for its workflow. */
const WAIT_MS = 5 * 60_000;

/** Runs one workflow to its end and returns its output, parsed; a workflow that did not complete is an MCP error. */
async function runWorkflow(workflows: Workflows, name: string, input: unknown, signal: AbortSignal): Promise<unknown> {
  const instanceId = await workflows.start({ name, instanceId: `mcp-${randomUUID()}`, input: JSON.stringify(input) });
  const state = await workflows.wait(instanceId, 'completion', AbortSignal.any([signal, AbortSignal.timeout(WAIT_MS)]));
  if (state?.status !== WorkflowStatus.COMPLETED) {
    throw new McpError(ErrorCode.InternalError, `workflow ${name} (instance ${instanceId}) ended ${state ? statusName(state.status) : 'unknown'}${state?.failure ? `: ${state.failure.errorMessage}` : ''}`);
  }
  return JSON.parse(state.output ?? 'null') as unknown;
}

function mcpServerFor(server: string, workflows: Workflows, cached: (() => readonly unknown[] | undefined) | undefined, signal: AbortSignal): Server {
  const mcp = new Server({ name: `skein-mcpserver-${server}`, version: '0.1.0' }, { capabilities: { tools: {} } });
  mcp.setRequestHandler(ListToolsRequestSchema, async () => {
    // Without list hooks the ListTools workflow would only return the cache: answer from it.
    const tools = cached?.();
    if (tools) return { tools: tools as Tool[] };
    const listed = (await runWorkflow(workflows, toolWorkflowName({ server, kind: 'list' }), {}, signal)) as { tools?: Tool[]; isError?: boolean; content?: Array<{ text?: string }> } | null;
    if (!listed?.tools) throw new McpError(ErrorCode.InternalError, listed?.content?.[0]?.text ?? `MCPServer "${server}" listed no tools`);
    return { tools: listed.tools };
  });
  mcp.setRequestHandler(CallToolRequestSchema, async (request) => {
    const result = await runWorkflow(workflows, toolWorkflowName({ server, kind: 'call', tool: request.params.name }), { arguments: request.params.arguments ?? {} }, signal);
    return result as CallToolResult;
  });
  return mcp;
}

/**
 * Serves one MCP request for `server`. `known` says whether the sidecar loaded an MCPServer of that name: an
 * unknown one is a 404 before any MCP exchange. `cached` gives the discovered tools when no list hook applies.
 */
export async function serveMcpEndpoint(req: IncomingMessage, res: ServerResponse, server: string, workflows: Workflows, known: boolean, cached?: () => readonly unknown[] | undefined): Promise<void> {
  if (!known) throw new SkeinError('ERR_NOT_FOUND', `this sidecar has no MCPServer named "${server}"`);
  const aborted = new AbortController();
  res.once('close', () => aborted.abort());
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  const mcp = mcpServerFor(server, workflows, cached, aborted.signal);
  res.once('close', () => void transport.close().then(() => mcp.close()));
  await mcp.connect(transport);
  await transport.handleRequest(req, res);
}
