/** What the benchmark's processes logged above info level: none is expected, and any is shown beside the numbers. */
import type { ManagedProcess } from '../src/harness.js';

/** Warnings and errors a process logged, with the first of them. */
export interface LogSummary {
  warnings: number;
  errors: number;
  first?: string;
}

/** Counts the warn and error records `proc` has written so far. */
export function logSummary(proc: ManagedProcess): LogSummary {
  const records = proc.records().filter((record) => record.level === 'warn' || record.level === 'error');
  const first = records[0];
  return { warnings: records.filter((record) => record.level === 'warn').length, errors: records.filter((record) => record.level === 'error').length, ...(first ? { first: `${first.logger}: ${first.msg}` } : {}) };
}

/** One sentence per process that logged anything, for the report. */
export function logLines(logs: Record<string, LogSummary>): string[] {
  return Object.entries(logs)
    .filter(([, log]) => log.warnings + log.errors > 0)
    .map(([name, log]) => `The ${name} logged ${log.warnings} warning(s) and ${log.errors} error(s); first: ${log.first ?? ''}.`);
}
