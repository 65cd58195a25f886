import type { McpSessionRegistry } from '../bus/mcp-sessions.js';
import type { Handler, Middleware, Call, CallResponse } from './pipeline.js';

function header(headers: ReadonlyArray<readonly [string, string]>, name: string): string | undefined {
  return headers.find(([key]) => key === name)?.[1];
}

/**
 * Callee side of MCP session affinity: when the app hands out a new `Mcp-Session-Id`, this instance is recorded
 * as the session's owner; when a session is deleted, the record goes too. Runs last, next to the app.
 */
export class McpSessionMiddleware implements Middleware {
  readonly name = 'mcp-sessions';
  private readonly registry: McpSessionRegistry;
  private readonly instanceId: string;

  constructor(registry: McpSessionRegistry, instanceId: string) {
    this.registry = registry;
    this.instanceId = instanceId;
  }

  async handle(request: Call, next: Handler): Promise<CallResponse> {
    const asked = header(request.headers, 'mcp-session-id');
    const response = await next(request);
    const given = header(response.headers, 'mcp-session-id');
    const { appId, namespace } = request.target;
    if (given && given !== asked) await this.registry.record(namespace, appId, given, this.instanceId);
    if (asked && request.verb === 'DELETE' && response.status < 300) void this.registry.forget(namespace, appId, asked);
    return response;
  }
}
