import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaprWorkflowClient, LogLevel, WorkflowRuntimeStatus } from '@dapr/dapr';
import { Harness, TEST_APPS, type SidecarHandle } from '../src/harness.js';
import type { ManagedProcess } from '../src/process.js';
import { eventually } from '../src/eventually.js';

const PLACEMENT_ARGS = ['--host-ttl', '2s', '--dissemination-timeout', '4s', '--batch-window', '100ms', '--lease-ttl', '2s'];
const APP = 'checkout';

describe('workflows: a sidecar and its app SIGKILLed while an activity runs', function () {
  this.timeout(90_000);
  const harness = new Harness();
  let placementAddress = '';
  let client: DaprWorkflowClient;

  async function grpcPortOf(sidecar: SidecarHandle): Promise<string> {
    const ready = await sidecar.proc.waitForRecord('ready', { what: 'sidecar' });
    return String(ready['grpcPort']);
  }

  /** A sidecar of the app and, beside it, the app's workflow worker (a separate process, as a real app is). */
  async function host(attemptsFile: string, hangFirst: boolean): Promise<{ sidecar: SidecarHandle; worker: ManagedProcess }> {
    const sidecar = await harness.sidecar({ appId: APP, args: ['--placement-address', placementAddress] });
    const worker = harness.start(`worker ${APP}`, process.execPath, [join(TEST_APPS, 'workflow-worker.js')], {
      env: { DAPR_GRPC_PORT: await grpcPortOf(sidecar), ATTEMPTS_FILE: attemptsFile, HANG_FIRST_ATTEMPT: hangFirst ? '1' : '0' },
    });
    await sidecar.proc.waitForRecord('workflow worker connected');
    return { sidecar, worker };
  }

  before(async function () {
    await harness.controlPlane();
    const placement = await harness.placement('wf-restarts', PLACEMENT_ARGS);
    await placement.proc.waitForRecord('became leader');
    placementAddress = placement.address;
    // The client's sidecar hosts no worker, so the instance lives on the sidecar that is killed.
    const front = await harness.sidecar({ appId: APP, args: ['--placement-address', placementAddress] });
    client = new DaprWorkflowClient({ daprHost: '127.0.0.1', daprPort: await grpcPortOf(front), logger: { level: LogLevel.Error } });
  });

  after(async function () {
    await client?.stop().catch(() => undefined);
    await harness.cleanup();
  });

  it('completes the instance on a new sidecar after the restart, the activity having run again', async function () {
    const attemptsFile = join(harness.dir('wf-attempts'), 'attempts');
    const first = await host(attemptsFile, true);
    const id = await eventually(() => client.scheduleNewWorkflow('checkout', 'order-7'), 20_000, 'the workflow actor type to be placed');
    await first.worker.waitFor((line) => line.includes('"attempt":1'));
    await first.worker.kill();
    await first.sidecar.proc.kill();

    const second = await host(attemptsFile, true);
    const state = await client.waitForWorkflowCompletion(id, true, 60);
    assert.equal(state?.runtimeStatus, WorkflowRuntimeStatus.COMPLETED);
    assert.equal(state?.serializedOutput, '"charged order-7"');
    // At least once: the attempt cut by the crash, then the one that finished.
    assert.deepEqual(readFileSync(attemptsFile, 'utf8').split('\n').filter(Boolean), ['order-7', 'order-7']);
    await second.worker.stop();
  });
});
