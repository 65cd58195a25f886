import { request } from 'node:http';
import { formatDuration, skeinHome } from '@skein/core';
import { parseFlags } from './args.js';
import { formatTable, printable } from './table.js';
import { isAlive } from './control-plane.js';
import { readRunRecords, type RunRecord } from './run-record.js';
import { writeLine } from './telemetry-common.js';

/** How long `skein list` waits for a sidecar's health endpoint. */
const HEALTH_TIMEOUT_MS = 1000;

/** A sidecar's health as `skein list` shows it: `healthy`, `unhealthy (<status>)` or `unreachable`. */
export type Health = string;

/** One app of `skein list`: its run record, its health, its age. */
export interface ListedApp extends RunRecord {
  health: Health;
  ageSeconds: number;
}

/** Asks a sidecar's `/v1.0/healthz` (204 when healthy), giving up after `timeoutMs`. */
export function probeHealth(httpPort: number, timeoutMs = HEALTH_TIMEOUT_MS): Promise<Health> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: httpPort, path: '/v1.0/healthz', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      resolve(status >= 200 && status < 300 ? 'healthy' : `unhealthy (${status})`);
    });
    req.once('timeout', () => {
      req.destroy();
      resolve('unreachable');
    });
    req.once('error', () => resolve('unreachable'));
    req.end();
  });
}

/** The apps as the table `skein list` prints, one line per app. Pure. */
export function runTable(apps: readonly ListedApp[]): string[] {
  if (apps.length === 0) return ['No apps are running under skein run.'];
  return formatTable(
    ['APP ID', 'APP PORT', 'HTTP PORT', 'GRPC PORT', 'SIDECAR PID', 'APP PID', 'AGE', 'HEALTH', 'COMMAND'],
    apps.map((app) => [
      app.namespace === 'default' ? app.appId : `${app.appId} (${app.namespace})`,
      app.appPort === undefined ? '-' : String(app.appPort),
      String(app.httpPort),
      String(app.grpcPort),
      String(app.pid),
      app.appPid === undefined ? '-' : String(app.appPid),
      formatDuration(app.ageSeconds * 1000),
      app.health,
      printable(app.command.join(' ')),
    ]),
  );
}

/** The apps running under `skein run` for `home`, each with its health and age. */
export async function listedApps(home: string, now = Date.now()): Promise<ListedApp[]> {
  const records = readRunRecords(home, isAlive);
  return Promise.all(
    records.map(async (record) => ({ ...record, health: await probeHealth(record.httpPort), ageSeconds: Math.max(0, Math.floor((now - Date.parse(record.startedAt)) / 1000)) })),
  );
}

/** `skein list [--json] [--home DIR]`: the apps running under `skein run` on this machine. */
export async function listCommand(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, { home: { type: 'string' }, json: { type: 'boolean' } });
  const apps = await listedApps(flags.home ?? skeinHome());
  if (flags.json) {
    for (const app of apps) await writeLine(JSON.stringify(app));
    return;
  }
  for (const line of runTable(apps)) await writeLine(line);
}
