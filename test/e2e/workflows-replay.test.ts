import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Harness, TEST_APPS } from '../src/harness.js';
import { eventually } from '../src/eventually.js';

const PLACEMENT_ARGS = ['--host-ttl', '2s', '--dissemination-timeout', '4s', '--batch-window', '100ms', '--lease-ttl', '2s'];

describe('skein workflows replay: a recorded instance through the app\'s own workflow code, nothing run again', function () {
  this.timeout(120_000);
  const harness = new Harness();
  let httpPort = '';
  let grpcPort = '';
  let instanceId = '';
  const replayAttempts = (): string => join(harness.dir('replay-attempts'), 'attempts');

  async function skein(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; output: string }> {
    const proc = harness.skein(name, ['workflows', ...args], { env });
    const { code } = await proc.exited;
    return { code, output: proc.output() };
  }

  before(async function () {
    await harness.controlPlane();
    const placement = await harness.placement('wf-replay', PLACEMENT_ARGS);
    await placement.proc.waitForRecord('became leader');
    const sidecar = await harness.sidecar({ appId: 'orders-replay', args: ['--placement-address', placement.address] });
    httpPort = String(sidecar.httpPort);
    const ready = await sidecar.proc.waitForRecord('ready', { what: 'sidecar' });
    grpcPort = String(ready['grpcPort']);
    harness.start('worker orders-replay', process.execPath, [join(TEST_APPS, 'workflow-worker.js')], {
      env: { DAPR_GRPC_PORT: grpcPort, ATTEMPTS_FILE: join(harness.dir('wf-attempts'), 'attempts'), WORKER_NAME: 'live' },
    });
    await sidecar.proc.waitForRecord('workflow worker connected');
    // `relay` runs the activity `step` twice; its history has three steps.
    const started = await eventually(async () => {
      const result = await skein('start', ['start', 'relay', '--input', '"go"', '--dapr-http-port', httpPort]);
      return result.code === 0 ? result.output.trim().split('\n').at(-1) : undefined;
    }, 30_000, 'the first start');
    instanceId = started ?? '';
    await eventually(async () => {
      const shown = await skein('show', ['show', instanceId, '--json', '--dapr-http-port', httpPort]);
      return shown.code === 0 && shown.output.includes('"COMPLETED"') ? true : undefined;
    }, 30_000, 'the instance to complete');
  });
  after(() => harness.cleanup());

  const replay = (extra: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; output: string }> =>
    skein('replay', ['replay', instanceId, '--dapr-grpc-port', grpcPort, ...extra, '--', process.execPath, join(TEST_APPS, 'workflow-worker.js')], { ATTEMPTS_FILE: replayAttempts(), WORKER_NAME: 'replayer', ...env });

  it('replays the whole history through the app and finds the code does what the record says', async function () {
    const { code, output } = await replay([]);
    assert.equal(code, 0, output);
    // started, step scheduled, step completed, step scheduled, step completed, completed: the last step's action is compared.
    assert.match(output, /replaying 5 of 6 history events of /);
    assert.match(output, /= the code would finish \(ORCHESTRATION_STATUS_COMPLETED\); the record: finish \(ORCHESTRATION_STATUS_COMPLETED\)/);
    assert.match(output, /the replay matches the record/);
    assert.doesNotMatch(output, /"worker":"replayer"/, 'no activity ran during the replay');
    assert.equal(existsSync(replayAttempts()), false);
  });

  it('replays up to a chosen event: the code schedules the second step, as it did', async function () {
    // Event 3 is the first step's result: the code then schedules the second step.
    const { code, output } = await replay(['--until', '3']);
    assert.equal(code, 0, output);
    assert.match(output, /replaying 3 of 6 history events/);
    assert.match(output, /= the code would schedule activity step; the record: schedule activity step/);
    assert.doesNotMatch(output, /"worker":"replayer"/);
  });

  it('finds where changed workflow code parts ways with the record, and exits 3', async function () {
    const { code, output } = await replay(['--until', '3'], { RELAY_CHANGED: '1' });
    assert.equal(code, 3, output);
    assert.match(output, /≠ the code would schedule activity charge; the record: schedule activity step/);
    assert.match(output, /the replay diverged: the code would schedule activity charge, but the recorded run did schedule activity step/);
    assert.equal(existsSync(replayAttempts()), false, 'the changed code ran no activity either');
  });

  it('changes nothing on the real sidecar: the instance is as it was', async function () {
    const history = await skein('history', ['history', instanceId, '--json', '--dapr-http-port', httpPort]);
    assert.equal(history.code, 0, history.output);
    assert.equal(history.output.trim().split('\n').length, 6, history.output);
  });

  it('says clearly when the instance is unknown or the command is missing', async function () {
    const unknown = await skein('replay unknown', ['replay', 'no-such-instance', '--dapr-grpc-port', grpcPort, '--', process.execPath, '-e', '0']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.output, /no-such-instance has no history on the sidecar|cannot read the history of no-such-instance/);
    const bare = await skein('replay bare', ['replay', instanceId, '--dapr-grpc-port', grpcPort]);
    assert.equal(bare.code, 2, bare.output);
    assert.match(bare.output, /give the app's command after --/);
  });
});
