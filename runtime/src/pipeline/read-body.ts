import type { Readable } from 'node:stream';
import { SkeinError } from '@skein/core';

/**
 * The one body reader of the data plane: reads a request or response body whole, refusing (413) once it passes
 * `limit` bytes (and destroying the rest of the stream). `what` names the body in the error.
 */
export async function readWhole(body: Buffer | Readable, limit: number, what = 'the body'): Promise<Buffer> {
  if (Buffer.isBuffer(body)) {
    if (body.length > limit) throw new SkeinError('ERR_BODY_TOO_LARGE', `${what} is larger than the limit of ${limit} bytes`);
    return body;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      throw new SkeinError('ERR_BODY_TOO_LARGE', `${what} is larger than the limit of ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}
