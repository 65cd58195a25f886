import type { ChildProcess } from 'node:child_process';
import { consecutiveCrashesAfter, restartDelayMs, DEFAULT_RESTART_BACKOFF, type RestartBackoff } from './restart-backoff.js';

/** A started process the supervisor watches. */
export interface SupervisedProcess {
  child: ChildProcess;
}

/** What a supervisor tells its owner; the owner decides how to say it (the CLI prints it). */
export interface SupervisorEvents<T extends SupervisedProcess> {
  /** The process exited on its own; it is started again in `restartInMs`. */
  exited(exit: { name: string; pid: number | undefined; code: number | null; signal: NodeJS.Signals | null; restartInMs: number }): void;
  /** A restart succeeded. */
  restarted(name: string, started: T): void;
  /** A restart failed; the next try is in `restartInMs`. */
  restartFailed(name: string, reason: string, restartInMs: number): void;
}

/** How a supervisor starts, stops and paces one process. */
export interface SupervisorOptions<T extends SupervisedProcess> {
  name: string;
  /** Starts the process; resolves once it serves, rejects if it cannot. */
  launch: () => Promise<T>;
  /** Stops a running process and resolves once it has exited. */
  terminate: (started: T) => Promise<void>;
  events: SupervisorEvents<T>;
  backoff?: RestartBackoff;
  now?: () => number;
}

/**
 * Keeps one child process running: when it exits on its own it is started again after a backoff delay, until
 * `stop()`. Create, then `start()` (which fails if the first start does), then `stop()`.
 */
export class Supervisor<T extends SupervisedProcess> {
  readonly name: string;
  private readonly options: SupervisorOptions<T>;
  private readonly backoff: RestartBackoff;
  private readonly now: () => number;
  private running: T | undefined;
  private launching: Promise<T> | undefined;
  private crashes = 0;
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(options: SupervisorOptions<T>) {
    this.name = options.name;
    this.options = options;
    this.backoff = options.backoff ?? DEFAULT_RESTART_BACKOFF;
    this.now = options.now ?? Date.now;
  }

  /** The running process, if any (none while it waits for a restart). */
  get current(): T | undefined {
    return this.running;
  }

  /** The first start: resolves once the process serves; rejects (and nothing is restarted) if it cannot start. */
  start(): Promise<T> {
    return this.launch();
  }

  private async launch(): Promise<T> {
    this.launching = this.options.launch();
    let started: T;
    try {
      started = await this.launching;
    } finally {
      this.launching = undefined;
    }
    // stop() ran while it was starting, and stops it.
    if (this.stopped) throw new Error(`${this.name} was stopped while it started`);
    this.running = started;
    this.startedAt = this.now();
    started.child.once('exit', (code, signal) => this.onExit(started, code, signal));
    return started;
  }

  private onExit(started: T, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopped || this.running !== started) return;
    this.running = undefined;
    // A Ctrl-C reaches the whole process group at once: the child may exit before the supervisor's own signal
    // handler has held it. Decided a turn later, such an exit is a stop, not a crash.
    setImmediate(() => {
      if (!this.stopped) this.crashed(started, code, signal);
    });
  }

  private crashed(started: T, code: number | null, signal: NodeJS.Signals | null): void {
    this.crashes = consecutiveCrashesAfter(this.crashes, this.now() - this.startedAt, this.backoff);
    const restartInMs = restartDelayMs(this.crashes, this.backoff);
    this.options.events.exited({ name: this.name, pid: started.child.pid, code, signal, restartInMs });
    this.scheduleRestart(restartInMs);
  }

  private scheduleRestart(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.restart();
    }, delayMs);
  }

  private async restart(): Promise<void> {
    if (this.stopped) return;
    try {
      const started = await this.launch();
      this.options.events.restarted(this.name, started);
    } catch (error) {
      if (this.stopped) return;
      this.crashes += 1;
      const restartInMs = restartDelayMs(this.crashes, this.backoff);
      this.options.events.restartFailed(this.name, (error as Error).message, restartInMs);
      this.scheduleRestart(restartInMs);
    }
  }

  /** No more restarts from now on; the process is left running (stop() ends it). */
  hold(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** No more restarts; stops the process (one being started too) and resolves once it has exited. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const launching = this.launching;
    if (launching) {
      const started = await launching.catch(() => undefined);
      if (started) await this.options.terminate(started);
    }
    const running = this.running;
    this.running = undefined;
    if (running) await this.options.terminate(running);
  }
}
