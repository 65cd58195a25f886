/**
 * The floor of the invoke part: a minimal pass-through pair in plain Node (`test/src/apps/floor-proxy.ts`), HTTP in →
 * one mutual-TLS hop → HTTP out, run beside the sidecars in the same run. Whatever the sidecars add beyond it is what
 * Skein's own work (policy, tracing, discovery, framing) and its choices cost.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueServerCertificate } from '@skein/core';
import type { AppHandle, Harness } from '../src/harness.js';

/** The protocol of the floor's hop: HTTP/2 (what Skein's internal hop speaks) or HTTPS/1.1 keep-alive. */
export type FloorHop = 'h2' | 'h1';

/** A running floor pair. */
export interface FloorPair {
  hop: FloorHop;
  caller: AppHandle;
  callee: AppHandle;
}

/** Starts the floor's callee (forwarding to `appPort`) and caller, with certificates from the harness's CA. */
export async function startFloor(harness: Harness, appPort: number, hop: FloorHop): Promise<FloorPair> {
  const dir = harness.dir(`floor-${hop}`);
  const { certPem, keyPem } = issueServerCertificate(harness.ca, 'floor', ['localhost', '127.0.0.1'], 24 * 3600_000);
  const files = { FLOOR_CERT: join(dir, 'cert.pem'), FLOOR_KEY: join(dir, 'key.pem'), FLOOR_CA: join(dir, 'ca.pem') };
  writeFileSync(files.FLOOR_CERT, certPem);
  writeFileSync(files.FLOOR_KEY, keyPem, { mode: 0o600 });
  writeFileSync(files.FLOOR_CA, harness.ca.certPem);
  const callee = await harness.app('floor-proxy', { ...files, FLOOR_ROLE: 'callee', FLOOR_HOP: hop, FLOOR_TARGET_PORT: String(appPort) });
  const caller = await harness.app('floor-proxy', { ...files, FLOOR_ROLE: 'caller', FLOOR_HOP: hop, FLOOR_TARGET_PORT: String(callee.port) });
  return { hop, caller, callee };
}
