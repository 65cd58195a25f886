import { Transform, type TransformCallback } from 'node:stream';
import { asSkeinError } from '@skein/core';
import { SpanKind, failSpan, type Tracing } from '../telemetry/tracing.js';
import { endWithBody, inboundParent, mcpAttributes, recordStatus } from '../telemetry/spans.js';
import { mcpSpanName } from '../telemetry/mcp-info.js';
import { ToolResultWatch } from '../telemetry/tool-result.js';
import { denialErrorCode } from '../mcp/jsonrpc.js';
import { headerOf, type Call, type CallResponse, type Handler, type Middleware } from './pipeline.js';

/**
 * The server span of a call, as a stage: one per sidecar a call passes through, parent from the transport's trace
 * context (or the MCP request's `_meta`), named per the OpenTelemetry MCP conventions when the inspection stage
 * found an MCP message, ended when the response body has been relayed. On the callee's side, the answer to a
 * traced `tools/call` is watched, so a tool that reports `isError: true` fails the span (`error.type=tool_error`).
 */
export class ServerSpanMiddleware implements Middleware {
  readonly name = 'server-span';
  private readonly tracing: Tracing;
  private readonly side: 'inbound' | 'outbound';
  private readonly appId: string;

  /** `appId` is this sidecar's app; `side` says whether calls come from the mesh (inbound) or from the app. */
  constructor(tracing: Tracing, side: 'inbound' | 'outbound', appId: string) {
    this.tracing = tracing;
    this.side = side;
    this.appId = appId;
  }

  async handle(call: Call, next: Handler): Promise<CallResponse> {
    const { tracing } = this;
    if (!tracing.enabled) return next(call);
    const { mcp, verb, method, target } = call;
    const inbound = this.side === 'inbound';
    const name = mcp ? mcpSpanName(mcp) : inbound ? `${verb} /${method}` : `${verb} invoke ${target.appId}`;
    const scope = tracing.start(name, SpanKind.SERVER, inboundParent(tracing, call.traceCarrier ?? {}, mcp), {
      'http.request.method': verb,
      'url.path': `/${method}`,
      ...(inbound ? { 'skein.app_id': this.appId } : { 'skein.target.app_id': target.appId }),
      ...mcpAttributes(mcp, (header) => headerOf(call.headers, header)),
    });
    call.trace = scope;
    let response: CallResponse;
    try {
      response = await next(call);
    } catch (error) {
      // A caller that went away is not a failure of the call.
      if (!call.signal.aborted) {
        const failure = asSkeinError(error);
        recordStatus(scope.span, failure.httpStatus);
        failSpan(scope.span, failure.code, failure.message);
      }
      scope.span.end();
      throw error;
    }
    recordStatus(scope.span, response.status);
    // A call a policy refused is an error of its trace, whatever status carried the refusal (a JSON-RPC error
    // answers 200): `skein traces --status error` finds it, with the rule's reason.
    const denied = call.decisions.find((decided) => !decided.allowed);
    if (denied) failSpan(scope.span, denialErrorCode(denied), `denied by ${denied.source} rule ${denied.rule}: ${denied.reason}`);
    if (inbound && mcp?.method === 'tools/call' && scope.span.isRecording()) response = { ...response, body: watchToolResult(response, (message) => failSpan(scope.span, 'tool_error', message)) };
    endWithBody(scope.span, response.body);
    return response;
  }
}

/** The response body, passed through unchanged, with `onToolError` called before its end if the tool failed. */
function watchToolResult(response: CallResponse, onToolError: (message: string) => void): Transform {
  const watch = new ToolResultWatch(headerOf(response.headers, 'content-type'));
  const tap = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      watch.push(chunk);
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      if (watch.failed()) onToolError('the tool answered isError: true');
      callback();
    },
  });
  response.body.once('error', (error: Error) => tap.destroy(error));
  tap.once('close', () => {
    if (!tap.writableFinished) response.body.destroy();
  });
  response.body.pipe(tap);
  return tap;
}
