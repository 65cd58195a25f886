/**
 * Server-Sent Events, incrementally: a parser that turns `text/event-stream` bytes into blocks as they complete,
 * and a filter that rewrites the JSON-RPC messages carried in them (to drop `tools/list` entries a caller may not
 * see) while passing every other byte of the stream on unchanged. Pure: no timers, no I/O; the caller feeds chunks.
 */
import { transformJsonRpcResponses } from './jsonrpc.js';

/** One dispatched event (WHATWG HTML, "event stream interpretation"). */
export interface SseEvent {
  readonly event?: string;
  readonly data: string;
  readonly id?: string;
  readonly retry?: number;
}

/** One blank-line-terminated block as received (lines ending in `\n`), and the event it dispatches, if any. */
export interface SseBlock {
  readonly raw: string;
  /** Undefined for blocks without data (comments, keep-alives, a bare `id:` or `retry:`). */
  readonly event: SseEvent | undefined;
}

/** A stream that exceeded its limits; the caller should abort it rather than pass on a partial event. */
export class SseLimitError extends Error {
  override readonly name = 'SseLimitError';
}

/** Limits on buffering. */
export interface SseOptions {
  /** Largest block held while waiting for its end, in UTF-16 code units (default 8 Mi). */
  maxBlockLength?: number;
}

/**
 * Incremental parser. `push` returns the blocks completed by the chunk; an unterminated block left at `end` is
 * discarded, as the specification says, so a stream cut mid-event never delivers half an event.
 */
export class SseParser {
  private readonly decoder = new TextDecoder('utf-8');
  private readonly maxBlockLength: number;
  private pending = '';
  private lines: string[] = [];
  private blockLength = 0;

  constructor(options: SseOptions = {}) {
    this.maxBlockLength = options.maxBlockLength ?? 8 * 1024 * 1024;
  }

  /** Feeds a chunk; returns the blocks it completed. Throws SseLimitError when a block grows past the limit. */
  push(chunk: Uint8Array | string): SseBlock[] {
    this.pending += typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    return this.drain(false);
  }

  /** Ends the stream; returns any block completed by the final bytes. */
  end(): SseBlock[] {
    this.pending += this.decoder.decode();
    const blocks = this.drain(true);
    this.lines = [];
    this.blockLength = 0;
    return blocks;
  }

  private drain(final: boolean): SseBlock[] {
    const blocks: SseBlock[] = [];
    let start = 0;
    const text = this.pending;
    for (;;) {
      let index = start;
      while (index < text.length) {
        const code = text.charCodeAt(index);
        if (code === 0x0a || code === 0x0d) break;
        index += 1;
      }
      if (index >= text.length) break;
      // A CR at the very end of the buffer may be the first half of CRLF; wait for the next chunk unless final.
      if (text.charCodeAt(index) === 0x0d && index + 1 >= text.length && !final) break;
      const line = text.slice(start, index);
      start = index + (text.charCodeAt(index) === 0x0d && text.charCodeAt(index + 1) === 0x0a ? 2 : 1);
      const block = this.line(line);
      if (block) blocks.push(block);
    }
    this.pending = text.slice(start);
    if (this.blockLength + this.pending.length > this.maxBlockLength) {
      throw new SseLimitError(`an event stream block is longer than ${this.maxBlockLength} characters`);
    }
    return blocks;
  }

  private line(line: string): SseBlock | undefined {
    if (line === '') {
      if (this.lines.length === 0) return undefined;
      const block = toBlock(this.lines);
      this.lines = [];
      this.blockLength = 0;
      return block;
    }
    this.lines.push(line);
    this.blockLength += line.length + 1;
    return undefined;
  }
}

function toBlock(lines: readonly string[]): SseBlock {
  let data: string | undefined;
  let event: string | undefined;
  let id: string | undefined;
  let retry: number | undefined;
  for (const line of lines) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        data = data === undefined ? value : `${data}\n${value}`;
        break;
      case 'event':
        event = value;
        break;
      case 'id':
        if (!value.includes('\0')) id = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) retry = Number(value);
        break;
      default:
        break;
    }
  }
  const raw = `${lines.join('\n')}\n\n`;
  if (data === undefined) return Object.freeze({ raw, event: undefined });
  const parsed: { event?: string; data: string; id?: string; retry?: number } = { data };
  if (event !== undefined) parsed.event = event;
  if (id !== undefined) parsed.id = id;
  if (retry !== undefined) parsed.retry = retry;
  return Object.freeze({ raw, event: Object.freeze(parsed) });
}

/** Writes one event in wire form; multi-line data becomes several `data:` lines. */
export function serializeSseEvent(event: SseEvent): string {
  let out = '';
  if (event.event !== undefined) out += `event: ${event.event}\n`;
  if (event.id !== undefined) out += `id: ${event.id}\n`;
  if (event.retry !== undefined) out += `retry: ${event.retry}\n`;
  for (const line of event.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return `${out}\n`;
}

/**
 * Rewrites the JSON-RPC messages of `message` events in a stream with `transform` (see
 * `transformJsonRpcResponses`); every other block, and every event the transform leaves alone, is passed on as
 * received. Feed it the upstream chunks and write what `push` and `end` return.
 */
export class SseJsonRpcFilter {
  private readonly parser: SseParser;

  constructor(
    private readonly transform: (message: Record<string, unknown>) => Record<string, unknown>,
    options: SseOptions = {},
  ) {
    this.parser = new SseParser(options);
  }

  /** Feeds upstream bytes; returns the text to send downstream now. */
  push(chunk: Uint8Array | string): string {
    return this.render(this.parser.push(chunk));
  }

  /** Ends the stream; returns the last text to send. */
  end(): string {
    return this.render(this.parser.end());
  }

  private render(blocks: readonly SseBlock[]): string {
    let out = '';
    for (const block of blocks) {
      const event = block.event;
      if (!event || (event.event !== undefined && event.event !== 'message')) {
        out += block.raw;
        continue;
      }
      const data = transformJsonRpcResponses(event.data, this.transform);
      out += data === event.data ? block.raw : serializeSseEvent({ ...event, data });
    }
    return out;
  }
}
