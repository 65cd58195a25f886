/**
 * `tools/list` over every page, within the bounds that keep a misbehaving or hostile MCP server from exhausting the
 * sidecar: at most 500 pages, at most 500 tools, each input schema at most 1 MiB. A server past a bound is refused,
 * never truncated. Pure but for the page reader it is given.
 */

/** Most `tools/list` pages read from one server. */
export const MAX_TOOL_PAGES = 500;
/** Most tools kept per server. */
export const MAX_TOOLS = 500;
/** Largest input schema of one tool, as JSON, in bytes. */
export const MAX_TOOL_SCHEMA_BYTES = 1024 * 1024;

/** A discovered tool, as the MCP wire gives it. */
export interface DiscoveredTool {
  readonly name: string;
  readonly description?: string | undefined;
  readonly inputSchema: unknown;
  readonly [field: string]: unknown;
}

/** One `tools/list` answer. */
export interface ToolPage {
  readonly tools: readonly DiscoveredTool[];
  readonly nextCursor?: string | undefined;
}

/** A server whose tool list is past a bound; the message names the bound (and the tool). */
export class ToolDiscoveryLimitError extends Error {
  override readonly name = 'ToolDiscoveryLimitError';
}

/** Bounds of one discovery; the defaults are the built-in limits (tests pass smaller ones). */
export interface DiscoveryLimits {
  maxPages: number;
  maxTools: number;
  maxSchemaBytes: number;
}

const LIMITS: DiscoveryLimits = Object.freeze({ maxPages: MAX_TOOL_PAGES, maxTools: MAX_TOOLS, maxSchemaBytes: MAX_TOOL_SCHEMA_BYTES });

/** Throws ToolDiscoveryLimitError when the input schema of `tool` is larger than `maxBytes` as JSON. */
export function checkToolSchemaSize(tool: DiscoveredTool, maxBytes = MAX_TOOL_SCHEMA_BYTES): void {
  const bytes = Buffer.byteLength(JSON.stringify(tool.inputSchema ?? null), 'utf8');
  if (bytes > maxBytes) throw new ToolDiscoveryLimitError(`the input schema of tool "${tool.name}" is ${bytes} bytes, larger than the limit of ${maxBytes} bytes`);
}

/**
 * Reads pages with `listPage(cursor)` until one has no `nextCursor`, and returns every tool. Refuses a server that
 * needs more than `maxPages` pages, lists more than `maxTools` tools, or has an input schema over `maxSchemaBytes`.
 */
export async function collectTools(listPage: (cursor: string | undefined) => Promise<ToolPage>, limits: Partial<DiscoveryLimits> = {}): Promise<DiscoveredTool[]> {
  const { maxPages, maxTools, maxSchemaBytes } = { ...LIMITS, ...limits };
  const tools: DiscoveredTool[] = [];
  let cursor: string | undefined;
  for (let page = 1; ; page++) {
    if (page > maxPages) throw new ToolDiscoveryLimitError(`tools/list needs more than ${maxPages} pages (the limit); the server is refused rather than truncated`);
    const answer = await listPage(cursor);
    for (const tool of answer.tools) {
      if (tools.length >= maxTools) throw new ToolDiscoveryLimitError(`the server lists more than ${maxTools} tools (the limit)`);
      checkToolSchemaSize(tool, maxSchemaBytes);
      tools.push(tool);
    }
    if (answer.nextCursor === undefined || answer.nextCursor === '') return tools;
    cursor = answer.nextCursor;
  }
}
