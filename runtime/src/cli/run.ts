import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFlags, portFlag, sizeFlag, UsageError } from './args.js';
import { Sidecar, type SidecarOptions } from '../sidecar.js';
import { caPaths, skeinHome, isValidAppId, isValidNamespace, configureLogging, logger, parseDuration, type LogLevel } from '@skein/core';
import { loadRunTemplate } from '../config/load.js';
import { loadSidecarConfig } from '../config/compile.js';
import { readControlPlane, runningControlPlane, waitForControlPlane, type ReadyControlPlane } from './control-plane.js';
import { writeRunRecord } from './run-record.js';
import { parsePlacementAddresses } from '../actors/placement-client.js';
import { announceReady, onShutdown } from './ready.js';
import { appEnvironment } from './app-environment.js';
import type { RunTemplateApp, RunTemplateCommon } from '../config/types.js';

const log = logger('run');
const LOG_LEVELS = ['debug', 'info', 'warn', 'error'];

const RUN_FLAGS = {
  'app-id': { type: 'string', short: 'a' },
  'app-port': { type: 'string', short: 'p' },
  'dapr-http-port': { type: 'string', short: 'H' },
  'dapr-grpc-port': { type: 'string', short: 'G' },
  'dapr-internal-grpc-port': { type: 'string', short: 'I' },
  'resources-path': { type: 'string', multiple: true, short: 'd' },
  config: { type: 'string', short: 'c' },
  namespace: { type: 'string' },
  'nats-url': { type: 'string' },
  'sentry-address': { type: 'string' },
  'placement-address': { type: 'string' },
  'advertise-address': { type: 'string' },
  'trust-anchors-file': { type: 'string' },
  'join-token': { type: 'string' },
  'max-body-size': { type: 'string' },
  'workflow-work-item-timeout': { type: 'string' },
  'log-level': { type: 'string' },
  'log-as-json': { type: 'boolean' },
  home: { type: 'string' },
  'run-file': { type: 'string', short: 'f' },
  'metrics-port': { type: 'string' },
  'metrics-address': { type: 'string' },
  'control-plane-timeout': { type: 'string' },
} as const;

/** Splits `skein run` arguments at the first `--`: flags before, the app's command after. */
export function splitAppCommand(argv: string[]): { flags: string[]; command: string[] } {
  const at = argv.indexOf('--');
  return at === -1 ? { flags: argv, command: [] } : { flags: argv.slice(0, at), command: argv.slice(at + 1) };
}

/** `skein run`: one sidecar (and its app), or every app of a multi-app run file with `-f`. */
export async function runCommand(argv: string[]): Promise<void> {
  const { flags: flagArgs, command } = splitAppCommand(argv);
  const flags = parseFlags(flagArgs, RUN_FLAGS);
  if (flags['run-file']) {
    if (command.length > 0) throw new UsageError('-f runs the commands of the run file; do not also give one after --');
    await runMany(resolve(flags['run-file']));
    return;
  }
  const level = flags['log-level'] ?? 'info';
  if (!LOG_LEVELS.includes(level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, not "${level}"`);
  configureLogging({ level: level as LogLevel, ...(flags['log-as-json'] ? { json: true } : {}) });
  const options = await sidecarOptionsFrom(flags);
  const sidecar = new Sidecar(options);
  const ports = await sidecar.start();
  let app: ChildProcess | undefined;
  if (command.length > 0) app = startApp(command, options, ports.http, ports.grpc);
  // Recorded for `skein list` and `skein stop`; gone with this process (however it exits, short of SIGKILL).
  const recordFile = writeRunRecord(flags.home ?? skeinHome(), {
    appId: options.appId,
    namespace: options.namespace,
    pid: process.pid,
    ...(app?.pid === undefined ? {} : { appPid: app.pid }),
    command,
    ...(options.appPort === undefined ? {} : { appPort: options.appPort }),
    httpPort: ports.http,
    grpcPort: ports.grpc,
    internalPort: ports.internal,
    ...(ports.metrics ? { metricsPort: ports.metrics } : {}),
    startedAt: new Date().toISOString(),
  });
  process.once('exit', () => rmSync(recordFile, { force: true }));
  const stop = async (): Promise<void> => {
    if (app && app.exitCode === null && app.signalCode === null && app.pid) {
      const exited = new Promise((done) => app?.once('exit', done));
      killGroup(app.pid, 'SIGTERM');
      const timer = setTimeout(() => app?.pid && killGroup(app.pid, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await sidecar.stop();
  };
  // Actors are handed over while the app still answers, so running turns finish and no call is cut.
  onShutdown(() => sidecar.drain().then(stop));
  app?.once('exit', (code, signal) => {
    log.info('app exited; stopping the sidecar', { appId: options.appId, code, signal });
    void sidecar.stop().then(() => process.exit(code ?? 1));
  });
  await sidecar.waitForAppAndRegister();
  announceReady('sidecar', { appId: options.appId, namespace: options.namespace, httpPort: ports.http, grpcPort: ports.grpc, internalPort: ports.internal, metricsPort: ports.metrics, instanceId: sidecar.instanceId });
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function startApp(command: string[], options: SidecarOptions, httpPort: number, grpcPort: number): ChildProcess {
  const [file, ...args] = command as [string, ...string[]];
  // The sidecar's secrets (its join token, every envRef value) stay with the sidecar.
  const secrets = new Set(options.config.envRefNames);
  const env = appEnvironment(process.env, secrets, {
    APP_ID: options.appId,
    DAPR_HTTP_PORT: String(httpPort),
    DAPR_HTTP_ENDPOINT: `http://127.0.0.1:${httpPort}`,
    DAPR_GRPC_PORT: String(grpcPort),
    DAPR_GRPC_ENDPOINT: `http://127.0.0.1:${grpcPort}`,
    ...(options.appPort === undefined ? {} : { APP_PORT: String(options.appPort) }),
    ...(options.apiToken ? { DAPR_API_TOKEN: options.apiToken } : {}),
  });
  // Its own process group, so stopping the app stops whatever it started too.
  const child = spawn(file, args, { stdio: 'inherit', env, detached: true });
  child.once('error', (error) => {
    log.error('the app could not be started', { command: file, reason: error.message });
    process.exitCode = 1;
  });
  return child;
}

type RunFlags = ReturnType<typeof parseFlags<typeof RUN_FLAGS>>;

/** `--placement-address` (or the running `skein up`'s placement); none means no actor runtime. */
function placementAddressesFrom(text: string | undefined): string[] {
  if (text === undefined) return [];
  try {
    return parsePlacementAddresses(text);
  } catch (error) {
    throw new UsageError(`--placement-address: ${(error as Error).message}; expected host:port[,host:port]`);
  }
}

/** `--workflow-work-item-timeout`: a positive duration (a worker is never given zero time to answer). */
function workItemTimeoutFrom(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch {
    ms = 0;
  }
  if (ms <= 0) throw new UsageError(`--workflow-work-item-timeout must be a positive duration such as 60s or 500ms, not "${text}"`);
  return ms;
}

/** How long `skein run` waits for the control plane of `skein up` by default. */
const CONTROL_PLANE_TIMEOUT_MS = 60_000;

/**
 * The control plane of `home` that `skein run` uses: when `--nats-url` or `--sentry-address` is not given, the one
 * `skein up` runs, waited for while it starts (up to `--control-plane-timeout`); when both are, the running one
 * (if any) only lends its placement address.
 */
async function controlPlaneFor(flags: RunFlags, home: string): Promise<ReadyControlPlane | undefined> {
  if (flags['nats-url'] !== undefined && flags['sentry-address'] !== undefined) return runningControlPlane(home);
  let timeoutMs = CONTROL_PLANE_TIMEOUT_MS;
  if (flags['control-plane-timeout'] !== undefined) {
    try {
      timeoutMs = parseDuration(flags['control-plane-timeout']);
    } catch {
      throw new UsageError(`--control-plane-timeout must be a duration such as 60s or 2m, not "${flags['control-plane-timeout']}"`);
    }
  }
  if (readControlPlane(home).kind === 'ready') return runningControlPlane(home);
  return waitForControlPlane(home, {
    timeoutMs,
    onWaiting: (message) => log.warn(message),
  });
}

/**
 * Turns validated flags into sidecar options; reads the Configuration and resources (failing on any invalid one)
 * before it waits for the control plane.
 */
export async function sidecarOptionsFrom(flags: RunFlags): Promise<SidecarOptions> {
  const appId = flags['app-id'];
  if (!appId) throw new UsageError('--app-id is required');
  if (!isValidAppId(appId)) throw new UsageError(`--app-id "${appId}" is not a valid App ID (letters, digits, '-', '_'; at most 63)`);
  const namespace = flags.namespace ?? process.env['NAMESPACE'] ?? 'default';
  if (!isValidNamespace(namespace)) throw new UsageError(`--namespace "${namespace}" is not a valid namespace (a DNS label)`);
  const appPort = flags['app-port'] === undefined ? undefined : portFlag('app-port', flags['app-port'], 0);
  if (appPort === 0) throw new UsageError('--app-port must be the port the app listens on, not 0');
  const home = flags.home ?? skeinHome();
  const advertise = flags['advertise-address'];
  const configFile = flags.config ? resolve(flags.config) : undefined;
  const resourcePaths = (flags['resources-path'] ?? []).map((path) => resolve(path));
  // Validated and compiled here, at the edge: a bad resource stops `skein run` before anything starts (or is waited
  // for). Reloads read the files again and compile everything, the same way, before anything is swapped in.
  const files = { configFile, resourcePaths };
  const config = loadSidecarConfig({ appId, namespace }, files);
  // Every flag is checked before the wait too, so a mistyped one fails at once.
  const httpPort = portFlag('dapr-http-port', flags['dapr-http-port'], 0);
  const grpcPort = portFlag('dapr-grpc-port', flags['dapr-grpc-port'], 0);
  const internalPort = portFlag('dapr-internal-grpc-port', flags['dapr-internal-grpc-port'], 0);
  const metricsPort = portFlag('metrics-port', flags['metrics-port'], 0);
  const maxBodyBytes = sizeFlag('max-body-size', flags['max-body-size'], 4 * 1024 * 1024);
  const placementFlag = flags['placement-address'] === undefined ? undefined : placementAddressesFrom(flags['placement-address']);
  const controlPlane = await controlPlaneFor(flags, home);
  const trustFile = flags['trust-anchors-file'] ?? controlPlane?.trustBundle ?? caPaths(home).bundle;
  let trustAnchorsPem: string;
  try {
    trustAnchorsPem = readFileSync(trustFile, 'utf8');
  } catch {
    throw new UsageError(`cannot read the trust anchors at ${trustFile}: run \`skein up\` (or \`skein init\`) first, or pass --trust-anchors-file`);
  }
  return {
    appId,
    namespace,
    appPort,
    apiHost: '127.0.0.1',
    httpPort,
    grpcPort,
    internalHost: advertise ? '0.0.0.0' : '127.0.0.1',
    internalPort,
    advertiseAddress: advertise ?? '127.0.0.1',
    natsUrl: flags['nats-url'] ?? controlPlane?.natsUrl ?? 'tls://127.0.0.1:4222',
    sentryAddress: flags['sentry-address'] ?? controlPlane?.sentryAddress ?? '127.0.0.1:50003',
    trustAnchorsPem,
    joinToken: flags['join-token'] ?? process.env['SKEIN_JOIN_TOKEN'],
    config,
    reloadConfig: () => loadSidecarConfig({ appId, namespace }, files),
    watchPaths: [...(configFile ? [configFile] : []), ...resourcePaths],
    maxBodyBytes,
    apiToken: process.env['DAPR_API_TOKEN'] || undefined,
    appApiToken: process.env['APP_API_TOKEN'] || undefined,
    heartbeatMs: 1000,
    instanceTtlMs: 5000,
    placementAddresses: placementFlag ?? placementAddressesFrom(controlPlane?.placementAddress),
    workflowWorkItemTimeoutMs: workItemTimeoutFrom(flags['workflow-work-item-timeout']),
    metricsPort,
    metricsAddress: flags['metrics-address'] ?? '127.0.0.1',
  };
}

/** The `skein run` arguments for one app of a run file (paths resolved against the file's folder). */
export function appArguments(app: RunTemplateApp, common: RunTemplateCommon | undefined, base: string): { args: string[]; cwd: string; env: NodeJS.ProcessEnv } {
  const pick = <K extends keyof RunTemplateCommon>(key: K): RunTemplateCommon[K] => app[key] ?? common?.[key];
  const args = ['--app-id', app.appID];
  if (app.appPort !== undefined) args.push('--app-port', String(app.appPort));
  if (app.daprHTTPPort !== undefined) args.push('--dapr-http-port', String(app.daprHTTPPort));
  if (app.daprGRPCPort !== undefined) args.push('--dapr-grpc-port', String(app.daprGRPCPort));
  const resourcePaths = [...(pick('resourcesPaths') ?? []), ...(pick('resourcesPath') ? [pick('resourcesPath') as string] : [])];
  for (const path of resourcePaths) args.push('--resources-path', resolve(base, path));
  const config = pick('configFilePath');
  if (config) args.push('--config', resolve(base, config));
  const namespace = pick('namespace');
  if (namespace) args.push('--namespace', namespace);
  const level = pick('logLevel');
  if (level) args.push('--log-level', level);
  if (app.command) args.push('--', ...app.command);
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries({ ...(common?.env ?? {}), ...(app.env ?? {}) })) env[key] = String(value);
  return { args, cwd: resolve(base, app.appDirPath ?? '.'), env };
}

/** Runs every app of a run file, each under its own `skein run`, prefixing their output; stops them all together. */
async function runMany(file: string): Promise<void> {
  const template = loadRunTemplate(file);
  const base = dirname(file);
  const cli = fileURLToPath(new URL('../cli.js', import.meta.url));
  const children: ChildProcess[] = [];
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    stopping = true;
    await Promise.all(
      children.map((child) => {
        if (child.exitCode !== null || child.signalCode !== null || !child.pid) return Promise.resolve();
        const exited = new Promise((done) => child.once('exit', done));
        child.kill('SIGTERM');
        return exited;
      }),
    );
  };
  onShutdown(stopAll);
  for (const app of template.apps) {
    const { args, cwd, env } = appArguments(app, template.common, base);
    const child = spawn(process.execPath, [cli, 'run', ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const prefix = `== APP - ${app.appID} == `;
    for (const stream of [child.stdout, child.stderr]) {
      let rest = '';
      stream?.on('data', (chunk: Buffer) => {
        const lines = (rest + chunk.toString('utf8')).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) process.stdout.write(`${prefix}${line}\n`);
      });
    }
    child.once('exit', (code) => {
      log.info('app stopped', { appId: app.appID, code });
      if (!stopping && children.every((other) => other.exitCode !== null)) process.exit(code ?? 0);
    });
    children.push(child);
  }
}
