/** Memory and CPU of running processes, read from Linux's /proc. */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Harness } from '../src/harness.js';

/** Memory of one process, in MiB. */
export interface Memory {
  /** Resident set size now (VmRSS). */
  rss: number;
  /** Highest resident set size since the process started (VmHWM). */
  hwm: number;
}

function statusField(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

/** The pid of the harness's nats-server, whose CPU the parts that publish to it count. */
export function natsPid(harness: Harness): number {
  const pid = harness.natsHandle?.proc.pid;
  if (pid === undefined) throw new Error('start the control plane first');
  return pid;
}

/** VmRSS and VmHWM of `pid`. */
export function memoryOf(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { rss: statusField(status, 'VmRSS'), hwm: statusField(status, 'VmHWM') };
}

/** CPU time `pid` has used so far, in milliseconds, over all its threads (V8's GC and compiler threads, libuv's pool). */
export function cpuTimeOf(pid: number): number {
  let total = 0;
  try {
    // schedstat counts nanoseconds on the CPU, finer than the 10 ms ticks of /proc/<pid>/stat, but per thread.
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        total += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ', 1)[0]) / 1e6;
      } catch {
        // the thread ended between the listing and the read
      }
    }
    return total;
  } catch {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces) start at state; utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  }
}

/** Jiffies the whole machine has spent busy and in total, summed over all CPUs (first line of /proc/stat). */
export function systemCpuJiffies(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const total = values.reduce((sum, value) => sum + value, 0);
  // idle and iowait are the 4th and 5th columns.
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  return { busy: total - idle, total };
}

/** What a sampler saw of one process over a phase. */
export interface ProcessUsage {
  /** Highest VmRSS seen by the sampler, in MiB. */
  peakRss: number;
  /** VmRSS at the end of the phase, in MiB. */
  endRss: number;
  /** Average CPU use over the phase, in cores (1.0 = one core busy all the time). */
  cpuCores: number;
  /** CPU time used over the phase, in milliseconds. */
  cpuMs: number;
}

/**
 * Samples VmRSS of some processes every `intervalMs` until `stop()` is called, and measures the CPU time they used
 * in between. Peaks shorter than the interval can be missed; VmHWM covers those, over the process's life.
 */
export class ResourceSampler {
  private readonly pids: Record<string, number>;
  private readonly peaks: Record<string, number> = {};
  private readonly cpuStart: Record<string, number> = {};
  private readonly began = performance.now();
  private readonly systemStart = systemCpuJiffies();
  private readonly timer: NodeJS.Timeout;

  constructor(pids: Record<string, number>, intervalMs = 100) {
    this.pids = pids;
    for (const [name, pid] of Object.entries(pids)) {
      this.cpuStart[name] = cpuTimeOf(pid);
      this.peaks[name] = memoryOf(pid).rss;
    }
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample(): void {
    for (const [name, pid] of Object.entries(this.pids)) {
      try {
        this.peaks[name] = Math.max(this.peaks[name] ?? 0, memoryOf(pid).rss);
      } catch {
        // the process is gone; the report shows what was seen before
      }
    }
  }

  /**
   * Stops sampling and returns each process's usage over the phase, and how busy the whole machine was (in
   * cores), which shows how much of the machine other work took.
   */
  stop(): { processes: Record<string, ProcessUsage>; machineBusyCores: number } {
    clearInterval(this.timer);
    this.sample();
    const wallMs = performance.now() - this.began;
    const out: Record<string, ProcessUsage> = {};
    for (const [name, pid] of Object.entries(this.pids)) {
      const cpuMs = cpuTimeOf(pid) - (this.cpuStart[name] ?? 0);
      out[name] = { peakRss: this.peaks[name] ?? Number.NaN, endRss: memoryOf(pid).rss, cpuMs, cpuCores: cpuMs / wallMs };
    }
    const system = systemCpuJiffies();
    const share = (system.busy - this.systemStart.busy) / Math.max(1, system.total - this.systemStart.total);
    return { processes: out, machineBusyCores: share * cpus().length };
  }
}
