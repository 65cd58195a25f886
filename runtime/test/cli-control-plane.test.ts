import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { DEFAULT_RESTART_BACKOFF, consecutiveCrashesAfter, restartDelayMs } from '../src/control/restart-backoff.js';
import { Supervisor, type SupervisedProcess } from '../src/control/supervisor.js';
import { controlPlaneStatus, notReadyReason, waitingMessage } from '../src/cli/control-plane.js';
import { parseRunRecord, partitionRunRecords, type RunRecord } from '../src/cli/run-record.js';
import { runTable, type ListedApp } from '../src/cli/list.js';

describe('restart backoff', function () {
  it('waits 0.5 s, doubling per crash in a row up to 10 s', function () {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 100, 10_000].map((crashes) => restartDelayMs(crashes)),
      [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000, 10_000],
    );
  });

  it('starts again from the first delay once a process ran long enough', function () {
    assert.equal(consecutiveCrashesAfter(0, 100), 1);
    assert.equal(consecutiveCrashesAfter(4, 29_999), 5);
    assert.equal(consecutiveCrashesAfter(4, DEFAULT_RESTART_BACKOFF.resetAfterMs), 1);
    assert.equal(restartDelayMs(consecutiveCrashesAfter(9, 60_000)), 500);
  });

  it('follows a custom schedule', function () {
    const backoff = { initialMs: 100, maxMs: 250, resetAfterMs: 1000 };
    assert.deepEqual([1, 2, 3].map((crashes) => restartDelayMs(crashes, backoff)), [100, 200, 250]);
  });
});

describe('Supervisor', function () {
  const started: SupervisedProcess[] = [];
  afterEach(function () {
    for (const { child } of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    started.length = 0;
  });

  function launch(): Promise<SupervisedProcess> {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    const proc = { child };
    started.push(proc);
    return new Promise((resolve) => child.once('spawn', () => resolve(proc)));
  }
  const terminate = ({ child }: SupervisedProcess): Promise<void> =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });

  it('restarts a process that dies, says how and when, and stops it for good on stop()', async function () {
    const exits: Array<{ signal: NodeJS.Signals | null; restartInMs: number }> = [];
    let restarted: (proc: SupervisedProcess) => void = () => undefined;
    const supervisor = new Supervisor({
      name: 'worker',
      launch,
      terminate,
      backoff: { initialMs: 10, maxMs: 40, resetAfterMs: 60_000 },
      events: { exited: (exit) => exits.push(exit), restarted: (_name, proc) => restarted(proc), restartFailed: () => undefined },
    });
    const first = await supervisor.start();
    for (const expected of [10, 20, 40]) {
      const next = new Promise<SupervisedProcess>((resolve) => (restarted = resolve));
      (supervisor.current ?? first).child.kill('SIGKILL');
      const proc = await next;
      assert.equal(supervisor.current, proc);
      assert.equal(exits.at(-1)?.restartInMs, expected);
      assert.equal(exits.at(-1)?.signal, 'SIGKILL');
    }
    const last = supervisor.current;
    await supervisor.stop();
    assert.equal(supervisor.current, undefined);
    assert.equal(last?.child.signalCode, 'SIGTERM');
    assert.equal(exits.length, 3, 'a stop is no crash');
  });
});

describe('the control plane record', function () {
  const alive = (pid: number): boolean => pid === 42;
  const ready = { pid: 42, state: 'ready', natsUrl: 'tls://127.0.0.1:4222', sentryAddress: '127.0.0.1:50003', placementAddress: '127.0.0.1:50005', trustBundle: '/h/certs/trust-bundle.pem' };

  it('is ready only once NATS, sentry and placement are recorded', function () {
    assert.equal(controlPlaneStatus(JSON.stringify(ready), alive).kind, 'ready');
    const starting = controlPlaneStatus(JSON.stringify({ pid: 42, state: 'starting', natsUrl: ready.natsUrl, trustBundle: ready.trustBundle }), alive);
    assert.equal(starting.kind, 'starting');
    assert.deepEqual(starting.kind === 'starting' && starting.missing, ['sentry', 'placement']);
    assert.equal(notReadyReason(starting, '/h'), 'the control plane started by `skein up` (pid 42) is still starting: sentry, placement not ready yet');
    assert.equal(waitingMessage(starting, '/h', 60_000), 'waiting for the control plane started by `skein up` (pid 42: sentry, placement not ready yet; giving up after 1m0s, see --control-plane-timeout)');
  });

  it('takes a record of an older version (no state, no placement) as ready', function () {
    const { state: _state, placementAddress: _placement, ...old } = ready;
    assert.equal(controlPlaneStatus(JSON.stringify(old), alive).kind, 'ready');
  });

  it('is absent without a file, with a damaged one, or when its process is gone', function () {
    assert.equal(controlPlaneStatus(undefined, alive).kind, 'absent');
    assert.equal(controlPlaneStatus('{"pid": 42, "sta', alive).kind, 'absent');
    assert.equal(controlPlaneStatus(JSON.stringify({ ...ready, pid: 7 }), alive).kind, 'absent');
    assert.match(notReadyReason({ kind: 'absent' }, '/h'), /^no `skein up` is running for \/h \(\/h\/up\.json is missing/);
  });
});

describe('run records', function () {
  const record: RunRecord = { appId: 'orders', namespace: 'default', pid: 100, appPid: 101, command: ['node', 'app.js'], appPort: 8080, httpPort: 3500, grpcPort: 50001, internalPort: 50002, startedAt: '2025-01-01T00:00:00.000Z' };

  it('parses a record and refuses anything else', function () {
    assert.deepEqual(parseRunRecord(JSON.stringify(record)), record);
    const { appPid: _appPid, appPort: _appPort, ...noApp } = record;
    assert.deepEqual(parseRunRecord(JSON.stringify(noApp)), noApp);
    for (const bad of ['', 'null', '[]', '{"appId":"a"}', JSON.stringify({ ...record, httpPort: 0 }), JSON.stringify({ ...record, pid: -1 }), JSON.stringify({ ...record, command: 'node' }), JSON.stringify({ ...record, startedAt: 'yesterday' })]) {
      assert.equal(parseRunRecord(bad), undefined, bad);
    }
  });

  it('keeps the records of running sidecars and names the stale files', function () {
    const other = { ...record, appId: 'billing', pid: 200 };
    const files = [
      { name: '100.json', text: JSON.stringify(record) },
      { name: '200.json', text: JSON.stringify(other) },
      { name: '300.json', text: JSON.stringify({ ...record, pid: 300 }) },
      { name: '400.json', text: 'not json' },
      // A record in a file named after another pid is no record of that process.
      { name: '500.json', text: JSON.stringify(record) },
    ];
    const { live, stale } = partitionRunRecords(files, (pid) => pid === 100 || pid === 200 || pid === 500);
    assert.deepEqual(live.map((entry) => entry.appId), ['billing', 'orders']);
    assert.deepEqual(stale, ['300.json', '400.json', '500.json']);
  });

  it('lists apps as a table', function () {
    const apps: ListedApp[] = [
      { ...record, health: 'healthy', ageSeconds: 3725 },
      { ...record, appId: 'worker', namespace: 'shop', pid: 7, appPid: undefined, appPort: undefined, command: [], health: 'unreachable', ageSeconds: 5 },
    ];
    assert.deepEqual(runTable(apps), [
      'APP ID         APP PORT  HTTP PORT  GRPC PORT  SIDECAR PID  APP PID  AGE     HEALTH       COMMAND',
      'orders         8080      3500       50001      100          101      1h2m5s  healthy      node app.js',
      'worker (shop)  -         3500       50001      7            -        5s      unreachable',
    ]);
    assert.deepEqual(runTable([]), ['No apps are running under skein run.']);
  });
});
