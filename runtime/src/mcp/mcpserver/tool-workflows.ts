/**
 * The workflows an MCPServer resource defines (Dapr's names): `dapr.internal.mcp.<server>.ListTools` answers from
 * the tools discovered at load, and `dapr.internal.mcp.<server>.CallTool.<tool>` calls the tool as one activity, so
 * the call is durable (a sidecar killed mid-call runs it again). Everything after `.CallTool.` is the tool's name,
 * dots included. Pure: an orchestration step is a function of the instance's history and the discovered tools.
 */
import type { durabletask as dt } from '@skein/proto';
import { WorkflowStatus } from '../../workflow/api.js';

const PREFIX = 'dapr.internal.mcp.';
/** The activity that performs a tool call on the server's warm session. */
export const CALL_TOOL_ACTIVITY = 'dapr.internal.mcp.callTool';

export type ToolWorkflow = { server: string; kind: 'list' } | { server: string; kind: 'call'; tool: string };

/** The workflow name of a server's ListTools, or of CallTool for one of its tools. */
export function toolWorkflowName(workflow: ToolWorkflow): string {
  return workflow.kind === 'list' ? `${PREFIX}${workflow.server}.ListTools` : `${PREFIX}${workflow.server}.CallTool.${workflow.tool}`;
}

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

/** One middleware hook: a workflow of the app, run as a child workflow of the tool workflow. */
export interface ToolHook {
  readonly workflowName: string;
  readonly appID?: string | undefined;
}

/** The hooks of one MCPServer (`spec.middleware`), in array order. */
export interface ToolHooks {
  readonly beforeCallTool?: readonly { workflow: ToolHook; mutate?: boolean | undefined }[] | undefined;
  readonly afterCallTool?: readonly { workflow: ToolHook; mutate?: boolean | undefined }[] | undefined;
  readonly beforeListTools?: readonly { workflow: ToolHook; mutate?: boolean | undefined }[] | undefined;
  readonly afterListTools?: readonly { workflow: ToolHook; mutate?: boolean | undefined }[] | undefined;
}

/** What the step needs to know of the sidecar's MCPServers. */
export interface ToolServers {
  /** The cached tools of a ready server; undefined when it is not loaded. */
  tools(server: string): readonly CachedTool[] | undefined;
  /** Its hooks; none when absent. */
  hooks?(server: string): ToolHooks | undefined;
  /** The App ID the sidecar serves: hooks name it (or no app) to run here. */
  readonly appId?: string;
}

/** The activity's input: which tool, with which arguments. */
export interface CallToolInput {
  server: string;
  tool: string;
  arguments: Record<string, unknown>;
}

type Outcome = { kind: 'done'; result: unknown } | { kind: 'failed'; message: string } | { kind: 'running' } | { kind: 'not-started' };

/** What became of the task or child `id` in `events`. */
function outcomeOf(events: readonly dt.IHistoryEvent[], id: number): Outcome {
  for (const event of events) {
    if (event.taskCompleted?.taskScheduledId === id) return { kind: 'done', result: JSON.parse(event.taskCompleted.result?.value ?? 'null') as unknown };
    if (event.subOrchestrationInstanceCompleted?.taskScheduledId === id) return { kind: 'done', result: JSON.parse(event.subOrchestrationInstanceCompleted.result?.value ?? 'null') as unknown };
    if (event.taskFailed?.taskScheduledId === id) return { kind: 'failed', message: event.taskFailed.failureDetails?.errorMessage ?? 'unknown error' };
    if (event.subOrchestrationInstanceFailed?.taskScheduledId === id) return { kind: 'failed', message: event.subOrchestrationInstanceFailed.failureDetails?.errorMessage ?? 'unknown error' };
  }
  const scheduled = events.some((event) => (event.taskScheduled || event.subOrchestrationInstanceCreated) && event.eventId === id);
  return scheduled ? { kind: 'running' } : { kind: 'not-started' };
}

/**
 * One orchestration step of a tool workflow, as a walk over its history: each hook in array order as a child
 * workflow (ids 1…), then for CallTool the call as an activity, then the after-hooks; the first step not yet done is
 * scheduled (or waited for). Hook inputs are the seed's: `{name, toolName, arguments}`, `{..., result}`, `{name}`,
 * `{name, result}`; with `mutate` a hook's output replaces the arguments or the result. A before-hook that fails
 * stops the chain with an `isError` result (the server never sees the call); an afterCallTool failure fails the
 * workflow; an afterListTools failure leaves the result as it was. Arguments are checked against the cached schema
 * after the before-hooks, before the server is contacted.
 */
export function planToolStep(request: dt.IOrchestratorRequest, servers: ToolServers): dt.IOrchestratorResponse {
  return planToolStepOf(request, servers).response;
}

/** A step, and the before-hook that stopped the call or listing when this step ends it so. */
export interface ToolStep {
  response: dt.IOrchestratorResponse;
  stopped?: { server: string; tool: string | undefined; hook: string; reason: string } | undefined;
}

/** {@link planToolStep}, telling which hook stopped the chain (for its decision event). */
export function planToolStepOf(request: dt.IOrchestratorRequest, servers: ToolServers): ToolStep {
  let stopped: ToolStep['stopped'];
  const response = walk(request, servers, (found) => (stopped = found));
  return { response, ...(stopped ? { stopped } : {}) };
}

function walk(request: dt.IOrchestratorRequest, servers: ToolServers, onStopped: (stopped: NonNullable<ToolStep['stopped']>) => void): dt.IOrchestratorResponse {
  const instanceId = request.instanceId ?? '';
  const events = [...(request.pastEvents ?? []), ...(request.newEvents ?? [])];
  const started = events.find((event) => event.executionStarted)?.executionStarted;
  const respond = (actions: dt.IOrchestratorAction[]): dt.IOrchestratorResponse => ({ instanceId, actions });
  const complete = (result: unknown): dt.IOrchestratorResponse => respond([{ id: -1, completeOrchestration: { orchestrationStatus: WorkflowStatus.COMPLETED, result: { value: JSON.stringify(result) } } }]);
  const fail = (message: string): dt.IOrchestratorResponse => respond([{ id: -1, completeOrchestration: { orchestrationStatus: WorkflowStatus.FAILED, failureDetails: { errorType: 'MCPServerHookError', errorMessage: message, isNonRetriable: true } } }]);
  const workflow = parseToolWorkflow(started?.name ?? '');
  if (!workflow) return complete(toolError(`'${started?.name ?? ''}' is not an MCPServer workflow`));
  const tools = servers.tools(workflow.server);
  if (!tools) return complete(toolError(`MCPServer "${workflow.server}" is not loaded on this sidecar`));
  const hooks = servers.hooks?.(workflow.server) ?? {};
  const toolName = workflow.kind === 'call' ? workflow.tool : undefined;
  const [before, after] = workflow.kind === 'call' ? [hooks.beforeCallTool ?? [], hooks.afterCallTool ?? []] : [hooks.beforeListTools ?? [], hooks.afterListTools ?? []];
  let nextId = 1;
  /** Runs hook `hook` as child `id` with `input`, or tells what became of it. */
  const child = (hook: { workflow: ToolHook }, id: number, input: unknown): Outcome | dt.IOrchestratorResponse => {
    const outcome = outcomeOf(events, id);
    if (outcome.kind !== 'not-started') return outcome;
    const appId = hook.workflow.appID;
    if (appId && servers.appId && appId !== servers.appId) return complete(toolError(`hook workflow '${hook.workflow.workflowName}' runs on app '${appId}': hooks on another app are not supported yet`));
    return respond([{ id, createSubOrchestration: { instanceId: `${instanceId}-hook-${id}`, name: hook.workflow.workflowName, input: { value: JSON.stringify(input) } } }]);
  };
  const isResponse = (value: Outcome | dt.IOrchestratorResponse): value is dt.IOrchestratorResponse => 'actions' in value;

  let args: Record<string, unknown> = {};
  if (workflow.kind === 'call') {
    try {
      const input = JSON.parse(started?.input?.value ?? '{}') as { arguments?: unknown } | null;
      const given = input?.arguments ?? {};
      if (typeof given !== 'object' || given === null || Array.isArray(given)) throw new Error('"arguments" must be an object');
      args = given as Record<string, unknown>;
    } catch (error) {
      return complete(toolError(`the input of a CallTool workflow is {"arguments": {...}}: ${(error as Error).message}`));
    }
  }
  for (const hook of before) {
    const id = nextId++;
    const input = workflow.kind === 'call' ? { name: workflow.server, toolName, arguments: args } : { name: workflow.server };
    const outcome = child(hook, id, input);
    if (isResponse(outcome)) return outcome;
    if (outcome.kind === 'failed') {
      onStopped({ server: workflow.server, tool: toolName, hook: hook.workflow.workflowName, reason: outcome.message });
      return complete(toolError(`hook '${hook.workflow.workflowName}' stopped the ${workflow.kind === 'call' ? `call of tool '${workflow.tool}'` : 'listing'}: ${outcome.message}`));
    }
    if (outcome.kind !== 'done') return respond([]);
    if (hook.mutate && workflow.kind === 'call' && typeof outcome.result === 'object' && outcome.result !== null && !Array.isArray(outcome.result)) args = outcome.result as Record<string, unknown>;
  }
  let result: unknown;
  if (workflow.kind === 'list') {
    result = { tools };
  } else {
    const tool = tools.find((candidate) => candidate.name === workflow.tool);
    if (!tool) return complete(toolError(`MCPServer "${workflow.server}" has no tool '${workflow.tool}'`));
    const id = nextId++;
    const call = outcomeOf(events, id);
    if (call.kind === 'running') return respond([]);
    if (call.kind === 'failed') return complete(toolError(`tool '${workflow.tool}' of MCPServer "${workflow.server}" failed: ${call.message}`));
    if (call.kind === 'not-started') {
      const missing = missingArguments(tool.inputSchema, args);
      if (missing.length > 0) return complete(toolError(`tool '${workflow.tool}' needs the argument${missing.length > 1 ? 's' : ''} ${missing.map((name) => `'${name}'`).join(', ')}`));
      const input: CallToolInput = { server: workflow.server, tool: workflow.tool, arguments: args };
      return respond([{ id, scheduleTask: { name: CALL_TOOL_ACTIVITY, input: { value: JSON.stringify(input) } } }]);
    }
    result = call.result;
  }
  for (const hook of after) {
    const id = nextId++;
    const input = workflow.kind === 'call' ? { name: workflow.server, toolName, arguments: args, result } : { name: workflow.server, result };
    const outcome = child(hook, id, input);
    if (isResponse(outcome)) return outcome;
    if (outcome.kind === 'failed') {
      if (workflow.kind === 'call') return fail(`hook '${hook.workflow.workflowName}' failed after tool '${workflow.tool}' ran: ${outcome.message}`);
      continue; // afterListTools: the listing stands (the seed's behaviour).
    }
    if (outcome.kind !== 'done') return respond([]);
    if (hook.mutate) result = outcome.result;
  }
  return complete(result);
}
