import { parseFlags } from './args.js';
import { readFileSync } from 'node:fs';
import { initCa, skeinHome, isValidTrustDomain, trustDomainOfCa } from '@skein/core';
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
  // An existing CA is kept as it is: say whose trust domain it is, and when that is not the one asked for.
  const actual = created ? trustDomain : (trustDomainOfCa(readFileSync(paths.cert, 'utf8')) ?? trustDomain);
  process.stdout.write(`${created ? 'Created' : 'Kept the existing'} development CA for trust domain "${actual}":\n  certificate  ${paths.cert}\n  private key  ${paths.key}\n  trust bundle ${paths.bundle}\n`);
  const asked = argv.some((arg) => arg === '--trust-domain' || arg.startsWith('--trust-domain='));
  if (!created && asked && actual !== trustDomain) {
    process.stderr.write(`skein: the existing CA is for trust domain "${actual}", not "${trustDomain}"; remove ${paths.dir} to create one for "${trustDomain}"\n`);
  }
}
