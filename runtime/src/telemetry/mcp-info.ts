import { isValidToolName } from '../mcp/tool-name.js';

/**
 * What tracing and metrics need to know about an MCP call, read cheaply from a small JSON-RPC body: the method,
 * the tool, the request id, and trace context a client put in `params._meta`. Pure; never throws.
 */
export interface McpCallInfo {
  method: string;
  /**
   * `params.name` of a `tools/call`, only when it has the form of a tool name: this is read before any policy
   * runs, so an invalid name (which the inspector refuses anyway) must not reach span names or metric labels.
   */
  tool?: string;
  requestId?: string | number;
  /** Messages in the body (more than one for a 2025-03-26 batch). */
  count: number;
  /** `params._meta.traceparent`/`tracestate`, as the MCP specification lets clients send them. */
  traceparent?: string;
  tracestate?: string;
}

/** Largest body parsed for this: bigger bodies are rare for MCP requests and not worth parsing twice. */
const MAX_BYTES = 256 * 1024;
/** Longest method reported; real MCP methods are a few dozen characters, and the method names spans. */
const MAX_METHOD_LENGTH = 128;

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** Reads the first JSON-RPC message of `body`; undefined when it is not a JSON-RPC request or notification. */
export function mcpInfoOf(body: Buffer, contentType: string | undefined): McpCallInfo | undefined {
  if (body.length === 0 || body.length > MAX_BYTES || (contentType !== undefined && !contentType.includes('json'))) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const messages = Array.isArray(parsed) ? parsed : [parsed];
  const first = asRecord(messages[0]);
  if (!first || first['jsonrpc'] !== '2.0' || typeof first['method'] !== 'string' || first['method'].length > MAX_METHOD_LENGTH) return undefined;
  const params = asRecord(first['params']);
  const meta = asRecord(params?.['_meta']);
  const id = first['id'];
  const info: McpCallInfo = { method: first['method'], count: messages.length };
  if (typeof params?.['name'] === 'string' && first['method'] === 'tools/call' && isValidToolName(params['name'])) info.tool = params['name'];
  if (typeof id === 'string' || typeof id === 'number') info.requestId = id;
  if (typeof meta?.['traceparent'] === 'string') info.traceparent = meta['traceparent'];
  if (typeof meta?.['tracestate'] === 'string') info.tracestate = meta['tracestate'];
  return info;
}

/** The span name the OpenTelemetry MCP conventions ask for: `{mcp.method.name} {tool}`. */
export function mcpSpanName(info: McpCallInfo): string {
  return info.tool ? `${info.method} ${info.tool}` : info.method;
}

/** Whether a JSON-RPC response text (one message or a batch) answers `requestId` with a tool result flagged `isError`. */
export function isToolError(text: string, requestId: string | number | undefined): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return false;
  }
  for (const message of Array.isArray(parsed) ? parsed : [parsed]) {
    const record = asRecord(message);
    if (!record || (requestId !== undefined && record['id'] !== requestId)) continue;
    if (asRecord(record['result'])?.['isError'] === true) return true;
  }
  return false;
}
