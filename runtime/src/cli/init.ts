import { parseFlags } from './args.js';
import { initCa, skeinHome, isValidTrustDomain } from '@skein/core';
import { UsageError } from './args.js';

/** `skein init`: creates the development root CA and trust bundle. */
export function initCommand(argv: string[]): void {
  const flags = parseFlags(argv, {
    home: { type: 'string' },
    'trust-domain': { type: 'string', default: 'public' },
    'ca-ttl': { type: 'string', default: '8760h' },
  });
  const trustDomain = flags['trust-domain'] ?? 'public';
  if (!isValidTrustDomain(trustDomain)) throw new UsageError(`--trust-domain "${trustDomain}" is not a valid trust domain (lower-case letters, digits, '.', '-', '_')`);
  const home = flags.home ?? skeinHome();
  const { created, paths } = initCa(home, trustDomain, flags['ca-ttl']);
  process.stdout.write(`${created ? 'Created' : 'Kept the existing'} development CA for trust domain "${trustDomain}":\n  certificate  ${paths.cert}\n  private key  ${paths.key}\n  trust bundle ${paths.bundle}\n`);
}
