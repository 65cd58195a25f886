/**
 * gRPC's wire format over HTTP/2 (grpc/doc/PROTOCOL-HTTP2.md), the part the internal hop needs: length-prefixed
 * messages, the status trailers and the percent-encoding of `grpc-message`. Pure: no I/O.
 */

/** Bytes before each message: a compression flag (always 0 here) and a big-endian 32-bit length. */
export const MESSAGE_PREFIX_BYTES = 5;

/** One message with its prefix, in one buffer, so that it goes out in one write. */
export function frameMessage(message: Uint8Array): Buffer {
  const framed = Buffer.allocUnsafe(MESSAGE_PREFIX_BYTES + message.length);
  framed[0] = 0;
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, MESSAGE_PREFIX_BYTES);
  return framed;
}

/** Why a byte stream is not a sequence of gRPC messages this side accepts. */
export class FramingError extends Error {
  override readonly name = 'FramingError';
}

/**
 * Cuts a byte stream into gRPC messages. Chunks arrive as the socket delivers them: a message may span many
 * chunks and a chunk may hold many messages. Compressed messages and messages over `maxMessageBytes` are refused.
 */
export class MessageReader {
  private readonly maxMessageBytes: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Length of the message being assembled, once its prefix is complete. */
  private expected = -1;

  constructor(maxMessageBytes: number) {
    this.maxMessageBytes = maxMessageBytes;
  }

  /** Adds a chunk and calls `onMessage` with every message it completes; throws a FramingError on bad input. */
  push(chunk: Buffer, onMessage: (message: Buffer) => void): void {
    // The usual case on the hop: exactly one whole message in one chunk, nothing pending.
    if (this.pendingBytes === 0 && chunk.length >= MESSAGE_PREFIX_BYTES) {
      const length = this.prefixLength(chunk);
      if (chunk.length === MESSAGE_PREFIX_BYTES + length) {
        onMessage(chunk.subarray(MESSAGE_PREFIX_BYTES));
        return;
      }
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    for (;;) {
      if (this.expected < 0) {
        if (this.pendingBytes < MESSAGE_PREFIX_BYTES) return;
        this.expected = this.prefixLength(this.take(MESSAGE_PREFIX_BYTES));
      }
      if (this.pendingBytes < this.expected) return;
      const message = this.take(this.expected);
      this.expected = -1;
      onMessage(message);
    }
  }

  /** True when a message was begun and not finished: the stream ended in the middle of one. */
  get partial(): boolean {
    return this.pendingBytes > 0 || this.expected >= 0;
  }

  private prefixLength(bytes: Buffer): number {
    if (bytes[0] !== 0) throw new FramingError('compressed gRPC messages are not accepted');
    const length = bytes.readUInt32BE(1);
    if (length > this.maxMessageBytes) throw new FramingError(`a gRPC message of ${length} bytes is over the limit of ${this.maxMessageBytes}`);
    return length;
  }

  /** Removes and returns the first `count` pending bytes. */
  private take(count: number): Buffer {
    const first = this.pending[0];
    if (first && first.length >= count) {
      const taken = first.subarray(0, count);
      if (first.length === count) this.pending.shift();
      else this.pending[0] = first.subarray(count);
      this.pendingBytes -= count;
      return taken;
    }
    const all = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = all.length > count ? [all.subarray(count)] : [];
    this.pendingBytes -= count;
    return all.subarray(0, count);
  }
}

/** `grpc-message` is percent-encoded: bytes outside printable ASCII, and `%` itself. */
export function encodeGrpcMessage(message: string): string {
  // The fast path: nothing to escape.
  if (/^[\x20-\x24\x26-\x7e]*$/.test(message)) return message;
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The inverse of `encodeGrpcMessage`; malformed escapes are kept as they are. */
export function decodeGrpcMessage(encoded: string): string {
  if (!encoded.includes('%')) return encoded;
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    const code = encoded.charCodeAt(i);
    if (code === 0x25 && i + 2 < encoded.length && /^[0-9a-fA-F]{2}$/.test(encoded.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(encoded.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(code & 0xff);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
