import type { HeaderList } from '@skein/core';
import { inspectMcpRequest, type JsonRpcInspection } from './jsonrpc.js';
import { isValidToolName } from './tool-name.js';

/**
 * What tracing, metrics and session affinity need to know about an MCP call: the method, the tool, the request id,
 * and trace context a client put in `params._meta`.
 */
export interface McpCallInfo {
  method: string;
  /**
   * `params.name` of a `tools/call`, only when it has the form of a tool name, so an invalid name (which the tool
   * policy refuses anyway) never reaches span names or metric labels.
   */
  tool?: string;
  requestId?: string | number;
  /** Messages in the body (more than one for a 2025-03-26 batch). */
  count: number;
  /** `params._meta.traceparent`/`tracestate`, as the MCP specification lets clients send them. */
  traceparent?: string;
  tracestate?: string;
}

/** Verbs that carry no JSON-RPC messages in MCP's HTTP transports. */
export const BODYLESS_VERBS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS']);

/** Longest method reported; real MCP methods are a few dozen characters, and the method names spans. */
const MAX_METHOD_LENGTH = 128;
/** A body without this token cannot be JSON-RPC; looking for it is far cheaper than parsing. */
const JSONRPC_TOKEN = Buffer.from('"jsonrpc"');

/**
 * The JSON-RPC (MCP) message of a call, parsed once, strictly (duplicate keys, depth and size refused), by the
 * inspection stage at the front of each pipeline. Tracing and metrics read `method`/`tool`; tool policy reuses
 * `inspection` instead of parsing again; session affinity and hooks read the same object.
 */
export interface McpMessage extends McpCallInfo {
  /**
   * The strict inspection of `body`, whole, when the inspection stage read it; `body` is the exact bytes inspected,
   * so a stage that replaced the call's body knows this inspection is stale.
   */
  readonly parsed?: { readonly inspection: Extract<JsonRpcInspection, { ok: true }>; readonly body: Buffer };
}

/** What tracing and metrics need of an inspected body: method, tool, id and `_meta` trace context of its first message. */
export function mcpInfoOfInspection(inspection: Extract<JsonRpcInspection, { ok: true }>): McpCallInfo | undefined {
  const first = inspection.messages[0];
  if (!first || (first.kind !== 'request' && first.kind !== 'notification') || first.method.length > MAX_METHOD_LENGTH) return undefined;
  const info: McpCallInfo = { method: first.method, count: inspection.messages.length };
  if (first.kind === 'request') {
    info.requestId = first.id;
    if (first.method === 'tools/call' && first.toolName !== undefined && isValidToolName(first.toolName)) info.tool = first.toolName;
  }
  const meta = first.params?.['_meta'];
  if (meta !== null && typeof meta === 'object' && !Array.isArray(meta)) {
    const { traceparent, tracestate } = meta as Record<string, unknown>;
    if (typeof traceparent === 'string') info.traceparent = traceparent;
    if (typeof tracestate === 'string') info.tracestate = tracestate;
  }
  return info;
}

/** The header list as the bag `inspectMcpRequest` reads (repeats become arrays). */
export function headerBag(headers: HeaderList): Record<string, string | string[]> {
  const bag: Record<string, string | string[]> = {};
  for (const [name, value] of headers) {
    const existing = bag[name];
    bag[name] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return bag;
}

/**
 * Strictly inspects a JSON-RPC body the way every consumer in a pipeline needs it (and the tool policy judges it):
 * undefined when the call cannot carry MCP messages or its body is not JSON-RPC.
 */
export function inspectCall(call: { verb: string; headers: HeaderList; body: unknown }, maxBytes: number): McpMessage | undefined {
  const body = call.body;
  if (!Buffer.isBuffer(body) || body.length === 0 || BODYLESS_VERBS.has(call.verb)) return undefined;
  const contentType = call.headers.find(([name]) => name === 'content-type')?.[1];
  if (contentType !== undefined && !contentType.includes('json')) return undefined;
  if (body.indexOf(JSONRPC_TOKEN) === -1) return undefined;
  const inspection = inspectMcpRequest({ body, headers: headerBag(call.headers), limits: { maxBytes } });
  if (!inspection.ok) {
    // Refused (the tool policy, where configured, says why); tracing and metrics still name what was attempted.
    const { method, id } = inspection.problem;
    if (method === undefined || method.length > MAX_METHOD_LENGTH) return undefined;
    return id === null ? { method, count: 1 } : { method, count: 1, requestId: id };
  }
  const info = mcpInfoOfInspection(inspection);
  return info ? { ...info, parsed: { inspection, body } } : undefined;
}

/** Largest body `mcpInfoOf` reads. */
const INFO_MAX_BYTES = 256 * 1024;

/** The MCP call a small body carries, read with the same strict inspection the pipeline runs; undefined if none. */
export function mcpInfoOf(body: Buffer, contentType: string | undefined): McpCallInfo | undefined {
  const message = inspectCall({ verb: 'POST', headers: contentType === undefined ? [] : [['content-type', contentType]], body }, INFO_MAX_BYTES);
  if (!message) return undefined;
  const { parsed: _parsed, ...info } = message;
  return info;
}
