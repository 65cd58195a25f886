import { parseArgs } from 'node:util';
import type { NatsConnection } from '@nats-io/transport-node';
import { UsageError } from './args.js';
import { runningControlPlane } from './control-plane.js';
import { skeinHome, isValidAppId, isValidNamespace, parseDuration, connectOperatorBus, operatorTls } from '@skein/core';

/** Flags every command reading the telemetry stream takes: where NATS is and how to authenticate to it. */
export const TELEMETRY_READER_FLAGS = {
  home: { type: 'string' },
  'nats-url': { type: 'string' },
  'cert-file': { type: 'string' },
  'key-file': { type: 'string' },
  'trust-anchors-file': { type: 'string' },
  namespace: { type: 'string' },
  app: { type: 'string' },
  since: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
} as const;

type FlagOptions = NonNullable<Parameters<typeof parseArgs>[0]>['options'];

/** Strict parsing that also returns positional arguments (`skein traces <traceId>`). */
export function parseFlagsAndPositionals<T extends NonNullable<FlagOptions>>(argv: string[], options: T): { values: ReturnType<typeof parseArgs<{ options: T; strict: true; allowPositionals: true }>>['values']; positionals: string[] } {
  try {
    const parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
    return { values: parsed.values, positionals: parsed.positionals };
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
}

/** `--since 10m` (a duration back from `now`) or `--since 2026-11-21T10:00:00Z` (a time). */
export function sinceFlag(value: string | undefined, now: number): Date | undefined {
  if (value === undefined) return undefined;
  try {
    return new Date(now - parseDuration(value));
  } catch {
    const time = Date.parse(value);
    if (Number.isNaN(time)) throw new UsageError(`--since must be a duration like 10m or 24h, or a time like 2026-11-21T10:00:00Z, not "${value}"`);
    return new Date(time);
  }
}

/** `--limit N`: a positive integer. */
export function limitFlag(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit must be a positive integer, not "${value}"`);
  return limit;
}

/** Validates `--app` and `--namespace`, which become tokens of a subject filter. */
export function subjectTokens(flags: { app?: string | undefined; namespace?: string | undefined }): { app: string; namespace: string } {
  if (flags.app !== undefined && !isValidAppId(flags.app)) throw new UsageError(`--app "${flags.app}" is not a valid App ID`);
  if (flags.namespace !== undefined && !isValidNamespace(flags.namespace)) throw new UsageError(`--namespace "${flags.namespace}" is not a valid namespace`);
  return { app: flags.app ?? '*', namespace: flags.namespace ?? '*' };
}

/**
 * Connects to the NATS of `--nats-url`, else of the running `skein up` recorded in the Skein home, with the
 * certificate of `--cert-file/--key-file` or one minted from the home's CA.
 */
export async function connectReader(
  flags: { home?: string | undefined; 'nats-url'?: string | undefined; 'cert-file'?: string | undefined; 'key-file'?: string | undefined; 'trust-anchors-file'?: string | undefined },
  command: string,
  reconnect: boolean,
): Promise<NatsConnection> {
  const home = flags.home ?? skeinHome();
  const controlPlane = runningControlPlane(home);
  const natsUrl = flags['nats-url'] ?? controlPlane?.natsUrl ?? 'tls://127.0.0.1:4222';
  const trustAnchorsFile = flags['trust-anchors-file'] ?? controlPlane?.trustBundle;
  const tls = operatorTls({
    home,
    appId: 'skein-cli',
    ...(flags['cert-file'] === undefined ? {} : { certFile: flags['cert-file'] }),
    ...(flags['key-file'] === undefined ? {} : { keyFile: flags['key-file'] }),
    ...(trustAnchorsFile === undefined ? {} : { trustAnchorsFile }),
  });
  return connectOperatorBus(natsUrl, tls, `skein ${command}`, reconnect);
}

/** Aborts on the first SIGINT/SIGTERM, so a `--follow` ends cleanly (its consumer deleted) instead of dying. */
export function abortOnSignal(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const abort = (): void => controller.abort();
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', abort);
      process.off('SIGTERM', abort);
    },
  };
}

/** Writes one line to stdout, waiting when the pipe is full (`skein decisions | head` stays correct). */
export async function writeLine(line: string): Promise<void> {
  if (!process.stdout.write(`${line}\n`)) await new Promise<void>((resolve) => process.stdout.once('drain', () => resolve()));
}
