import { SseParser } from '../mcp/sse.js';
import { isToolError } from './mcp-info.js';

/** Largest answer watched for a tool failure; bigger answers are passed on without a verdict. */
const MAX_WATCHED = 1024 * 1024;

/**
 * Watches the answer to a `tools/call` as it streams by (JSON or server-sent events, read with the one SSE parser)
 * and says, at the end, whether the tool reported `isError: true`. Bounded: a very large answer is not held.
 */
export class ToolResultWatch {
  private readonly sse: SseParser | undefined;
  private text = '';
  private seen = 0;
  private failedOnce = false;
  private overflow = false;

  constructor(contentType: string | undefined) {
    this.sse = (contentType ?? '').startsWith('text/event-stream') ? new SseParser({ maxBlockLength: MAX_WATCHED }) : undefined;
  }

  push(chunk: Buffer): void {
    if (this.overflow) return;
    this.seen += chunk.length;
    if (this.seen > MAX_WATCHED) {
      this.overflow = true;
      this.text = '';
      return;
    }
    if (this.sse) this.judge(this.sse.push(chunk));
    else this.text += chunk.toString('utf8');
  }

  failed(): boolean {
    if (this.overflow) return false;
    // Only complete events count: a stream cut mid-event delivers no half event (the SSE specification's rule).
    return this.sse ? this.failedOnce : isToolError(this.text, undefined);
  }

  private judge(blocks: ReturnType<SseParser['push']>): void {
    for (const block of blocks) if (block.event && isToolError(block.event.data, undefined)) this.failedOnce = true;
  }
}
