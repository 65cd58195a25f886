import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SkeinError } from '@skein/core';

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
export function startPlacementProcess(settings: PlacementProcessSettings): Promise<PlacementProcess> {
  const args = [findPlacementBin(), '--home', settings.home, '--host', settings.host, '--port', String(settings.port), '--nats-url', settings.natsUrl, '--id', 'placement-0'];
  if (settings.advertiseAddress) args.push('--advertise-address', settings.advertiseAddress);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SKEIN_LOG_FORMAT: 'json' } });
  return new Promise((resolve, reject) => {
    let buffered = '';
    let ready = false;
    let lastLine = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        settings.onLine?.(line);
        if (line.trim()) lastLine = line;
        if (ready || !line.startsWith('{')) continue;
        try {
          const record = JSON.parse(line) as { msg?: string; address?: string };
          if (record.msg === 'ready' && typeof record.address === 'string') {
            ready = true;
            resolve({ child, address: record.address });
          }
        } catch {
          // not a log record
        }
      }
    });
    child.once('error', (error) => reject(new SkeinError('ERR_INTERNAL', `cannot start placement: ${error.message}`, { cause: error })));
    child.once('exit', (code) => {
      if (!ready) reject(new SkeinError('ERR_INTERNAL', `placement exited with code ${String(code)} before it was ready: ${lastLine}`));
    });
  });
}
