import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Harness, type ManagedProcess, type SidecarHandle } from '../src/harness.js';

const PLACEMENT_ARGS = ['--host-ttl', '2s', '--dissemination-timeout', '4s', '--batch-window', '100ms', '--lease-ttl', '2s'];
const APP = 'orders';
const WORKFLOW_ACTOR_TYPE = `dapr.internal.default.${APP}.workflow`;
/** The built sample, as a user runs it. */
const WORKER = fileURLToPath(new URL('./worker.js', import.meta.resolve('@skein/sample-order-workflow')));
const STARTER = fileURLToPath(new URL('./start.js', import.meta.resolve('@skein/sample-order-workflow')));

/** One line the sample's worker writes per activity run. */
interface ActivityLine {
  activity: string;
  orderId: string;
  outcome: string;
  left?: number;
}

/** What the sample's starter printed and how it exited. */
interface StarterRun {
  code: number | null;
  result: Record<string, unknown> | undefined;
  output: string;
}

describe('samples/order-workflow: the order saga (official Dapr SDK) under `skein run`, placed by its starter', function () {
  this.timeout(60_000);
  const harness = new Harness();
  let sidecar: SidecarHandle;
  let grpcPort = '';

  /** Runs the sample's starter against the sidecar until it exits (its own --timeout-seconds bounds the wait). */
  async function start(args: string[]): Promise<StarterRun> {
    const proc = harness.start(`start ${args.join(' ')}`, process.execPath, [STARTER, '--timeout-seconds', '20', ...args], { env: { DAPR_GRPC_PORT: grpcPort } });
    // `close` comes after the last output line, which `exit` need not.
    const code = await new Promise<number | null>((resolve) => proc.child.once('close', resolve));
    const line = proc.lines.find((candidate) => candidate.startsWith('{'));
    return { code, result: line === undefined ? undefined : (JSON.parse(line) as Record<string, unknown>), output: proc.output() };
  }

  /** The worker's activity lines for one order, once `last` (the order's final activity) has been written. */
  async function activitiesOf(orderId: string, last: string): Promise<string[]> {
    await sidecar.proc.waitFor((line) => line.startsWith('{"activity"') && activityLine(line).orderId === orderId && activityLine(line).activity === last);
    return linesOf(orderId).map((line) => `${line.activity}:${line.outcome}`);
  }

  function linesOf(orderId: string): ActivityLine[] {
    return sidecar.proc.lines.filter((line) => line.startsWith('{"activity"')).map(activityLine).filter((line) => line.orderId === orderId);
  }

  before(async function () {
    await harness.controlPlane();
    const placement = await harness.placement('orders', PLACEMENT_ARGS);
    await placement.proc.waitForRecord('became leader');
    // SKEIN_LOG=actors: the sidecar says when a placement table places the workflow actor type (the app never sees it).
    sidecar = await harness.sidecar({ appId: APP, args: ['--placement-address', placement.address], command: [process.execPath, WORKER], env: { SKEIN_LOG: 'actors' } });
    const ready = await sidecar.proc.waitForRecord('ready', { what: 'sidecar' });
    grpcPort = String(ready['grpcPort']);
    await sidecar.proc.waitFor((line) => line === '{"orderWorkflow":"started"}');
    await sidecar.proc.waitForRecord('workflow worker connected');
    await sidecar.proc.waitFor((_line, record) => record?.msg === 'placement table installed' && Array.isArray(record['actorTypes']) && record['actorTypes'].includes(WORKFLOW_ACTOR_TYPE));
  });

  after(async function () {
    await harness.cleanup();
  });

  it('ships a good order: reserve, charge and ship done, nothing compensated, exit 0', async function () {
    const run = await start(['--order-id', 'order-happy', '--item', 'widget', '--quantity', '2']);
    assert.equal(run.code, 0, run.output);
    assert.deepEqual(run.result, { orderId: 'order-happy', status: 'shipped', completed: ['reserveInventory', 'chargePayment', 'shipOrder'], compensated: [], trackingNumber: 'track-order-happy' });
    assert.deepEqual(await activitiesOf('order-happy', 'shipOrder'), ['reserveInventory:reserved', 'chargePayment:charged', 'shipOrder:shipped']);
  });

  it('cancels an order whose payment is declined: the workflow completes, inventory is released, nothing ships, exit 3', async function () {
    const run = await start(['--order-id', 'order-declined', '--card', 'declined', '--quantity', '3']);
    assert.equal(run.code, 3, run.output);
    assert.deepEqual(run.result, {
      orderId: 'order-declined',
      status: 'cancelled',
      completed: ['reserveInventory'],
      failedStep: 'chargePayment',
      reason: 'payment of 2500 cents declined',
      compensated: ['releaseInventory'],
    });
    assert.match(run.output, /order order-declined cancelled: chargePayment failed \(payment of 2500 cents declined\); compensated: releaseInventory/);
    assert.deepEqual(await activitiesOf('order-declined', 'releaseInventory'), ['reserveInventory:reserved', 'chargePayment:declined', 'releaseInventory:released']);
    // The stock is back where it was before the reservation.
    const [reserved, released] = [linesOf('order-declined')[0], linesOf('order-declined')[2]];
    assert.equal(released?.left, (reserved?.left ?? Number.NaN) + 3);
  });

  it('cancels an order that cannot be shipped: the compensations run in reverse (refund, then release)', async function () {
    const run = await start(['--order-id', 'order-unshippable', '--ship-to', 'nowhere']);
    assert.equal(run.code, 3, run.output);
    assert.deepEqual(run.result, {
      orderId: 'order-unshippable',
      status: 'cancelled',
      completed: ['reserveInventory', 'chargePayment'],
      failedStep: 'shipOrder',
      reason: 'no carrier delivers to "nowhere"',
      compensated: ['refundPayment', 'releaseInventory'],
    });
    assert.deepEqual(await activitiesOf('order-unshippable', 'releaseInventory'), [
      'reserveInventory:reserved',
      'chargePayment:charged',
      'shipOrder:undeliverable',
      'refundPayment:refunded',
      'releaseInventory:released',
    ]);
  });

  it('refuses bad arguments with exit 2 before reaching the sidecar', async function () {
    const run = await start(['--quantity', '0']);
    assert.equal(run.code, 2);
    assert.equal(run.result, undefined);
    assert.match(run.output, /--quantity must be a positive whole number, not "0"/);
  });

  it('stops the worker cleanly on SIGTERM (exit 0)', async function () {
    // A second worker of the app, run on its own so its exit status is the test's to read.
    const worker: ManagedProcess = harness.start('worker orders', process.execPath, [WORKER], { env: { DAPR_GRPC_PORT: grpcPort } });
    const closed = new Promise<number | null>((resolve) => worker.child.once('close', resolve));
    await worker.waitFor((line) => line === '{"orderWorkflow":"started"}');
    worker.signal('SIGTERM');
    assert.equal(await closed, 0, worker.output());
  });
});

function activityLine(line: string): ActivityLine {
  return JSON.parse(line) as ActivityLine;
}
