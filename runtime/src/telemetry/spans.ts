import type { Readable } from 'node:stream';
import { SpanStatusCode, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';
import type { HeaderList } from '@skein/core';
import type { McpCallInfo } from './mcp-info.js';
import type { Tracing } from './tracing.js';

/** Trace-context headers: replaced at every hop by the sidecar when it traces, passed on untouched when it does not. */
export const TRACE_HEADERS = new Set(['traceparent', 'tracestate']);

/** `headers` with this hop's trace context in place of whatever trace context they carried. */
export function withTraceHeaders(headers: HeaderList, injected: Record<string, string>): HeaderList {
  if (Object.keys(injected).length === 0) return headers;
  return [...headers.filter(([name]) => !TRACE_HEADERS.has(name)), ...Object.entries(injected)];
}

/** Sets HTTP status on a span; 5xx marks it failed. */
export function recordStatus(span: Span, status: number): void {
  span.setAttribute('http.response.status_code', status);
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${status}` });
}

/** Ends `span` when `body` has been read to the end, failed or was abandoned — whichever comes first. */
export function endWithBody(span: Span, body: Readable): void {
  let ended = false;
  const end = (error?: Error): void => {
    if (ended) return;
    ended = true;
    if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    span.end();
  };
  body.once('end', () => end());
  body.once('error', (error: Error) => end(error));
  body.once('close', () => end());
}

/** Span attributes of an MCP call, per the OpenTelemetry MCP conventions (never its arguments). */
export function mcpAttributes(info: McpCallInfo | undefined, header: (name: string) => string | undefined): Attributes {
  if (!info) return {};
  const attributes: Attributes = { 'mcp.method.name': info.method, 'rpc.system': 'jsonrpc' };
  if (info.tool) attributes['gen_ai.tool.name'] = info.tool;
  if (info.requestId !== undefined) attributes['jsonrpc.request.id'] = String(info.requestId);
  if (info.count > 1) attributes['jsonrpc.batch.size'] = info.count;
  const session = header('mcp-session-id');
  if (session) attributes['mcp.session.id'] = session;
  const version = header('mcp-protocol-version');
  if (version) attributes['mcp.protocol.version'] = version;
  return attributes;
}

/**
 * The parent of an inbound span: W3C trace context from the transport (HTTP headers or gRPC metadata), else from
 * the MCP request's `params._meta`; a fresh trace when neither is valid.
 */
export function inboundParent(tracing: Tracing, carrier: Record<string, string | string[] | undefined>, info: McpCallInfo | undefined): Context {
  const fromTransport = tracing.extract(carrier);
  if (trace.getSpanContext(fromTransport) || !info?.traceparent) return fromTransport;
  return tracing.extract({ traceparent: info.traceparent, ...(info.tracestate ? { tracestate: info.tracestate } : {}) });
}
