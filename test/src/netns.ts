/**
 * Several hosts on one machine: Linux network namespaces joined by a bridge. Each host sees only its own
 * loopback and a private /24 that exists nowhere but inside these namespaces, so nothing a test sends can leave
 * the machine, and processes on different hosts can reach each other only through addresses they were given.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TEST_APPS, type Harness } from './harness.js';
import type { HttpResult } from './http.js';

const run = promisify(execFile);

/** One host of a topology: a network namespace with one address on the shared segment. */
export interface NetnsHost {
  /** The namespace to run its processes in (`ip netns exec`). */
  netns: string;
  /** Its address on the shared segment. */
  address: string;
}

/** Runs `ip <args>`, failing with what `ip` said and what the test needs to work. */
async function ip(args: string[]): Promise<void> {
  try {
    await run('ip', args);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim() || (error as Error).message;
    throw new Error(`\`ip ${args.join(' ')}\` failed: ${stderr}. Multi-host tests need iproute2 and root (CAP_SYS_ADMIN, CAP_NET_ADMIN) to create network namespaces.`, { cause: error });
  }
}

/**
 * A "switch" namespace holding a bridge, and hosts each joined to it by a veth pair. Every link is created
 * inside the namespaces, never in the test's own, so deleting the namespaces removes everything.
 */
export class Topology {
  /** The /24 of this topology, e.g. `10.213.57.0/24`; random per run so parallel runs are easy to tell apart. */
  readonly subnet: string;
  readonly switchNetns: string;
  readonly hosts: readonly NetnsHost[];
  private readonly created = new Set<string>();
  // A run interrupted (Ctrl-C, SIGTERM) or ended before its `after` hooks must still leave nothing behind.
  private readonly onExit = (): void => this.destroySync();
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.destroySync();
    this.unwatch();
    // With our listener gone, the signal's default action ends the process as it would have without us.
    process.kill(process.pid, signal);
  };

  private constructor(hostCount: number) {
    const prefix = `skein-${randomBytes(3).toString('hex')}`;
    const third = randomInt(0, 256);
    this.subnet = `10.213.${third}.0/24`;
    this.switchNetns = `${prefix}-sw`;
    this.hosts = Array.from({ length: hostCount }, (_, i) => ({ netns: `${prefix}-h${i + 1}`, address: `10.213.${third}.${i + 1}` }));
  }

  /** Creates the namespaces, the bridge and one veth pair per host; on any failure removes what it made. */
  static async create(hostCount: number): Promise<Topology> {
    const topology = new Topology(hostCount);
    process.once('exit', topology.onExit);
    process.once('SIGINT', topology.onSignal);
    process.once('SIGTERM', topology.onSignal);
    try {
      await topology.build();
    } catch (error) {
      await topology.destroy().catch(() => undefined);
      throw error;
    }
    return topology;
  }

  /** Host `n`, counting from 1 (its address ends in `.n`). */
  host(n: number): NetnsHost {
    const host = this.hosts[n - 1];
    if (!host) throw new Error(`the topology has ${this.hosts.length} hosts, not a host ${n}`);
    return host;
  }

  private async build(): Promise<void> {
    const sw = this.switchNetns;
    await this.addNetns(sw);
    await ip(['-n', sw, 'link', 'set', 'lo', 'up']);
    await ip(['-n', sw, 'link', 'add', 'br0', 'type', 'bridge']);
    await ip(['-n', sw, 'link', 'set', 'br0', 'up']);
    for (const [i, host] of this.hosts.entries()) {
      const port = `port${i + 1}`;
      await this.addNetns(host.netns);
      await ip(['-n', host.netns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', sw, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.netns]);
      await ip(['-n', sw, 'link', 'set', port, 'master', 'br0']);
      await ip(['-n', sw, 'link', 'set', port, 'up']);
      await ip(['-n', host.netns, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0']);
      await ip(['-n', host.netns, 'link', 'set', 'eth0', 'up']);
    }
  }

  private async addNetns(netns: string): Promise<void> {
    await ip(['netns', 'add', netns]);
    this.created.add(netns);
  }

  /**
   * Deletes every namespace, and with them the bridge and veth pairs. Stop the processes inside first (the harness
   * does, gracefully); any still running are killed, since a namespace outlives its name while a process is in it.
   */
  async destroy(): Promise<void> {
    const failures: string[] = [];
    for (const netns of [...this.created]) {
      try {
        killInside(netns);
        await ip(['netns', 'del', netns]);
        this.created.delete(netns);
      } catch (error) {
        failures.push((error as Error).message);
      }
    }
    if (this.created.size === 0) this.unwatch();
    if (failures.length > 0) throw new Error(`could not remove network namespaces: ${failures.join('; ')}`);
  }

  /** The last resort of an ending process: no awaiting, no errors. */
  private destroySync(): void {
    for (const netns of this.created) {
      killInside(netns);
      spawnSync('ip', ['netns', 'del', netns]);
    }
    this.created.clear();
  }

  private unwatch(): void {
    process.removeListener('exit', this.onExit);
    process.removeListener('SIGINT', this.onSignal);
    process.removeListener('SIGTERM', this.onSignal);
  }
}

/**
 * SIGKILLs whatever still runs inside `netns`. Only this topology's processes can be there (its names are random
 * per run); a namespace keeps its links alive for as long as one of them runs, even after `ip netns del`.
 */
function killInside(netns: string): void {
  const listed = spawnSync('ip', ['netns', 'pids', netns], { encoding: 'utf8' });
  for (const pid of (listed.stdout ?? '').split(/\s+/).filter(Boolean).map(Number)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // it exited meanwhile
    }
  }
}

/** What the probe is asked to do inside a namespace (see `apps/net-probe.ts`). */
export type ProbeSpec =
  | { kind: 'http'; url: string; method?: string; path?: string; headers?: Record<string, string>; body?: string }
  | { kind: 'tcp'; host: string; port: number };

/** What the probe reports: a response, a connection made, or the socket error's code. */
export type ProbeReport = { response: Omit<HttpResult, 'json'> } | { connected: true } | { error: string; message: string };

/** Runs the probe inside `netns` (its loopback and routes, not the test's) and returns its report. */
export async function probe(harness: Harness, netns: string, spec: ProbeSpec): Promise<ProbeReport> {
  const proc = harness.start('net-probe', process.execPath, [join(TEST_APPS, 'net-probe.js'), JSON.stringify(spec)], { netns });
  const { code } = await proc.exited;
  const line = proc.lines.find((candidate) => candidate.startsWith('{"report":'));
  if (code !== 0 || line === undefined) throw new Error(`net-probe in ${netns} exited with code ${String(code)} without a report. Output:\n${proc.output()}`);
  return (JSON.parse(line) as { report: ProbeReport }).report;
}

/** Sends one HTTP request from inside `netns` and reads the whole response; rejects with the socket error's code. */
export async function requestFrom(harness: Harness, netns: string, url: string, options: { method?: string; path?: string; headers?: Record<string, string>; body?: string } = {}): Promise<HttpResult> {
  const report = await probe(harness, netns, { kind: 'http', url, ...options });
  if ('error' in report) throw Object.assign(new Error(`${options.method ?? 'GET'} ${url} from ${netns}: ${report.message}`), { code: report.error });
  if (!('response' in report)) throw new Error(`net-probe answered an HTTP request with ${JSON.stringify(report)}`);
  const { response } = report;
  return { ...response, json: <T>() => JSON.parse(response.body) as T };
}

/** Opens (and closes) a TCP connection from inside `netns`; resolves `'connected'` or the socket error's code. */
export async function connectFrom(harness: Harness, netns: string, host: string, port: number): Promise<string> {
  const report = await probe(harness, netns, { kind: 'tcp', host, port });
  if ('connected' in report) return 'connected';
  if ('error' in report) return report.error;
  throw new Error(`net-probe answered a TCP connect with ${JSON.stringify(report)}`);
}
