/**
 * The sidecar's own workflow worker for its MCPServers' workflows: it takes the engine's work items for
 * `dapr.internal.mcp.*` workflows and their call activity, plans each step (tool-workflows.ts) and performs each
 * call on the server's warm session. The app's workers never see these items.
 */
import { decision, logger, type Decision } from '@skein/core';
import type { durabletask as dt } from '@skein/proto';
import { CALL_TOOL_ACTIVITY, parseToolWorkflow, planToolStepOf, toolError, type CallToolInput } from '../mcp/mcpserver/tool-workflows.js';
import type { McpServers } from './mcp-servers.js';

const log = logger('mcpserver');

/** Where the worker sends its answers: the engine's completion methods. */
export interface ToolWorkerAnswers {
  completeOrchestration(response: dt.IOrchestratorResponse): void;
  completeActivity(response: dt.IActivityResponse): Promise<void>;
}

export class ToolWorkflowWorker {
  readonly id = 'skein-mcpserver-tools';
  private readonly servers: McpServers;
  private readonly appId: string;
  private readonly publish: (made: Decision) => void;
  private answers: ToolWorkerAnswers | undefined;

  /** `publish` takes the decision of each hook that stops a call, beside the ACL and tool-policy decisions. */
  constructor(servers: McpServers, appId: string, publish: (made: Decision) => void = () => undefined) {
    this.servers = servers;
    this.appId = appId;
    this.publish = publish;
  }

  /** Connects the worker to the engine that gives it work. */
  attach(answers: ToolWorkerAnswers): void {
    this.answers = answers;
  }

  /** True for the work items of MCPServer workflows and their call activity. */
  handles(item: dt.IWorkItem): boolean {
    if (item.activityRequest) return item.activityRequest.name === CALL_TOOL_ACTIVITY;
    const request = item.orchestratorRequest;
    if (!request) return false;
    const started = [...(request.pastEvents ?? []), ...(request.newEvents ?? [])].find((event) => event.executionStarted)?.executionStarted;
    return parseToolWorkflow(started?.name ?? '') !== undefined;
  }

  send(item: dt.IWorkItem): void {
    const answers = this.answers;
    if (!answers) return;
    if (item.orchestratorRequest) {
      const { response, stopped } = planToolStepOf(item.orchestratorRequest, { tools: (server) => this.servers.tools(server), hooks: (server) => this.servers.hooks(server), appId: this.appId });
      if (stopped) {
        this.publish(decision({
          allowed: false,
          source: 'mcp-hook',
          rule: `MCPServer/${stopped.server}/${stopped.tool === undefined ? 'beforeListTools' : 'beforeCallTool'}/${stopped.hook}`,
          reason: stopped.reason,
          caller: this.appId,
          target: stopped.server,
          ...(stopped.tool === undefined ? { method: 'tools/list' } : { method: 'tools/call', tool: stopped.tool }),
        }));
      }
      // Answered after the engine has finished handing the item over, as a remote worker would.
      queueMicrotask(() => {
        try {
          answers.completeOrchestration(response);
        } catch (error) {
          log.warn('an MCPServer workflow step was not taken', { instanceId: response.instanceId, reason: (error as Error).message });
        }
      });
      return;
    }
    const activity = item.activityRequest;
    if (activity) void this.call(activity, answers);
  }

  private async call(activity: dt.IActivityRequest, answers: ToolWorkerAnswers): Promise<void> {
    const base = { instanceId: activity.orchestrationInstance?.instanceId ?? '', taskId: activity.taskId ?? 0 };
    let response: dt.IActivityResponse;
    try {
      const input = JSON.parse(activity.input?.value ?? '{}') as CallToolInput;
      const result = await this.servers.callTool(input.server, input.tool, input.arguments);
      response = { ...base, result: { value: JSON.stringify(result) } };
    } catch (error) {
      // The server answered with a protocol error, or could not be reached: the tool call failed, say how.
      response = { ...base, result: { value: JSON.stringify(toolError((error as Error).message)) } };
    }
    await answers.completeActivity(response).catch((error: unknown) => log.warn('an MCPServer tool result was not recorded; the call runs again', { instanceId: base.instanceId, reason: (error as Error).message }));
  }
}
