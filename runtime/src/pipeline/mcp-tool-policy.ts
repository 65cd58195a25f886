import { Readable, Transform, type TransformCallback } from 'node:stream';
import { formatSpiffeId, logger, decision as makeDecision, type Decision, type HeaderList } from '@skein/core';
import { evaluateToolPolicy, filterToolsListResponse, type CompiledToolPolicy, type ToolPolicyCaller } from '../policy/tool-policy.js';
import { deniedResponse, inspectMcpRequest, mergeBatchAnswers, problemResponse, rewriteBatch, transformJsonRpcResponses, type InspectedMessage, type JsonRpcErrorResponse, type JsonRpcId } from '../mcp/jsonrpc.js';
import { SseJsonRpcFilter, serializeSseEvent } from '../mcp/sse.js';
import { insufficientScopeChallenge } from '../auth/bearer.js';
import type { DecisionSink } from './decisions.js';
import type { Handler, Middleware, Call, CallResponse } from './pipeline.js';
import { readWhole } from './read-body.js';
import { BODYLESS_VERBS, headerBag } from '../mcp/call-info.js';
import { jsonResponse } from './responses.js';

const log = logger('mcp-policy');



function withoutHeader(headers: HeaderList, name: string): HeaderList {
  return headers.filter(([key]) => key !== name);
}

/**
 * Per-tool and per-argument policy for MCP traffic (an `MCPToolPolicy` resource). Every JSON-RPC message of a
 * POST body is judged — batches entry by entry, so a forbidden call never rides along with an allowed one — and a
 * refused request is answered by the sidecar with a JSON-RPC error carrying its id, a stable Skein error code and
 * the rule. `tools/list` answers, JSON or server-sent events, are filtered to the tools the caller may call.
 * Headers never decide: the body is read, and for 2026-07-28 requests the mirrored headers must agree with it.
 */
export class McpToolPolicyMiddleware implements Middleware {
  readonly name = 'mcp-tool-policy';
  private readonly compiled: CompiledToolPolicy;
  private readonly sink: DecisionSink;
  private readonly maxBodyBytes: number;

  constructor(compiled: CompiledToolPolicy, sink: DecisionSink, maxBodyBytes: number) {
    this.compiled = compiled;
    this.sink = sink;
    this.maxBodyBytes = maxBodyBytes;
  }

  private refuseBodyOnBodylessVerb(request: Call, bytes: number): CallResponse {
    const reason = `an MCP ${request.verb} request carries no JSON-RPC messages, but this one has a ${bytes}-byte body; send messages with POST`;
    const caller = request.caller ? formatSpiffeId(request.caller) : 'anonymous';
    const refused = makeDecision({ allowed: false, source: 'tool-policy', rule: 'body-on-bodyless-verb', reason, caller, target: request.target.appId });
    request.decisions.push(refused);
    this.sink.record(refused, request, { requestId: null });
    return jsonResponse(400, problemResponse({ code: -32600, errorCode: 'ERR_MALFORMED_REQUEST', httpStatus: 400, message: reason, where: 'body', id: null }));
  }

  async handle(request: Call, next: Handler): Promise<CallResponse> {
    // Fail closed: every request that can carry a body is judged. Clients send MCP messages by POST; GET opens
    // the server's stream and DELETE ends a session, and those carry no messages: one that carries a body anyway
    // (a tools/call in a DELETE, which some servers would read) is refused, never forwarded unjudged.
    const body = await readWhole(request.body, this.maxBodyBytes);
    if (BODYLESS_VERBS.has(request.verb)) {
      if (body.length === 0) return next({ ...request, body });
      return this.refuseBodyOnBodylessVerb(request, body.length);
    }
    // The inspection stage parsed this very body already (strictly, with the same limits): judge that parse.
    const parsed = request.mcp?.parsed;
    const inspection = parsed && parsed.body === body ? parsed.inspection : inspectMcpRequest({ body, headers: headerBag(request.headers), limits: { maxBytes: this.maxBodyBytes } });
    const caller: ToolPolicyCaller = {
      callerAppId: request.caller?.appId,
      caller: request.caller ? formatSpiffeId(request.caller) : 'anonymous',
      ...(request.claims ? { claims: request.claims } : {}),
    };
    if (!inspection.ok) {
      const refused = makeDecision({ allowed: false, source: 'tool-policy', rule: 'invalid-jsonrpc', reason: inspection.problem.message, caller: caller.caller ?? 'anonymous', target: request.target.appId });
      request.decisions.push(refused);
      this.sink.record(refused, request, { requestId: inspection.problem.id ?? null });
      return jsonResponse(inspection.problem.httpStatus, problemResponse(inspection.problem));
    }

    let missingScopes: readonly string[] | undefined;
    const toolsListIds = new Set<JsonRpcId>();
    const judge = (message: Exclude<InspectedMessage, { kind: 'invalid' }>): JsonRpcErrorResponse | undefined => {
      // Responses answer the server's own requests (sampling, elicitation); they call nothing.
      if (message.kind === 'response') return undefined;
      const decided: Decision = evaluateToolPolicy(this.compiled, {
        ...caller,
        method: message.method,
        ...(message.kind === 'request' && message.toolName !== undefined ? { toolName: message.toolName } : {}),
        ...(message.kind === 'request' && message.arguments !== undefined ? { arguments: message.arguments } : {}),
      });
      request.decisions.push(decided);
      this.sink.record(decided, request, { requestId: message.kind === 'request' ? message.id : null, ...(inspection.batch ? { batchIndex: message.index } : {}) });
      if (decided.allowed) {
        if (message.kind === 'request' && message.method === 'tools/list') toolsListIds.add(message.id);
        return undefined;
      }
      if (decided.missingScopes) missingScopes = decided.missingScopes;
      return deniedResponse(message.kind === 'request' ? message.id : null, decided);
    };
    const plan = rewriteBatch(inspection, judge);

    if (plan.forward === undefined) {
      // Nothing left for the server: the sidecar answers alone.
      if (!inspection.batch && missingScopes) {
        return jsonResponse(403, plan.answers[0] ?? {}, [['www-authenticate', insufficientScopeChallenge(missingScopes)]]);
      }
      const text = inspection.batch ? mergeBatchAnswers(undefined, plan.answers) : plan.answers[0] ? JSON.stringify(plan.answers[0]) : undefined;
      // A refused notification has no JSON-RPC answer; HTTP still says it was refused.
      return text === undefined ? jsonResponse(403, problemResponse({ code: -31003, errorCode: 'ERR_MCP_TOOL_DENIED', httpStatus: 403, message: 'the notification was refused by the tool policy', where: '/', id: null })) : jsonResponse(200, text);
    }

    const forwardBody = Buffer.from(plan.forward, 'utf8');
    request.body = forwardBody;
    request.headers = [...withoutHeader(request.headers, 'content-length'), ['content-length', String(forwardBody.length)]];
    const response = await next(request);
    if (plan.answers.length === 0 && toolsListIds.size === 0) return response;
    return this.rewriteResponse(response, plan.answers, toolsListIds, caller);
  }

  /** Adds the sidecar's own batch answers and filters tools/list results in what the server sent back. */
  private async rewriteResponse(response: CallResponse, answers: readonly JsonRpcErrorResponse[], toolsListIds: ReadonlySet<JsonRpcId>, caller: ToolPolicyCaller): Promise<CallResponse> {
    const contentType = response.headers.find(([name]) => name === 'content-type')?.[1] ?? '';
    const filter = (message: Record<string, unknown>): Record<string, unknown> => {
      const id = message['id'];
      return (typeof id === 'string' || typeof id === 'number') && toolsListIds.has(id) ? filterToolsListResponse(this.compiled, caller, message) : message;
    };
    if (contentType.startsWith('text/event-stream')) {
      const sse = new SseJsonRpcFilter(filter);
      const extra = answers.map((item) => serializeSseEvent({ event: 'message', data: JSON.stringify(item) })).join('');
      const transform = new Transform({
        transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
          callback(null, sse.push(chunk));
        },
        flush(callback: TransformCallback) {
          callback(null, sse.end() + extra);
        },
      });
      response.body.on('error', (error) => transform.destroy(error));
      return { status: response.status, headers: withoutHeader(response.headers, 'content-length'), body: response.body.pipe(transform) };
    }
    if (contentType.startsWith('application/json') || (response.status === 202 && answers.length > 0)) {
      const text = (await readWhole(response.body, this.maxBodyBytes)).toString('utf8');
      let out = toolsListIds.size > 0 && text ? transformJsonRpcResponses(text, filter) : text;
      if (answers.length > 0) out = mergeBatchAnswers(out, answers) ?? '';
      const status = response.status === 202 && out ? 200 : response.status;
      const headers: HeaderList = [...withoutHeader(withoutHeader(response.headers, 'content-length'), 'content-type'), ['content-type', 'application/json'], ['content-length', String(Buffer.byteLength(out))]];
      return { status, headers, body: Readable.from([Buffer.from(out)]) };
    }
    log.debug('left a non-JSON response unfiltered', { contentType });
    return response;
  }
}
