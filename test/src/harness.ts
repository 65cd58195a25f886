import { mkdtempSync, mkdirSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findNatsServer, writeNatsConfig } from '@skein/runtime';
import { initCa, caPaths, readCa } from '@skein/core';
import { ManagedProcess, type LogRecord } from './process.js';

export { ManagedProcess, type LogRecord };

/** Path of the `skein` CLI of the built runtime. */
export const SKEIN_CLI = fileURLToPath(new URL('./cli.js', import.meta.resolve('@skein/runtime')));
/**
 * Path of the `skein-placement` bin, resolved when first needed (the test package builds before placement, which
 * uses this harness in its own tests).
 */
export function placementBin(): string {
  return fileURLToPath(new URL('./dist/src/main.js', import.meta.resolve('@skein/placement/package.json')));
}
/** Folder of the harness's own test apps (compiled). */
export const TEST_APPS = fileURLToPath(new URL('./apps/', import.meta.url));

/** A running nats-server with JetStream and mTLS. */
export interface NatsHandle {
  proc: ManagedProcess;
  url: string;
  port: number;
  dir: string;
  /** Stops it (SIGTERM) and starts it again on the same port, with the same store or (`wipe`) an empty one. */
  restart(options?: { wipe?: boolean }): Promise<void>;
  /** Stops it (SIGTERM), keeping its store and port for `start`. */
  stop(): Promise<void>;
  /** Starts it again after `stop`, on the same port with the same store. */
  start(): Promise<void>;
}

/** A running sidecar. */
export interface SidecarHandle {
  proc: ManagedProcess;
  appId: string;
  httpPort: number;
  internalPort: number;
  instanceId: string;
  /** `http://127.0.0.1:<httpPort>` */
  url: string;
}

/** A running test app. */
export interface AppHandle {
  proc: ManagedProcess;
  port: number;
}

/** Options of a sidecar started by the harness. */
export interface SidecarSpec {
  appId: string;
  appPort?: number;
  namespace?: string;
  args?: string[];
  /** The app's command line, after `--`. */
  command?: string[];
  env?: NodeJS.ProcessEnv;
  /** Run inside a network namespace (`ip netns exec`). */
  netns?: string;
  natsUrl?: string;
  sentryAddress?: string;
  /** Node options before the CLI script, such as `--cpu-prof` (which Node refuses in NODE_OPTIONS). */
  nodeArgs?: string[];
}

/**
 * The one harness every end-to-end test uses: real processes on port 0, each in its own process group, a temp
 * folder per harness, and `cleanup()` that kills every group and removes the folder. Nothing leaks.
 */
export class Harness {
  /** Harnesses not yet cleaned up; the root hook fails the run if any remain. */
  static readonly live = new Set<Harness>();

  readonly root: string;
  readonly home: string;
  readonly processes: ManagedProcess[] = [];
  /** Run first by `cleanup()`, newest first: things to close gracefully before every group is killed. */
  private readonly cleanups: (() => Promise<void>)[] = [];
  natsHandle: NatsHandle | undefined;
  sentryAddress: string | undefined;

  /** On Ctrl-C or SIGTERM the test run ends without its after-hooks: kill every group and remove every folder now. */
  private static guardInstalled = false;
  private static installInterruptGuard(): void {
    if (Harness.guardInstalled) return;
    Harness.guardInstalled = true;
    const onSignal = (signal: NodeJS.Signals): void => {
      for (const harness of Harness.live) {
        for (const proc of harness.processes) proc.signal('SIGKILL');
        rmSync(harness.root, { recursive: true, force: true });
      }
      process.kill(process.pid, signal);
    };
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => onSignal(signal));
  }

  constructor(trustDomain = 'public') {
    Harness.installInterruptGuard();
    this.root = mkdtempSync(join(tmpdir(), 'skein-test-'));
    this.home = join(this.root, 'skein-home');
    initCa(this.home, trustDomain);
    Harness.live.add(this);
  }

  /** A new folder inside the harness's temp root. */
  dir(name: string): string {
    const path = join(this.root, name);
    mkdirSync(path, { recursive: true });
    return path;
  }

  /** The CA bundle sidecars trust. */
  get trustBundle(): string {
    return caPaths(this.home).bundle;
  }

  get ca(): { certPem: string; keyPem: string } {
    return readCa(this.home);
  }

  /** Environment for every child: JSON logs, and HOME/XDG pointed into the temp root. */
  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    const home = this.dir('home');
    return { ...process.env, SKEIN_HOME: this.home, SKEIN_LOG_FORMAT: 'json', HOME: home, XDG_CONFIG_HOME: join(home, '.config'), XDG_CACHE_HOME: join(home, '.cache'), ...extra };
  }

  /** Starts any command in its own process group. */
  start(name: string, command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; netns?: string } = {}): ManagedProcess {
    const [file, argv] = options.netns ? ['ip', ['netns', 'exec', options.netns, command, ...args]] : [command, args];
    const proc = new ManagedProcess(name, file, argv, { env: this.env(options.env), cwd: options.cwd ?? this.root });
    this.processes.push(proc);
    return proc;
  }

  /** Runs `skein <args>`. */
  skein(name: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; netns?: string } = {}): ManagedProcess {
    return this.start(name, process.execPath, [SKEIN_CLI, ...args], options);
  }

  /** Starts nats-server with JetStream and mTLS (our CA) on a free port. */
  async nats(options: { host?: string; netns?: string; extraHosts?: string[] } = {}): Promise<NatsHandle> {
    const binary = findNatsServer();
    if (!binary) throw new Error('nats-server is not installed: run `npm test` (it installs it) or apt-get install nats-server');
    const dir = this.dir(`nats-${this.processes.length}`);
    const host = options.host ?? '127.0.0.1';
    const launch = async (port: number): Promise<{ proc: ManagedProcess; port: number }> => {
      const config = writeNatsConfig({ dir, host, port, ca: this.ca, extraHosts: options.extraHosts ?? [] });
      const proc = this.start('nats-server', binary, ['-c', config], options.netns ? { netns: options.netns } : {});
      const line = await proc.waitFor(/Listening for client connections on/);
      await proc.waitFor(/Server is ready/);
      return { proc, port: Number(/:(\d+)\s*$/.exec(line)?.[1]) };
    };
    const first = await launch(0);
    const handle: NatsHandle = {
      proc: first.proc,
      port: first.port,
      url: `tls://${host}:${first.port}`,
      dir,
      restart: async (restartOptions = {}) => {
        await handle.stop();
        if (restartOptions.wipe) rmSync(join(dir, 'jetstream'), { recursive: true, force: true });
        await handle.start();
      },
      stop: () => handle.proc.stop(),
      start: async () => {
        handle.proc = (await launch(handle.port)).proc;
      },
    };
    this.natsHandle = handle;
    return handle;
  }

  /** Starts `skein sentry` on a free port. */
  async sentry(args: string[] = [], options: { netns?: string } = {}): Promise<{ proc: ManagedProcess; address: string }> {
    const proc = this.skein('sentry', ['sentry', '--port', '0', '--home', this.home, ...args], options);
    const ready = await proc.waitForRecord('ready');
    const address = String(ready['address']);
    this.sentryAddress = address;
    return { proc, address };
  }

  /** Starts a placement replica on a free port against this harness's NATS; resolves once it serves. */
  async placement(id: string, args: string[] = []): Promise<{ proc: ManagedProcess; address: string }> {
    const natsUrl = this.natsHandle?.url;
    if (!natsUrl) throw new Error('start NATS before placement');
    const proc = this.start(`placement ${id}`, process.execPath, [placementBin(), '--port', '0', '--home', this.home, '--nats-url', natsUrl, '--id', id, ...args]);
    const ready = await proc.waitForRecord('ready');
    return { proc, address: String(ready['address']) };
  }

  /** NATS and sentry, the control plane every sidecar needs. */
  async controlPlane(sentryArgs: string[] = []): Promise<{ nats: NatsHandle; sentryAddress: string }> {
    const [nats, sentry] = await Promise.all([this.nats(), this.sentry(sentryArgs)]);
    return { nats, sentryAddress: sentry.address };
  }

  /** Starts `skein run` and waits until the sidecar is ready (registered, app listening). */
  async sidecar(spec: SidecarSpec): Promise<SidecarHandle> {
    const natsUrl = spec.natsUrl ?? this.natsHandle?.url;
    const sentryAddress = spec.sentryAddress ?? this.sentryAddress;
    if (!natsUrl || !sentryAddress) throw new Error('start the control plane before a sidecar');
    const args = ['run', '--app-id', spec.appId, '--nats-url', natsUrl, '--sentry-address', sentryAddress, '--trust-anchors-file', this.trustBundle];
    if (spec.appPort !== undefined) args.push('--app-port', String(spec.appPort));
    if (spec.namespace) args.push('--namespace', spec.namespace);
    args.push(...(spec.args ?? []));
    if (spec.command) args.push('--', ...spec.command);
    const options = { env: spec.env ?? {}, ...(spec.netns ? { netns: spec.netns } : {}) };
    const proc = this.start(`sidecar ${spec.appId}`, process.execPath, [...(spec.nodeArgs ?? []), SKEIN_CLI, ...args], options);
    const ready = await proc.waitForRecord('ready', { what: 'sidecar' });
    const httpPort = Number(ready['httpPort']);
    return { proc, appId: spec.appId, httpPort, internalPort: Number(ready['internalPort']), instanceId: String(ready['instanceId']), url: `http://127.0.0.1:${httpPort}` };
  }

  /** Starts one of the harness's test apps (`apps/<name>.js`) and waits for it to listen. */
  async app(name: string, env: NodeJS.ProcessEnv = {}, options: { netns?: string } = {}): Promise<AppHandle> {
    const proc = this.start(`app ${name}`, process.execPath, [join(TEST_APPS, `${name}.js`)], { env: { PORT: '0', ...env }, ...options });
    const line = await proc.waitFor(/^\{"listening":\d+/);
    return { proc, port: (JSON.parse(line) as { listening: number }).listening };
  }

  /** Registers `close` to run at `cleanup()`, before the process groups are killed (a failure there is ignored). */
  onCleanup(close: () => Promise<void>): void {
    this.cleanups.unshift(close);
  }

  /** Runs what `onCleanup` registered, kills every process group this harness started and removes its temp folder. */
  async cleanup(): Promise<void> {
    for (const close of this.cleanups.splice(0)) await close().catch(() => undefined);
    await Promise.all(this.processes.map((proc) => proc.stop(3000)));
    rmSync(this.root, { recursive: true, force: true });
    Harness.live.delete(this);
  }
}

/** Reads a whole file as text (tests compare what apps saw). */
export function readText(path: string): string {
  return readFileSync(path, 'utf8');
}
