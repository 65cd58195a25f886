import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SkeinError } from '@skein/core';
import { startUntilReady } from './ready-process.js';

/**
 * The `skein-placement` bin of the placement package, found at run time: the runtime cannot import placement
 * (placement builds on the runtime), so `skein up` starts it as a process, like nats-server.
 */
export function findPlacementBin(): string {
  let manifestPath: string;
  try {
    manifestPath = fileURLToPath(import.meta.resolve('@skein/placement/package.json'));
  } catch (error) {
    throw new SkeinError('ERR_INTERNAL', 'the placement package (@skein/placement) is not installed next to the runtime', { cause: error });
  }
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { bin?: Record<string, string> };
  const bin = manifest.bin?.['skein-placement'];
  const path = bin ? join(dirname(manifestPath), bin) : '';
  if (!bin || !existsSync(path)) throw new SkeinError('ERR_INTERNAL', `the placement package at ${dirname(manifestPath)} has no built skein-placement bin: run npm run build`);
  return path;
}

/** Where and how `skein up` runs placement. */
export interface PlacementProcessSettings {
  home: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  natsUrl: string;
  /** `host:port` sidecars use, when not the bound address. */
  advertiseAddress?: string | undefined;
  onLine?: (line: string) => void;
}

/** A running placement replica and the address it serves on. */
export interface PlacementProcess {
  child: ChildProcess;
  address: string;
}

/** Starts one placement replica; resolves once it serves (its `ready` record), with its address. */
export async function startPlacementProcess(settings: PlacementProcessSettings): Promise<PlacementProcess> {
  const args = [findPlacementBin(), '--home', settings.home, '--host', settings.host, '--port', String(settings.port), '--nats-url', settings.natsUrl, '--id', 'placement-0'];
  if (settings.advertiseAddress) args.push('--advertise-address', settings.advertiseAddress);
  const { child, ready } = await startUntilReady('placement', args, settings.onLine);
  if (typeof ready['address'] !== 'string') {
    child.kill('SIGKILL');
    throw new SkeinError('ERR_INTERNAL', 'placement announced it was ready without an address');
  }
  return { child, address: ready['address'] };
}
