import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFlags, portFlag, sizeFlag, UsageError } from './args.js';
import { initCa, readCa, skeinHome, caPaths, logger, parseDuration, DEFAULT_TELEMETRY_RETENTION, configureTelemetryStream, type TelemetryRetention } from '@skein/core';
import { Sentry } from '../identity/sentry.js';
import { ensureNatsServer, startNatsServer, writeNatsConfig } from '../control/nats-server.js';
import { startPlacementProcess } from '../control/placement-process.js';
import { sentryOptionsFrom } from './sentry.js';
import { announceReady, onShutdown, stopChild } from './ready.js';

const log = logger('up');

/** What a running `skein up` records so a second `skein up` (and `skein run`) can find it. */
export interface ControlPlaneRecord {
  pid: number;
  natsUrl: string;
  sentryAddress: string;
  /** Placement (actors); absent in records of older versions. */
  placementAddress?: string;
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
      (record.placementAddress ? `  placement (actors)      ${record.placementAddress}\n` : '') +
      `  trust bundle            ${record.trustBundle}\n` +
      (already ? '' : `Start an app with: skein run --app-id myapp --app-port 8080 -- <command>\nPress Ctrl-C to stop.\n`),
  );
}

/** `skein up`: NATS with JetStream and mTLS, sentry and placement, in the foreground. Idempotent. */
export async function upCommand(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, {
    home: { type: 'string' },
    host: { type: 'string' },
    'nats-port': { type: 'string' },
    'sentry-port': { type: 'string' },
    'placement-port': { type: 'string' },
    'trust-domain': { type: 'string', default: 'public' },
    mode: { type: 'string' },
    'workload-cert-ttl': { type: 'string' },
    'advertise-address': { type: 'string', multiple: true },
    'insecure-development': { type: 'boolean' },
    'telemetry-max-age': { type: 'string' },
    'telemetry-max-bytes': { type: 'string' },
  });
  const retention = telemetryRetentionFrom(flags['telemetry-max-age'], flags['telemetry-max-bytes']);
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
  try {
    await configureTelemetryStream(`tls://${host}:${nats.port}`, ca, retention);
  } catch (error) {
    nats.child.kill('SIGTERM');
    throw error;
  }

  const sentry = new Sentry(sentryOptionsFrom({ ...flags, host, port: flags['sentry-port'] }, 50003));
  let sentryPort: number;
  try {
    sentryPort = await sentry.start();
  } catch (error) {
    nats.child.kill('SIGTERM');
    throw error;
  }
  const placementPort = portFlag('placement-port', flags['placement-port'], 50005);
  let placement;
  try {
    placement = await startPlacementProcess({
      home,
      host,
      port: placementPort,
      natsUrl: `tls://${host}:${nats.port}`,
      // The advertised port is only known once bound; a fixed port is advertised as given.
      ...(advertised !== host && placementPort !== 0 ? { advertiseAddress: `${advertised}:${placementPort}` } : {}),
      onLine: (line) => log.debug(line),
    });
  } catch (error) {
    await sentry.stop();
    nats.child.kill('SIGTERM');
    throw error;
  }
  const placementChild = placement.child;
  const onPlacementExit = (code: number | null): void => log.error('placement exited; actors cannot rebalance until skein up is restarted', { code });
  placementChild.once('exit', onPlacementExit);
  const record: ControlPlaneRecord = { pid: process.pid, natsUrl, sentryAddress: `${advertised}:${sentryPort}`, placementAddress: placement.address, trustBundle: caPaths(home).bundle };
  writeFileSync(join(home, 'up.json'), JSON.stringify(record, null, 2));

  const onNatsExit = (code: number | null): void => {
    log.error('nats-server exited; stopping the control plane', { code });
    placementChild.kill('SIGTERM');
    void sentry.stop().then(() => {
      rmSync(join(home, 'up.json'), { force: true });
      process.exit(1);
    });
  };
  nats.child.once('exit', onNatsExit);
  const stop = async (): Promise<void> => {
    nats.child.off('exit', onNatsExit);
    placementChild.off('exit', onPlacementExit);
    await stopChild(placementChild);
    await sentry.stop();
    await stopChild(nats.child);
    rmSync(join(home, 'up.json'), { force: true });
    process.stdout.write('Skein control plane stopped.\n');
  };
  onShutdown(stop);
  printAddresses(record, false);
  announceReady('control-plane', { ...record, natsPid: nats.child.pid, placementPid: placementChild.pid });
}

/** `--telemetry-max-age` and `--telemetry-max-bytes`: how much telemetry the stream keeps. */
function telemetryRetentionFrom(maxAge: string | undefined, maxBytes: string | undefined): TelemetryRetention {
  let maxAgeMs = DEFAULT_TELEMETRY_RETENTION.maxAgeMs;
  if (maxAge !== undefined) {
    try {
      maxAgeMs = parseDuration(maxAge);
    } catch {
      throw new UsageError(`--telemetry-max-age must be a duration like 24h or 90m, not "${maxAge}"`);
    }
    if (maxAgeMs < 1000) throw new UsageError(`--telemetry-max-age must be at least 1s, not "${maxAge}"`);
  }
  const bytes = sizeFlag('telemetry-max-bytes', maxBytes, DEFAULT_TELEMETRY_RETENTION.maxBytes);
  if (bytes < 1024) throw new UsageError(`--telemetry-max-bytes must be at least 1Ki, not "${maxBytes ?? ''}"`);
  return { maxAgeMs, maxBytes: bytes };
}
