import { isToolError } from './mcp-info.js';

/** Largest answer watched for a tool failure; bigger answers are passed on without a verdict. */
const MAX_WATCHED = 1024 * 1024;

/**
 * Watches the answer to a `tools/call` as it streams by (JSON or server-sent events) and says, at the end,
 * whether the tool reported `isError: true`. Bounded: a very large answer is not held.
 */
export class ToolResultWatch {
  private readonly sse: boolean;
  private text = '';
  private overflow = false;

  constructor(contentType: string | undefined) {
    this.sse = (contentType ?? '').startsWith('text/event-stream');
  }

  push(chunk: Buffer): void {
    if (this.overflow) return;
    if (this.text.length + chunk.length > MAX_WATCHED) {
      this.overflow = true;
      this.text = '';
      return;
    }
    this.text += chunk.toString('utf8');
  }

  failed(): boolean {
    if (this.overflow) return false;
    if (!this.sse) return isToolError(this.text, undefined);
    const data = this.text
      .split(/\r?\n\r?\n/)
      .map((event) => event.split(/\r?\n/).filter((line) => line.startsWith('data:')).map((line) => line.slice(5).trimStart()).join('\n'))
      .filter(Boolean);
    return data.some((payload) => isToolError(payload, undefined));
  }
}
