import { logger } from '../logger.js';

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
