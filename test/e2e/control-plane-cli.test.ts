import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Harness, TEST_APPS, type LogRecord, type ManagedProcess } from '../src/harness.js';
import { httpRequest } from '../src/http.js';
import { eventually } from '../src/eventually.js';
import { freePort, isAlive } from '../src/ports.js';

interface Metadata {
  actorRuntime: { runtimeStatus: string; placement: string; activeActors: Array<{ type: string; count: number }> };
}

/** A `skein run` of the actor test app, as a user starts it: the control plane found through the Skein home. */
interface RunningApp {
  proc: ManagedProcess;
  appId: string;
  appPort: number;
}

/** One line of `skein list --json`. */
interface ListedApp {
  appId: string;
  pid: number;
  appPid: number;
  appPort: number;
  httpPort: number;
  grpcPort: number;
  health: string;
  command: string[];
}

describe('the control plane from the CLI: skein up, run, list, stop', function () {
  const harness = new Harness();
  after(() => harness.cleanup());
  const home = harness.dir('cp-home');
  let up: ManagedProcess;
  let upReady: LogRecord;
  const apps: RunningApp[] = [];

  /** Runs the CLI to completion; resolves with its exit code and output once both streams are drained. */
  async function skein(args: string[]): Promise<{ code: number | null; output: string }> {
    const proc = harness.skein(args[0] ?? 'skein', args);
    const code = await new Promise<number | null>((resolve) => proc.child.once('close', (exitCode) => resolve(exitCode)));
    return { code, output: proc.output() };
  }

  async function runApp(appId: string, extra: string[] = []): Promise<RunningApp> {
    const appPort = await freePort();
    const proc = harness.skein(`run ${appId}`, ['run', '--home', home, '--app-id', appId, '--app-port', String(appPort), ...extra, '--', process.execPath, join(TEST_APPS, 'actor-app.js')], {
      env: { PORT: String(appPort), INSTANCE: appId, ACTOR_TYPES: 'Counter' },
    });
    const app = { proc, appId, appPort };
    apps.push(app);
    return app;
  }

  async function sidecarPort(app: RunningApp): Promise<number> {
    return Number((await app.proc.waitForRecord('ready', { what: 'sidecar' }, 40_000))['httpPort']);
  }

  async function metadata(app: RunningApp): Promise<Metadata> {
    return (await httpRequest(`http://127.0.0.1:${await sidecarPort(app)}/v1.0/metadata`)).json<Metadata>();
  }

  /** Calls a Counter actor through `app`'s sidecar; resolves with the instance that hosts it once the call succeeds. */
  async function actorAnswers(app: RunningApp, actorId: string): Promise<string> {
    const port = await sidecarPort(app);
    return eventually(
      async () => {
        const res = await httpRequest(`http://127.0.0.1:${port}/v1.0/actors/Counter/${actorId}/method/echo`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
        return res.status === 200 ? res.json<{ instance: string }>().instance : undefined;
      },
      30_000,
      `actor Counter/${actorId} through ${app.appId}`,
    );
  }

  function upRecord(): { placementPid: number; sentryPid: number; natsPid: number; state: string } {
    return JSON.parse(readFileSync(join(home, 'up.json'), 'utf8')) as { placementPid: number; sentryPid: number; natsPid: number; state: string };
  }

  it('skein run waits for the control plane that skein up is starting, and gets placement', async function () {
    // One run before `skein up` exists at all, one started right after it, as a script that runs both would.
    const early = await runApp('early');
    await early.proc.waitFor(/waiting for a control plane: no `skein up` is running for /);
    up = harness.skein('up', ['up', '--home', home, '--nats-port', '0', '--sentry-port', '0', '--placement-port', '0']);
    const late = await runApp('late');
    upReady = await up.waitForRecord('ready', { what: 'control-plane' }, 40_000);
    for (const app of [early, late]) {
      const meta = await eventually(async () => {
        const found = await metadata(app);
        return found.actorRuntime.placement === 'placement: connected' ? found : undefined;
      }, 30_000, `${app.appId}'s placement connection`);
      assert.equal(meta.actorRuntime.runtimeStatus, 'RUNNING');
    }
    assert.ok(['early', 'late'].includes(await actorAnswers(early, 'a-1')));
    assert.ok(['early', 'late'].includes(await actorAnswers(late, 'a-2')));
    assert.doesNotMatch(early.proc.output() + late.proc.output(), /no placement service/);
  });

  it('skein run with no control plane gives up after --control-plane-timeout, saying what is missing and what to do', async function () {
    const empty = harness.dir('no-control-plane');
    const { code, output } = await skein(['run', '--home', empty, '--app-id', 'alone', '--control-plane-timeout', '1s']);
    assert.equal(code, 1, output);
    assert.match(output, /waiting for a control plane: no `skein up` is running for .*no-control-plane \(giving up after 1s/);
    assert.match(output, /skein: no control plane ready after 1s: no `skein up` is running for .*no-control-plane .*Start `skein up` for this Skein home .*--nats-url and --sentry-address .*--control-plane-timeout/);
    const bad = await skein(['run', '--home', empty, '--app-id', 'alone', '--control-plane-timeout', 'soon']);
    assert.equal(bad.code, 2);
    assert.match(bad.output, /--control-plane-timeout must be a duration/);
  });

  it('skein up restarts placement and the sentry when they are killed, and the mesh keeps working', async function () {
    const placementPid = Number(upReady['placementPid']);
    const sentryPid = Number(upReady['sentryPid']);
    assert.equal(upRecord().placementPid, placementPid);
    process.kill(placementPid, 'SIGKILL');
    await up.waitFor(new RegExp(`^placement \\(pid ${placementPid}\\) exited with signal SIGKILL: actors cannot be placed or rebalanced until it is back; restarting it in 500ms$`));
    const restarted = Number(/^placement restarted \(pid (\d+)\)$/.exec(await up.waitFor(/^placement restarted \(pid \d+\)$/, 20_000))?.[1]);
    assert.notEqual(restarted, placementPid);
    assert.ok(isAlive(restarted));
    assert.equal(upRecord().placementPid, restarted);
    const [early, late] = apps as [RunningApp, RunningApp];
    // New actors are placed by the new placement, through both sidecars.
    await eventually(async () => ((await metadata(early)).actorRuntime.placement === 'placement: connected' ? true : undefined), 30_000, 'early reconnected to placement');
    assert.ok(['early', 'late'].includes(await actorAnswers(early, 'after-restart-1')));
    assert.ok(['early', 'late'].includes(await actorAnswers(late, 'after-restart-2')));

    process.kill(sentryPid, 'SIGKILL');
    await up.waitFor(new RegExp(`^sentry \\(pid ${sentryPid}\\) exited with signal SIGKILL: sidecars cannot get or renew certificates until it is back; restarting it in 500ms$`));
    await up.waitFor(/^sentry restarted \(pid \d+\)$/, 20_000);
    assert.notEqual(upRecord().sentryPid, sentryPid);
    // A new sidecar gets its certificate from the restarted sentry and joins the mesh.
    const third = await runApp('third');
    assert.ok(['early', 'late', 'third'].includes(await actorAnswers(third, 'after-sentry-restart')));
    await third.proc.stop();
    apps.pop();
  });

  it('skein list shows the running apps with their ports, pids and health, and ignores stale records', async function () {
    const [early, late] = apps as [RunningApp, RunningApp];
    // The record of a `skein run` that was killed outright: its process is gone.
    const dead = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    const deadPid = await new Promise<number>((resolve) => dead.once('exit', () => resolve(dead.pid ?? 0)));
    mkdirSync(join(home, 'runs'), { recursive: true });
    const staleFile = join(home, 'runs', `${deadPid}.json`);
    writeFileSync(staleFile, JSON.stringify({ appId: 'ghost', namespace: 'default', pid: deadPid, command: [], httpPort: 1, grpcPort: 2, internalPort: 3, startedAt: new Date().toISOString() }));

    const { code, output } = await skein(['list', '--home', home, '--json']);
    assert.equal(code, 0, output);
    const listed = output.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as ListedApp);
    assert.deepEqual(listed.map((app) => app.appId), ['early', 'late']);
    for (const app of [early, late]) {
      const entry = listed.find((candidate) => candidate.appId === app.appId);
      const ready = await app.proc.waitForRecord('ready', { what: 'sidecar' });
      const appPid = (JSON.parse(await app.proc.waitFor(/^\{"listening":\d+/)) as { pid: number }).pid;
      assert.equal(entry?.pid, app.proc.pid);
      assert.equal(entry?.appPid, appPid);
      assert.equal(entry?.appPort, app.appPort);
      assert.equal(entry?.httpPort, Number(ready['httpPort']));
      assert.equal(entry?.grpcPort, Number(ready['grpcPort']));
      assert.equal(entry?.health, 'healthy');
      assert.deepEqual(entry?.command, [process.execPath, join(TEST_APPS, 'actor-app.js')]);
    }
    assert.equal(existsSync(staleFile), false, 'the stale record was removed');

    const table = await skein(['list', '--home', home]);
    assert.equal(table.code, 0, table.output);
    const lines = table.output.split('\n');
    assert.match(lines[0] ?? '', /^APP ID +APP PORT +HTTP PORT +GRPC PORT +SIDECAR PID +APP PID +AGE +HEALTH +COMMAND$/);
    assert.match(lines.find((line) => line.startsWith('early ')) ?? '', new RegExp(`^early +${early.appPort} +\\d+ +\\d+ +${early.proc.pid} +\\d+ +\\S+ +healthy +`));
    assert.ok(lines.some((line) => line.startsWith('late ')), table.output);
  });

  it('skein stop stops one app (sidecar and app), and names an unknown id', async function () {
    const [early, late] = apps as [RunningApp, RunningApp];
    const earlyAppPid = (JSON.parse(await early.proc.waitFor(/^\{"listening":\d+/)) as { pid: number }).pid;
    const { code, output } = await skein(['stop', '--home', home, '--app-id', 'early']);
    assert.equal(code, 0, output);
    assert.match(output, new RegExp(`Stopped app "early" \\(sidecar pid ${early.proc.pid}, app pid ${earlyAppPid}\\)`));
    assert.equal((await early.proc.exited).signal, null, 'skein run exited on its own after SIGTERM');
    assert.equal(isAlive(earlyAppPid), false, 'the app was stopped');
    const listed = await skein(['list', '--home', home, '--json']);
    assert.deepEqual(listed.output.split('\n').filter((line) => line.startsWith('{')).map((line) => (JSON.parse(line) as ListedApp).appId), ['late']);
    assert.ok(late.proc.running);

    const unknown = await skein(['stop', '--home', home, '--app-id', 'nope']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.output, /^skein: no app "nope" is running under skein run for .*; `skein list` shows the running apps$/m);
  });

  it('stopping skein up stops NATS, the sentry and placement (the restarted ones too)', async function () {
    for (const app of apps) await app.proc.stop();
    const record = upRecord();
    const pids = [record.natsPid, record.sentryPid, record.placementPid];
    assert.ok(pids.every(isAlive));
    // To skein up alone (not its process group, as Ctrl-C would): it stops each of them, waiting for each to exit.
    process.kill(up.pid, 'SIGTERM');
    assert.equal((await up.exited).code, 0);
    assert.match(up.output(), /control plane stopped/);
    assert.deepEqual(pids.filter(isAlive), [], 'no control-plane process outlives skein up');
    assert.equal(existsSync(join(home, 'up.json')), false);
  });
});
