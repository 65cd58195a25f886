import { inspectCall } from '../mcp/call-info.js';
import type { Call, CallResponse, Handler, Middleware } from './pipeline.js';

/**
 * First stage of both pipelines: reads what MCP call a small body carries, once, and attaches it to the call.
 * Never refuses anything (the tool policy, where configured, decides); streamed bodies are left to the stages that
 * read them whole.
 */
export class McpInspectionMiddleware implements Middleware {
  readonly name = 'mcp-inspection';
  private readonly maxBytes: number;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  handle(call: Call, next: Handler): Promise<CallResponse> {
    const mcp = inspectCall(call, this.maxBytes);
    if (mcp) call.mcp = mcp;
    return next(call);
  }
}
