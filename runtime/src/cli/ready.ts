import type { ChildProcess } from 'node:child_process';
import { logger } from '@skein/core';

const log = logger('cli');

/** Announces that a long-running command is ready, with the facts a script needs (ports, addresses). */
export function announceReady(what: string, facts: Record<string, unknown>): void {
  log.info('ready', { what, ...facts });
}

/** Runs `stop` once on SIGINT/SIGTERM, then exits with `code`. */
export function onShutdown(stop: () => Promise<void>, code = 0): void {
  let stopping = false;
  const handler = (): void => {
    if (stopping) return;
    stopping = true;
    stop().then(
      () => process.exit(code),
      (error: unknown) => {
        log.error('shutdown failed', { reason: (error as Error).message });
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

/**
 * Stops a child process and resolves once it has exited — at once if it already has (a Ctrl-C reaches the whole
 * process group, so children often die before we ask). SIGKILL follows `graceMs` later if it ignores `signal`.
 */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
