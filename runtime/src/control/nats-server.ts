import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SkeinError, issueServerCertificate, localAddresses, type KeyPair } from '@skein/core';

const CANDIDATES = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'];

/** Finds `nats-server`: `$SKEIN_NATS_SERVER` when set (and only there), else PATH or Debian's location. */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const configured = env['SKEIN_NATS_SERVER'];
  if (configured) return existsSync(configured) ? configured : undefined;
  for (const dir of (env['PATH'] ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'nats-server'))) return join(dir, 'nats-server');
  }
  return CANDIDATES.find((candidate) => existsSync(candidate));
}

/** What to tell a person whose machine has no nats-server. */
export const NATS_INSTALL_HINT =
  'nats-server is not installed. On Debian or Ubuntu run `sudo apt-get update && sudo apt-get install -y nats-server`; ' +
  'elsewhere install NATS Server 2.9 or newer and put it on PATH (or set SKEIN_NATS_SERVER to its path).';

/** Finds nats-server, installing Debian's package when running as root with apt-get; throws with a hint otherwise. */
export function ensureNatsServer(log: (line: string) => void): string {
  const found = findNatsServer();
  if (found) return found;
  const configured = process.env['SKEIN_NATS_SERVER'];
  if (configured) throw new SkeinError('ERR_INTERNAL', `SKEIN_NATS_SERVER is set to ${configured}, which does not exist. ${NATS_INSTALL_HINT}`);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && existsSync('/usr/bin/apt-get')) {
    log('nats-server not found; installing Debian package nats-server');
    const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    const install = update.status === 0 ? spawnSync('apt-get', ['install', '-y', '-qq', 'nats-server'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }) : update;
    const installed = findNatsServer();
    if (install.status === 0 && installed) return installed;
  }
  throw new SkeinError('ERR_INTERNAL', NATS_INSTALL_HINT);
}

/** Settings of a local NATS server with JetStream and mutual TLS. */
export interface NatsServerSettings {
  dir: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  ca: KeyPair;
  extraHosts: string[];
}

/** Writes the config, store folder and serving certificate; returns the config path. */
export function writeNatsConfig(settings: NatsServerSettings): string {
  const { dir, host, port, ca, extraHosts } = settings;
  mkdirSync(join(dir, 'jetstream'), { recursive: true });
  const serving = issueServerCertificate(ca, 'skein-nats', [...localAddresses(), ...extraHosts, host], 365 * 24 * 3_600_000);
  writeFileSync(join(dir, 'server.crt'), serving.certPem);
  writeFileSync(join(dir, 'server.key'), serving.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'ca.crt'), ca.certPem);
  const config = [
    `# Written by skein. JetStream on; every client must present a certificate from the Skein CA.`,
    `host: "${host}"`,
    `port: ${port === 0 ? -1 : port}`,
    `max_payload: 8MB`,
    `jetstream {`,
    `  store_dir: "${join(dir, 'jetstream')}"`,
    `}`,
    `tls {`,
    `  cert_file: "${join(dir, 'server.crt')}"`,
    `  key_file: "${join(dir, 'server.key')}"`,
    `  ca_file: "${join(dir, 'ca.crt')}"`,
    `  verify: true`,
    `  timeout: 5`,
    `}`,
    '',
  ].join('\n');
  const path = join(dir, 'nats.conf');
  writeFileSync(path, config);
  return path;
}

/** A running nats-server and the port it bound. */
export interface NatsProcess {
  child: ChildProcess;
  port: number;
}

/** Starts nats-server with `configPath`; resolves with its client port once it is ready. */
export function startNatsServer(binary: string, configPath: string, options: { detached?: boolean; onLine?: (line: string) => void } = {}): Promise<NatsProcess> {
  const child = spawn(binary, ['-c', configPath], { stdio: ['ignore', 'ignore', 'pipe'], detached: options.detached ?? false });
  return new Promise((resolve, reject) => {
    let port = 0;
    let buffered = '';
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        options.onLine?.(line);
        const listening = /Listening for client connections on .*:(\d+)\s*$/.exec(line);
        if (listening) port = Number(listening[1]);
        if (/Server is ready/.test(line)) resolve({ child, port });
        if (/\[FTL\]|\[ERR\]/.test(line) && port === 0) reject(new SkeinError('ERR_INTERNAL', `nats-server failed: ${line}`));
      }
    };
    child.stderr?.on('data', onData);
    child.once('error', (error) => reject(new SkeinError('ERR_INTERNAL', `cannot start ${binary}: ${error.message}`, { cause: error })));
    child.once('exit', (code) => reject(new SkeinError('ERR_INTERNAL', `nats-server exited with code ${String(code)} before it was ready`)));
  });
}
