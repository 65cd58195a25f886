import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** A JSON log record written by a Skein process (SKEIN_LOG_FORMAT=json). */
export interface LogRecord {
  level: string;
  logger: string;
  msg: string;
  [field: string]: unknown;
}

type Waiter = { match: (line: string, record: LogRecord | undefined) => boolean; resolve: (line: string) => void };

/**
 * A child process in its own process group, with its output kept line by line so tests can wait for a line
 * (never for a fixed time). Killing it kills the whole group.
 */
export class ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  private readonly waiters = new Set<Waiter>();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(name: string, command: string, args: string[], options: SpawnOptions) {
    this.name = name;
    this.child = spawn(command, args, { ...options, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        // Whatever the process left in its group dies with it, now, while the group id cannot have been reused.
        this.killGroup('SIGKILL');
        resolve({ code, signal });
      }),
    );
    for (const stream of [this.child.stdout, this.child.stderr]) {
      let rest = '';
      stream?.on('data', (chunk: Buffer) => {
        const parts = (rest + chunk.toString('utf8')).split('\n');
        rest = parts.pop() ?? '';
        for (const line of parts) this.push(line);
      });
      stream?.on('end', () => {
        if (rest) this.push(rest);
        rest = '';
      });
    }
    if (process.env['SKEIN_TEST_VERBOSE']) {
      this.child.stdout?.on('data', (chunk: Buffer) => process.stderr.write(`[${name}] ${chunk.toString()}`));
      this.child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(`[${name}] ${chunk.toString()}`));
    }
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private push(line: string): void {
    this.lines.push(line);
    const record = parseRecord(line);
    for (const waiter of [...this.waiters]) {
      if (waiter.match(line, record)) {
        this.waiters.delete(waiter);
        waiter.resolve(line);
      }
    }
  }

  /** All output so far, as one string. */
  output(): string {
    return this.lines.join('\n');
  }

  /** Log records so far. */
  records(): LogRecord[] {
    return this.lines.map(parseRecord).filter((record): record is LogRecord => record !== undefined);
  }

  /**
   * Resolves with the first line (already seen or future) that matches; rejects if the process exits first or
   * `timeoutMs` passes — a guard against hanging forever, never a synchronisation delay.
   */
  waitFor(match: RegExp | ((line: string, record: LogRecord | undefined) => boolean), timeoutMs = 20_000, fromLine = 0): Promise<string> {
    const test = typeof match === 'function' ? match : (line: string) => match.test(line);
    const seen = this.lines.slice(fromLine).find((line) => test(line, parseRecord(line)));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`${this.name}: no line matching ${String(match)} within ${timeoutMs} ms. Output:\n${this.output().slice(-4000)}`));
      }, timeoutMs);
      const waiter: Waiter = {
        match: test,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      this.waiters.add(waiter);
      void this.exited.then(({ code, signal }) => {
        if (!this.waiters.has(waiter)) return;
        this.waiters.delete(waiter);
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (code ${String(code)}, signal ${String(signal)}) before a line matching ${String(match)}. Output:\n${this.output().slice(-4000)}`));
      });
    });
  }

  /** Waits for a JSON log record with `msg` (and, optionally, fields that match). */
  waitForRecord(msg: string, fields: Record<string, unknown> = {}, timeoutMs = 20_000, fromLine = 0): Promise<LogRecord> {
    return this.waitFor(
      (_line, record) => record !== undefined && record.msg === msg && Object.entries(fields).every(([key, value]) => record[key] === value),
      timeoutMs,
      fromLine,
    ).then((line) => parseRecord(line) as LogRecord);
  }

  /** Sends `signal` to the whole process group. */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.killGroup(signal);
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`; resolves when it has exited. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.running) {
      this.signal('SIGTERM');
      const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
  }

  private killGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      // the group is already gone
    }
  }

  /** SIGKILL the group at once (a crash). */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }
}

function parseRecord(line: string): LogRecord | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value = JSON.parse(line) as LogRecord;
    return typeof value.msg === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}
