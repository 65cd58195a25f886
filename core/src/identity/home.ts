import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { SkeinError } from '../errors.js';
import { createRootCa, type KeyPair } from './ca.js';
import { parseDuration } from '../duration.js';

/** The Skein home folder: `$SKEIN_HOME`, else `~/.skein`. Holds the development CA and control-plane state. */
export function skeinHome(env: NodeJS.ProcessEnv = process.env): string {
  return env['SKEIN_HOME'] ?? join(homedir(), '.skein');
}

/** Where `skein init` keeps the CA of a home folder. */
export function caPaths(home: string): { cert: string; key: string; bundle: string; dir: string } {
  const dir = join(home, 'certs');
  return { dir, cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key'), bundle: join(dir, 'trust-bundle.pem') };
}

/** Reads the CA of `home`; a clear error says to run `skein init` when there is none. */
export function readCa(home: string): KeyPair {
  const paths = caPaths(home);
  if (!existsSync(paths.cert) || !existsSync(paths.key)) {
    throw new SkeinError('ERR_CERTIFICATE', `no CA in ${paths.dir}: run \`skein init\` first (or pass --home with the Skein home that has one)`);
  }
  return { certPem: readFileSync(paths.cert, 'utf8'), keyPem: readFileSync(paths.key, 'utf8') };
}

/** Creates the development root CA and trust bundle unless one exists; returns whether it created one. */
export function initCa(home: string, trustDomain: string, ttl = '8760h'): { created: boolean; paths: ReturnType<typeof caPaths> } {
  const paths = caPaths(home);
  if (existsSync(paths.cert) && existsSync(paths.key)) return { created: false, paths };
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  const ca = createRootCa(trustDomain, parseDuration(ttl));
  writeFileSync(paths.key, ca.keyPem, { mode: 0o600 });
  chmodSync(paths.key, 0o600);
  writeFileSync(paths.cert, ca.certPem);
  writeFileSync(paths.bundle, ca.certPem);
  return { created: true, paths };
}
