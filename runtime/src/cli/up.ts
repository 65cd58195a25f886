import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseFlags, portFlag, sizeFlag, UsageError } from './args.js';
import { initCa, readCa, skeinHome, caPaths, logger, parseDuration, formatDuration, DEFAULT_TELEMETRY_RETENTION, configureTelemetryStream, type TelemetryRetention } from '@skein/core';
import { ensureNatsServer, startNatsServer, writeNatsConfig, type NatsProcess } from '../control/nats-server.js';
import { startPlacementProcess, type PlacementProcess } from '../control/placement-process.js';
import { startSentryProcess, type SentryProcess } from '../control/sentry-process.js';
import { Supervisor, type SupervisedProcess, type SupervisorEvents } from '../control/supervisor.js';
import { sentryOptionsFrom } from './sentry.js';
import { announceReady, onShutdown, stopChild } from './ready.js';
import { readControlPlane, removeControlPlaneRecord, waitForControlPlane, writeControlPlaneRecord, type ControlPlaneRecord } from './control-plane.js';

export { runningControlPlane, type ControlPlaneRecord } from './control-plane.js';

const log = logger('up');

/** How long a second `skein up` waits for one that is still starting. */
const OTHER_UP_TIMEOUT_MS = 120_000;

function printAddresses(record: ControlPlaneRecord, already: boolean): void {
  const pid = (value: number | undefined): string => (value === undefined ? '' : ` (pid ${value})`);
  process.stdout.write(
    `${already ? 'The Skein control plane is already running' : 'Skein control plane is up'} (pid ${record.pid}):\n` +
      `  NATS (JetStream, mTLS)  ${record.natsUrl ?? ''}${pid(record.natsPid)}\n` +
      `  sentry                  ${record.sentryAddress ?? ''}${pid(record.sentryPid)}\n` +
      (record.placementAddress ? `  placement (actors)      ${record.placementAddress}${pid(record.placementPid)}\n` : '') +
      `  trust bundle            ${record.trustBundle}\n` +
      (already ? '' : `NATS, the sentry and placement are restarted if they exit.\nStart an app with: skein run --app-id myapp --app-port 8080 -- <command>\nPress Ctrl-C to stop.\n`),
  );
}

/** How a process ended, in words. */
function exitText(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `signal ${signal}` : `code ${String(code)}`;
}

/**
 * What `skein up` says when a supervised process exits, comes back, or cannot: a line on its output for the
 * person watching, and a log record for scripts.
 */
function supervisionEvents<T extends SupervisedProcess>(consequence: string, onRestarted: (started: T) => void): SupervisorEvents<T> {
  return {
    exited: ({ name, pid, code, signal, restartInMs }) => {
      process.stdout.write(`${name} (pid ${String(pid)}) exited with ${exitText(code, signal)}: ${consequence}; restarting it in ${formatDuration(restartInMs)}\n`);
      log.warn('control-plane process exited', { process: name, pid, code, signal, restartInMs });
    },
    restarted: (name, started) => {
      onRestarted(started);
      process.stdout.write(`${name} restarted (pid ${String(started.child.pid)})\n`);
      log.info('control-plane process restarted', { process: name, pid: started.child.pid });
    },
    restartFailed: (name, reason, restartInMs) => {
      process.stdout.write(`${name} could not be restarted: ${reason}; trying again in ${formatDuration(restartInMs)}\n`);
      log.error('control-plane process restart failed', { process: name, reason, restartInMs });
    },
  };
}

/** The port at the end of `host:port`. */
function portOf(address: string): number {
  return Number(/:(\d+)$/.exec(address)?.[1] ?? 0);
}

/**
 * `skein up`: NATS with JetStream and mTLS, the sentry and placement, in the foreground, each restarted with
 * backoff when it exits. Idempotent: a second `skein up` for the same home reports the first (waiting for it if
 * it is still starting).
 */
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
  const existing = readControlPlane(home);
  if (existing.kind === 'starting') {
    process.stdout.write(`skein up (pid ${existing.record.pid}) is already starting the control plane; waiting until it is ready\n`);
    const record = await waitForControlPlane(home, { timeoutMs: OTHER_UP_TIMEOUT_MS, onWaiting: () => undefined });
    printAddresses(record, true);
    announceReady('control-plane', { ...record, already: true });
    return;
  }
  if (existing.kind === 'ready') {
    printAddresses(existing.record, true);
    announceReady('control-plane', { ...existing.record, already: true });
    return;
  }
  const created = initCa(home, flags['trust-domain'] ?? 'public');
  if (created.created) process.stdout.write(`Created a development CA in ${created.paths.dir}\n`);
  const ca = readCa(home);
  // Checked here, so a bad flag fails before anything starts rather than inside the sentry's process.
  const sentryOptions = sentryOptionsFrom({ ...flags, host, port: flags['sentry-port'] }, 50003);

  // Written at once, so a `skein run` started beside this one waits for it instead of running without it.
  let record: ControlPlaneRecord = { pid: process.pid, state: 'starting', trustBundle: caPaths(home).bundle };
  let stopping = false;
  const update = (fields: Partial<ControlPlaneRecord>): void => {
    record = { ...record, ...fields };
    if (!stopping) writeControlPlaneRecord(home, record);
  };
  update({});
  const supervisors: Array<{ hold(): void; stop(): Promise<void> }> = [];
  const stopAll = async (): Promise<void> => {
    stopping = true;
    // All at once, before any is stopped: a child that exits meanwhile (Ctrl-C reaches it too) is not restarted.
    for (const supervisor of supervisors) supervisor.hold();
    // Placement and the sentry first: they are NATS clients.
    for (const supervisor of [...supervisors].reverse()) await supervisor.stop();
    removeControlPlaneRecord(home);
  };
  onShutdown(async () => {
    await stopAll();
    process.stdout.write('Skein control plane stopped.\n');
  });
  const terminate = (started: SupervisedProcess): Promise<void> => stopChild(started.child);

  try {
    const binary = ensureNatsServer((line) => process.stdout.write(`${line}\n`));
    const natsDir = join(home, 'nats');
    mkdirSync(natsDir, { recursive: true });
    let natsPort = portFlag('nats-port', flags['nats-port'], 4222);
    const nats = new Supervisor<NatsProcess>({
      name: 'nats-server',
      // A restart binds the port the first start did, so every client reconnects to the same URL.
      launch: () => startNatsServer(binary, writeNatsConfig({ dir: natsDir, host, port: natsPort, ca, extraHosts: flags['advertise-address'] ?? [] }), { onLine: (line) => log.debug(line) }),
      terminate,
      events: supervisionEvents('sidecars lose discovery, messaging and state until it is back', (started) => update({ natsPid: started.child.pid })),
    });
    supervisors.push(nats);
    natsPort = (await nats.start()).port;
    const advertised = flags['advertise-address']?.[0] ?? host;
    const localNatsUrl = `tls://${host}:${natsPort}`;
    await configureTelemetryStream(localNatsUrl, ca, retention);
    update({ natsUrl: `tls://${advertised}:${natsPort}`, natsPid: nats.current?.child.pid });

    let sentryPort = sentryOptions.port;
    const sentry = new Supervisor<SentryProcess>({
      name: 'sentry',
      launch: () =>
        startSentryProcess({
          home,
          host,
          port: sentryPort,
          mode: sentryOptions.mode,
          workloadCertTtl: flags['workload-cert-ttl'],
          advertiseAddresses: flags['advertise-address'] ?? [],
          insecureDevelopment: flags['insecure-development'] ?? false,
          onLine: (line) => log.debug(line),
        }),
      terminate,
      events: supervisionEvents('sidecars cannot get or renew certificates until it is back', (started) => update({ sentryPid: started.child.pid })),
    });
    supervisors.push(sentry);
    sentryPort = (await sentry.start()).port;
    update({ sentryAddress: `${advertised}:${sentryPort}`, sentryPid: sentry.current?.child.pid });

    let placementPort = portFlag('placement-port', flags['placement-port'], 50005);
    // The advertised port is only known once bound: a fixed port is advertised as given, and a restart advertises
    // the address the first start announced.
    let advertiseAddress = advertised !== host && placementPort !== 0 ? `${advertised}:${placementPort}` : undefined;
    const placement = new Supervisor<PlacementProcess>({
      name: 'placement',
      launch: () =>
        startPlacementProcess({
          home,
          host,
          port: placementPort,
          natsUrl: localNatsUrl,
          ...(advertiseAddress ? { advertiseAddress } : {}),
          onLine: (line) => log.debug(line),
        }),
      terminate,
      events: supervisionEvents('actors cannot be placed or rebalanced until it is back', (started) => update({ placementPid: started.child.pid })),
    });
    supervisors.push(placement);
    const placed = await placement.start();
    advertiseAddress = placed.address;
    placementPort = portOf(placed.address) || placementPort;
    update({ state: 'ready', placementAddress: placed.address, placementPid: placed.child.pid });
  } catch (error) {
    // Ctrl-C while starting: the shutdown handler stops what started and exits.
    if (stopping) return;
    await stopAll();
    throw error;
  }
  printAddresses(record, false);
  announceReady('control-plane', { ...record });
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
