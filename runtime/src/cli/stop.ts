import { setTimeout as delay } from 'node:timers/promises';
import { formatDuration, parseDuration, skeinHome } from '@skein/core';
import { CommandFailed, parseFlags, UsageError } from './args.js';
import { isAlive } from './control-plane.js';
import { readRunRecords, type RunRecord } from './run-record.js';

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

async function exitedWithin(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await delay(50);
  }
  return true;
}

/**
 * Stops one `skein run`: SIGTERM to it (it hands its actors over, stops its app's process group, then itself),
 * SIGKILL to both after `timeoutMs`. Resolves with whether it stopped gracefully.
 */
export async function stopRun(record: RunRecord, timeoutMs: number): Promise<boolean> {
  signal(record.pid, 'SIGTERM');
  if (await exitedWithin(record.pid, timeoutMs)) {
    // It stops its app before itself; an app it could not stop is not left behind.
    if (record.appPid !== undefined && isAlive(record.appPid)) signal(-record.appPid, 'SIGKILL');
    return true;
  }
  signal(record.pid, 'SIGKILL');
  if (record.appPid !== undefined) signal(-record.appPid, 'SIGKILL');
  await exitedWithin(record.pid, 1000);
  return false;
}

/** `skein stop --app-id ID [--timeout 10s] [--home DIR]`: stops the `skein run` of that app (sidecar and app). */
export async function stopCommand(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, { 'app-id': { type: 'string', short: 'a' }, home: { type: 'string' }, timeout: { type: 'string' } });
  const appId = flags['app-id'];
  if (!appId) throw new UsageError('--app-id is required');
  let timeoutMs: number;
  try {
    timeoutMs = parseDuration(flags.timeout ?? '10s');
  } catch {
    throw new UsageError(`--timeout must be a duration such as 10s, not "${flags.timeout ?? ''}"`);
  }
  const home = flags.home ?? skeinHome();
  const runs = readRunRecords(home, isAlive).filter((record) => record.appId === appId);
  if (runs.length === 0) throw new CommandFailed(`no app "${appId}" is running under skein run for ${home}; \`skein list\` shows the running apps`);
  const results = await Promise.all(runs.map(async (record) => ({ record, graceful: await stopRun(record, timeoutMs) })));
  for (const { record, graceful } of results) {
    const processes = `sidecar pid ${record.pid}${record.appPid === undefined ? '' : `, app pid ${record.appPid}`}`;
    process.stdout.write(graceful ? `Stopped app "${appId}" (${processes}).\n` : `App "${appId}" did not stop within ${formatDuration(timeoutMs)}; killed it (${processes}).\n`);
  }
}
