import { join } from 'node:path';
import { parseFlags, portFlag, UsageError } from './args.js';
import { Sentry, type SentryOptions } from '../identity/sentry.js';
import { readCa, skeinHome, parseDuration, trustDomainOfCa, logger } from '@skein/core';
import { announceReady, onShutdown } from './ready.js';

const log = logger('sentry');

/** True for loopback names and addresses. */
function isLoopback(address: string): boolean {
  return address === 'localhost' || address === '::1' || /^127\./.test(address);
}

/** The trust domain a root CA was made for, `public` when it names none. */
export function trustDomainOfCaOrDefault(certPem: string): string {
  return trustDomainOfCa(certPem) ?? 'public';
}

/** Parses the sentry's flags into options (shared with `skein up`). */
export function sentryOptionsFrom(
  flags: { home?: string | undefined; mode?: string | undefined; 'workload-cert-ttl'?: string | undefined; host?: string | undefined; port?: string | undefined; 'advertise-address'?: string[] | undefined; 'insecure-development'?: boolean | undefined },
  defaultPort: number,
): SentryOptions {
  const home = flags.home ?? skeinHome();
  const ca = readCa(home);
  const mode = flags.mode ?? 'development';
  if (mode !== 'development' && mode !== 'production') throw new UsageError(`--mode must be development or production, not "${mode}"`);
  // Development mode signs any CSR for any App ID: whoever reaches the sentry can take any identity. That is only
  // acceptable on a developer's own loopback.
  const exposed = [flags.host ?? '127.0.0.1', ...(flags['advertise-address'] ?? [])].filter((address) => !isLoopback(address));
  if (mode === 'development' && exposed.length > 0 && !flags['insecure-development']) {
    throw new UsageError(
      `the sentry would be reachable at ${exposed.join(', ')} in development mode, where anyone who reaches it gets any identity. ` +
        'Use --mode production (sidecars then need a join token from `skein token`), or --insecure-development to accept that risk.',
    );
  }
  if (mode === 'development') log.warn('development mode: the sentry signs a certificate for any App ID it is asked for; use --mode production beyond a single trusted machine');
  let ttl: number;
  try {
    ttl = parseDuration(flags['workload-cert-ttl'] ?? '24h');
  } catch (error) {
    throw new UsageError(`--workload-cert-ttl: ${(error as Error).message}`);
  }
  if (ttl < 2000) throw new UsageError('--workload-cert-ttl must be at least 2s');
  return {
    ca,
    trustDomain: trustDomainOfCaOrDefault(ca.certPem),
    mode,
    workloadCertTtlMs: ttl,
    host: flags.host ?? '127.0.0.1',
    port: portFlag('port', flags.port, defaultPort),
    advertiseAddresses: flags['advertise-address'] ?? [],
    usedTokensFile: join(home, 'sentry', 'used-join-tokens.json'),
  };
}

/** `skein sentry`: runs the certificate authority in the foreground. */
export async function sentryCommand(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, {
    home: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    mode: { type: 'string' },
    'workload-cert-ttl': { type: 'string' },
    'advertise-address': { type: 'string', multiple: true },
    'insecure-development': { type: 'boolean' },
  });
  const sentry = new Sentry(sentryOptionsFrom(flags, 50003));
  const port = await sentry.start();
  onShutdown(() => sentry.stop());
  announceReady('sentry', { address: `${flags.host ?? '127.0.0.1'}:${port}`, port });
}
