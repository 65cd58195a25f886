import { parseFlags, UsageError } from './args.js';
import { readCa, skeinHome, isValidAppId, isValidNamespace, parseDuration } from '@skein/core';
import { createJoinToken } from '../identity/join-token.js';
import { trustDomainOfCaOrDefault } from './sentry.js';

/** `skein token --app-id X [--namespace N] [--ttl 1h]`: prints a join token for a production sentry. */
export async function tokenCommand(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, {
    home: { type: 'string' },
    'app-id': { type: 'string' },
    namespace: { type: 'string', default: 'default' },
    ttl: { type: 'string', default: '1h' },
  });
  const appId = flags['app-id'];
  const namespace = flags.namespace ?? 'default';
  if (!appId || !isValidAppId(appId)) throw new UsageError('--app-id is required and must be a valid App ID');
  if (!isValidNamespace(namespace)) throw new UsageError(`--namespace "${namespace}" is not a valid namespace`);
  const ca = readCa(flags.home ?? skeinHome());
  const seconds = Math.round(parseDuration(flags.ttl ?? '1h') / 1000);
  process.stdout.write(`${await createJoinToken(ca.keyPem, { trustDomain: trustDomainOfCaOrDefault(ca.certPem), namespace, appId }, seconds)}\n`);
}
