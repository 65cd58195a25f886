import type { McpCallInfo } from '../mcp/call-info.js';

export { mcpInfoOf, type McpCallInfo } from '../mcp/call-info.js';

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
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
