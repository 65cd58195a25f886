/**
 * What each `skein run` records while it runs, one file per sidecar in `<home>/runs/<pid>.json`, so `skein list`
 * and `skein stop` find the apps of this machine. Removed when `skein run` exits; a file whose process is gone
 * (killed outright) is stale, ignored and removed by the next reader.
 */
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** One running `skein run`: its sidecar, and the app it started. */
export interface RunRecord {
  appId: string;
  namespace: string;
  /** The `skein run` (sidecar) process. */
  pid: number;
  /** The app's process (the leader of its process group); absent when `skein run` started no command. */
  appPid?: number;
  /** The app's command line. */
  command: string[];
  appPort?: number;
  httpPort: number;
  grpcPort: number;
  internalPort: number;
  metricsPort?: number;
  /** ISO time the sidecar started. */
  startedAt: string;
}

/** The folder of the run records of `home`. */
export function runsDir(home: string): string {
  return join(home, 'runs');
}

function isPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) > 0 && (value as number) <= 65535;
}

function isPid(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) > 0;
}

/** A record from a file's text; undefined when it is not one (damaged, or from another version). Pure. */
export function parseRunRecord(text: string): RunRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Partial<Record<keyof RunRecord, unknown>>;
  const valid =
    typeof record.appId === 'string' &&
    typeof record.namespace === 'string' &&
    isPid(record.pid) &&
    (record.appPid === undefined || isPid(record.appPid)) &&
    Array.isArray(record.command) &&
    record.command.every((part) => typeof part === 'string') &&
    (record.appPort === undefined || isPort(record.appPort)) &&
    isPort(record.httpPort) &&
    isPort(record.grpcPort) &&
    isPort(record.internalPort) &&
    (record.metricsPort === undefined || isPort(record.metricsPort)) &&
    typeof record.startedAt === 'string' &&
    !Number.isNaN(Date.parse(record.startedAt));
  return valid ? (value as RunRecord) : undefined;
}

/** A run record file as read: its name and text. */
export interface RunRecordFile {
  name: string;
  text: string;
}

/**
 * Splits the files of the runs folder into the records of running sidecars and the names of stale files: a
 * record whose `skein run` is gone, or a file that is no record. A record is only live in the file named after
 * its own pid. Pure.
 */
export function partitionRunRecords(files: readonly RunRecordFile[], alive: (pid: number) => boolean): { live: RunRecord[]; stale: string[] } {
  const live: RunRecord[] = [];
  const stale: string[] = [];
  for (const file of files) {
    const record = parseRunRecord(file.text);
    if (record && file.name === `${record.pid}.json` && alive(record.pid)) live.push(record);
    else stale.push(file.name);
  }
  live.sort((a, b) => a.appId.localeCompare(b.appId) || a.startedAt.localeCompare(b.startedAt));
  return { live, stale };
}

/** The records of the sidecars running under `home`; stale files are removed. */
export function readRunRecords(home: string, alive: (pid: number) => boolean): RunRecord[] {
  const dir = runsDir(home);
  let names: string[];
  try {
    // Files still being written (`*.tmp`) are not records yet.
    names = readdirSync(dir).filter((name) => name.endsWith('.json'));
  } catch {
    return [];
  }
  const files: RunRecordFile[] = [];
  for (const name of names) {
    try {
      files.push({ name, text: readFileSync(join(dir, name), 'utf8') });
    } catch {
      // removed by its own `skein run` meanwhile
    }
  }
  const { live, stale } = partitionRunRecords(files, alive);
  for (const name of stale) rmSync(join(dir, name), { force: true });
  return live;
}

/** Writes the record of this `skein run` (whole: written aside, then renamed); returns its path. */
export function writeRunRecord(home: string, record: RunRecord): string {
  const dir = runsDir(home);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${record.pid}.json`);
  const aside = `${file}.tmp`;
  writeFileSync(aside, JSON.stringify(record, null, 2));
  renameSync(aside, file);
  return file;
}
