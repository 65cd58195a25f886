import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SkeinError } from '@skein/core';
import { startUntilReady } from './ready-process.js';

/** How `skein up` runs the sentry: the flags of `skein sentry`. */
export interface SentryProcessSettings {
  home: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  mode: string;
  workloadCertTtl?: string | undefined;
  advertiseAddresses: readonly string[];
  insecureDevelopment: boolean;
  onLine?: (line: string) => void;
}

/** A running sentry and the port it serves on. */
export interface SentryProcess {
  child: ChildProcess;
  port: number;
}

/**
 * Starts `skein sentry` as a process of its own (so a crash of the certificate authority is one restart, not the
 * end of `skein up`); resolves once it serves.
 */
export async function startSentryProcess(settings: SentryProcessSettings): Promise<SentryProcess> {
  const cli = fileURLToPath(new URL('../cli.js', import.meta.url));
  const args = [cli, 'sentry', '--home', settings.home, '--host', settings.host, '--port', String(settings.port), '--mode', settings.mode];
  if (settings.workloadCertTtl !== undefined) args.push('--workload-cert-ttl', settings.workloadCertTtl);
  for (const address of settings.advertiseAddresses) args.push('--advertise-address', address);
  if (settings.insecureDevelopment) args.push('--insecure-development');
  const { child, ready } = await startUntilReady('sentry', args, settings.onLine);
  const port = Number(ready['port']);
  if (!Number.isInteger(port) || port <= 0) {
    child.kill('SIGKILL');
    throw new SkeinError('ERR_INTERNAL', 'the sentry announced it was ready without a port');
  }
  return { child, port };
}
