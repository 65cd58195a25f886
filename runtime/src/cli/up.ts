import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFlags, portFlag } from './args.js';
import { initCa, readCa, skeinHome, caPaths } from '../identity/home.js';
import { Sentry } from '../identity/sentry.js';
import { ensureNatsServer, startNatsServer, writeNatsConfig } from '../control/nats-server.js';
import { sentryOptionsFrom } from './sentry.js';
import { announceReady, onShutdown } from './ready.js';
import { logger } from '../logger.js';

const log = logger('up');

/** What a running `skein up` records so a second `skein up` (and `skein run`) can find it. */
export interface ControlPlaneRecord {
  pid: number;
  natsUrl: string;
  sentryAddress: string;
  trustBundle: string;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The control plane recorded in `home` if its process still runs. */
export function runningControlPlane(home: string): ControlPlaneRecord | undefined {
  const file = join(home, 'up.json');
  if (!existsSync(file)) return undefined;
  try {
    const record = JSON.parse(readFileSync(file, 'utf8')) as ControlPlaneRecord;
    return isAlive(record.pid) ? record : undefined;
  } catch {
    return undefined;
  }
}

function printAddresses(record: ControlPlaneRecord, already: boolean): void {
  process.stdout.write(
    `${already ? 'The Skein control plane is already running' : 'Skein control plane is up'} (pid ${record.pid}):\n` +
      `  NATS (JetStream, mTLS)  ${record.natsUrl}\n` +
      `  sentry                  ${record.sentryAddress}\n` +
      `  trust bundle            ${record.trustBundle}\n` +
      (already ? '' : `Start an app with: skein run --app-id myapp --app-port 8080 -- <command>\nPress Ctrl-C to stop.\n`),
  );
}

/** `skein up`: NATS with JetStream and mTLS, and sentry, in the foreground. Idempotent. */
export async function upCommand(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, {
    home: { type: 'string' },
    host: { type: 'string' },
    'nats-port': { type: 'string' },
    'sentry-port': { type: 'string' },
    'trust-domain': { type: 'string', default: 'public' },
    mode: { type: 'string' },
    'workload-cert-ttl': { type: 'string' },
    'advertise-address': { type: 'string', multiple: true },
  });
  const home = flags.home ?? skeinHome();
  const host = flags.host ?? '127.0.0.1';
  const already = runningControlPlane(home);
  if (already) {
    printAddresses(already, true);
    announceReady('control-plane', { ...already, already: true });
    return;
  }
  const created = initCa(home, flags['trust-domain'] ?? 'public');
  if (created.created) process.stdout.write(`Created a development CA in ${created.paths.dir}\n`);
  const ca = readCa(home);
  const binary = ensureNatsServer((line) => process.stdout.write(`${line}\n`));

  const natsDir = join(home, 'nats');
  mkdirSync(natsDir, { recursive: true });
  const config = writeNatsConfig({ dir: natsDir, host, port: portFlag('nats-port', flags['nats-port'], 4222), ca, extraHosts: flags['advertise-address'] ?? [] });
  const nats = await startNatsServer(binary, config, { onLine: (line) => log.debug(line) });
  const advertised = flags['advertise-address']?.[0] ?? host;
  const natsUrl = `tls://${advertised}:${nats.port}`;

  const sentry = new Sentry(sentryOptionsFrom({ ...flags, host, port: flags['sentry-port'] }, 50003));
  let sentryPort: number;
  try {
    sentryPort = await sentry.start();
  } catch (error) {
    nats.child.kill('SIGTERM');
    throw error;
  }
  const record: ControlPlaneRecord = { pid: process.pid, natsUrl, sentryAddress: `${advertised}:${sentryPort}`, trustBundle: caPaths(home).bundle };
  writeFileSync(join(home, 'up.json'), JSON.stringify(record, null, 2));

  const onNatsExit = (code: number | null): void => {
    log.error('nats-server exited; stopping the control plane', { code });
    void sentry.stop().then(() => {
      rmSync(join(home, 'up.json'), { force: true });
      process.exit(1);
    });
  };
  nats.child.once('exit', onNatsExit);
  const stop = async (): Promise<void> => {
    nats.child.off('exit', onNatsExit);
    await sentry.stop();
    const exited = new Promise((resolve) => nats.child.once('exit', resolve));
    nats.child.kill('SIGTERM');
    await exited;
    rmSync(join(home, 'up.json'), { force: true });
    process.stdout.write('Skein control plane stopped.\n');
  };
  onShutdown(stop);
  printAddresses(record, false);
  announceReady('control-plane', { ...record, natsPid: nats.child.pid });
}
