import { Readable } from 'node:stream';
import type { HeaderList } from '@skein/core';
import type { CallResponse } from './pipeline.js';

/** A JSON response a stage answers with itself; `body` is JSON text already, or a value to serialise. */
export function jsonResponse(status: number, body: string | object, extra: HeaderList = []): CallResponse {
  const bytes = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return { status, headers: [['content-type', 'application/json'], ['content-length', String(bytes.length)], ...extra], body: Readable.from([bytes]) };
}
