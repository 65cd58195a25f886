import type { Readable } from 'node:stream';
import { SkeinError } from '@skein/core';

/**
 * The one body reader of the data plane: reads a request or response body whole, refusing once it passes `limit`
 * bytes (and destroying the rest of the stream). The refusal is 413 `ERR_BODY_TOO_LARGE` naming `what`, unless
 * `overLimit` makes another (a body longer than its own content-length is malformed, not too large). A stream that
 * fails or closes before its end rejects with that failure. Plain stream events, not an async iterator: this runs
 * on every call, and the iterator's promise per chunk showed in the profiles.
 */
/** A request body whole, refused at once when its declared content-length already passes `limit`. */
export function readRequestBody(req: Readable & { headers: Record<string, string | string[] | undefined> }, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
  if (declared !== undefined && declared > limit) {
    return Promise.reject(new SkeinError('ERR_BODY_TOO_LARGE', `the request body of ${declared} bytes is larger than the limit of ${limit} bytes`));
  }
  return readWhole(req, limit, 'the request body');
}

export function readWhole(body: Buffer | Readable, limit: number, what = 'the body', overLimit?: () => SkeinError): Promise<Buffer> {
  const tooLarge = (): SkeinError => overLimit?.() ?? new SkeinError('ERR_BODY_TOO_LARGE', `${what} is larger than the limit of ${limit} bytes`);
  if (Buffer.isBuffer(body)) return body.length > limit ? Promise.reject(tooLarge()) : Promise.resolve(body);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      body.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      return true;
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        if (settle()) reject(tooLarge());
        body.destroy();
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      if (settle()) resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error): void => {
      if (settle()) reject(error);
    };
    const onClose = (): void => {
      if (settle()) reject(new Error(`${what} ended before it was complete`));
    };
    body.on('data', onData).once('end', onEnd).once('error', onError).once('close', onClose);
  });
}
