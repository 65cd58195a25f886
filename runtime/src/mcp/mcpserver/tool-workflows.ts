/**
 * The workflows an MCPServer resource defines (Dapr's names): `dapr.internal.mcp.<server>.ListTools` answers from
 * the tools discovered at load, and `dapr.internal.mcp.<server>.CallTool.<tool>` calls the tool as one activity, so
 * the call is durable (a sidecar killed mid-call runs it again). Everything after `.CallTool.` is the tool's name,
 * dots included. Pure: an orchestration step is a function of the instance's history and the discovered tools.
 */
import type { durabletask as dt } from '@skein/proto';

const PREFIX = 'dapr.internal.mcp.';
/** The activity that performs a tool call on the server's warm session. */
export const CALL_TOOL_ACTIVITY = 'dapr.internal.mcp.callTool';
/** The orchestration status durabletask gives a completed instance. */
const COMPLETED = 1;

export type ToolWorkflow = { server: string; kind: 'list' } | { server: string; kind: 'call'; tool: string };

/** The MCPServer and tool a workflow name addresses; undefined for any other name. */
export function parseToolWorkflow(name: string): ToolWorkflow | undefined {
  if (!name.startsWith(PREFIX)) return undefined;
  const rest = name.slice(PREFIX.length);
  const dot = rest.indexOf('.');
  if (dot <= 0) return undefined;
  const server = rest.slice(0, dot);
  const operation = rest.slice(dot + 1);
  if (operation === 'ListTools') return { server, kind: 'list' };
  if (operation.startsWith('CallTool.') && operation.length > 'CallTool.'.length) return { server, kind: 'call', tool: operation.slice('CallTool.'.length) };
  return undefined;
}

/** A tool as discovery cached it. */
export interface CachedTool {
  readonly name: string;
  readonly inputSchema: unknown;
  readonly [field: string]: unknown;
}

/** The required arguments of `inputSchema` that `args` lacks, in the schema's order. */
export function missingArguments(inputSchema: unknown, args: Record<string, unknown>): string[] {
  const required = (inputSchema as { required?: unknown } | null)?.required;
  if (!Array.isArray(required)) return [];
  return required.filter((name): name is string => typeof name === 'string' && !Object.prototype.hasOwnProperty.call(args, name));
}

/** An MCP `CallToolResult` reporting a failure as the tool's own (`isError`), as MCP does for tool-level errors. */
export function toolError(message: string): { content: Array<{ type: 'text'; text: string }>; isError: true } {
  return { content: [{ type: 'text', text: message }], isError: true };
}

/** What the step needs to know of the sidecar's MCPServers: the cached tools of a ready server. */
export type ToolsOf = (server: string) => readonly CachedTool[] | undefined;

/** The activity's input: which tool, with which arguments. */
export interface CallToolInput {
  server: string;
  tool: string;
  arguments: Record<string, unknown>;
}

/**
 * One orchestration step of a tool workflow. ListTools completes at once with `{"tools": [...]}` from the cache.
 * CallTool schedules the call as activity 1 once its input (`{"arguments": {...}}`) is valid and every required
 * argument is there — otherwise it completes at once with an `isError` result and the server is never contacted —
 * and completes with the activity's `CallToolResult` (or, if the call itself failed, an `isError` result saying why).
 */
export function planToolStep(request: dt.IOrchestratorRequest, toolsOf: ToolsOf): dt.IOrchestratorResponse {
  const events = [...(request.pastEvents ?? []), ...(request.newEvents ?? [])];
  const started = events.find((event) => event.executionStarted)?.executionStarted;
  const complete = (result: unknown): dt.IOrchestratorResponse => ({
    instanceId: request.instanceId ?? '',
    actions: [{ id: -1, completeOrchestration: { orchestrationStatus: COMPLETED, result: { value: JSON.stringify(result) } } }],
  });
  const workflow = parseToolWorkflow(started?.name ?? '');
  if (!workflow) return complete(toolError(`'${started?.name ?? ''}' is not an MCPServer workflow`));
  const tools = toolsOf(workflow.server);
  if (!tools) return complete(toolError(`MCPServer "${workflow.server}" is not loaded on this sidecar`));
  if (workflow.kind === 'list') return complete({ tools });
  const done = events.find((event) => (event.taskCompleted?.taskScheduledId ?? event.taskFailed?.taskScheduledId) === 1);
  if (done?.taskCompleted) return complete(JSON.parse(done.taskCompleted.result?.value ?? 'null') as unknown);
  if (done?.taskFailed) return complete(toolError(`tool '${workflow.tool}' of MCPServer "${workflow.server}" failed: ${done.taskFailed.failureDetails?.errorMessage ?? 'unknown error'}`));
  if (events.some((event) => event.taskScheduled)) return { instanceId: request.instanceId ?? '', actions: [] };
  const tool = tools.find((candidate) => candidate.name === workflow.tool);
  if (!tool) return complete(toolError(`MCPServer "${workflow.server}" has no tool '${workflow.tool}'`));
  let args: Record<string, unknown>;
  try {
    const input = JSON.parse(started?.input?.value ?? '{}') as { arguments?: unknown } | null;
    const given = input?.arguments ?? {};
    if (typeof given !== 'object' || given === null || Array.isArray(given)) throw new Error('"arguments" must be an object');
    args = given as Record<string, unknown>;
  } catch (error) {
    return complete(toolError(`the input of a CallTool workflow is {"arguments": {...}}: ${(error as Error).message}`));
  }
  const missing = missingArguments(tool.inputSchema, args);
  if (missing.length > 0) return complete(toolError(`tool '${workflow.tool}' needs the argument${missing.length > 1 ? 's' : ''} ${missing.map((name) => `'${name}'`).join(', ')}`));
  const input: CallToolInput = { server: workflow.server, tool: workflow.tool, arguments: args };
  return { instanceId: request.instanceId ?? '', actions: [{ id: 1, scheduleTask: { name: CALL_TOOL_ACTIVITY, input: { value: JSON.stringify(input) } } }] };
}
