import { parseFlags, UsageError } from './args.js';
import { readCa, skeinHome, isValidAppId, isValidNamespace, parseDuration } from '@skein/core';
import { createJoinToken, MAX_JOIN_TOKEN_TTL_SECONDS } from '../identity/join-token.js';
import { trustDomainOfCaOrDefault } from './sentry.js';

/** `skein token --app-id X [--namespace N] [--ttl 15m]`: prints a single-use join token for a production sentry. */
export async function tokenCommand(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, {
    home: { type: 'string' },
    'app-id': { type: 'string' },
    namespace: { type: 'string', default: 'default' },
    ttl: { type: 'string', default: '15m' },
  });
  const appId = flags['app-id'];
  const namespace = flags.namespace ?? 'default';
  if (!appId || !isValidAppId(appId)) throw new UsageError('--app-id is required and must be a valid App ID');
  if (!isValidNamespace(namespace)) throw new UsageError(`--namespace "${namespace}" is not a valid namespace`);
  const ca = readCa(flags.home ?? skeinHome());
  let seconds: number;
  try {
    seconds = Math.round(parseDuration(flags.ttl ?? '15m') / 1000);
  } catch (error) {
    throw new UsageError(`--ttl: ${(error as Error).message}`);
  }
  if (seconds < 1 || seconds > MAX_JOIN_TOKEN_TTL_SECONDS) throw new UsageError(`--ttl must be from 1s to 24h (a join token is a secret until it is used), not ${flags.ttl ?? ''}`);
  process.stdout.write(`${await createJoinToken(ca.keyPem, { trustDomain: trustDomainOfCaOrDefault(ca.certPem), namespace, appId }, seconds)}\n`);
}
