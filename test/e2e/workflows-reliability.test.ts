import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Client, Metadata, credentials, type ClientReadableStream } from '@grpc/grpc-js';
import { DaprWorkflowClient, LogLevel, WorkflowRuntimeStatus } from '@dapr/dapr';
import { durabletask as dt, taskHubService } from '@skein/proto';
import { Harness, TEST_APPS, type NatsHandle, type SidecarHandle } from '../src/harness.js';
import type { ManagedProcess } from '../src/process.js';
import { eventually } from '../src/eventually.js';
import { httpRequest } from '../src/http.js';

const PLACEMENT_ARGS = ['--host-ttl', '2s', '--dissemination-timeout', '4s', '--batch-window', '100ms', '--lease-ttl', '2s'];
const LIMIT = 256 * 1024;
const API = '/v1.0-beta1/workflows/dapr';

/**
 * What the test's workflows wait on: `step` activities and `held` orchestrations GET `<url>/<what>` and are answered
 * only once the test opens the gate. Each arrival is kept with the worker that made it.
 */
class Gate {
  readonly arrivals: Array<{ what: string; worker: string }> = [];
  private readonly held: ServerResponse[] = [];
  private readonly listeners = new Set<() => void>();
  private opened = false;
  private readonly server: Server;
  url = '';

  constructor() {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://gate');
      this.arrivals.push({ what: decodeURIComponent(url.pathname.slice(1)), worker: url.searchParams.get('worker') ?? '' });
      if (this.opened) res.end('open');
      else this.held.push(res);
      for (const listener of [...this.listeners]) listener();
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Resolves once the arrivals satisfy `enough` (checked on every arrival); rejects after `timeoutMs`. */
  until(enough: (arrivals: ReadonlyArray<{ what: string; worker: string }>) => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    if (enough(this.arrivals)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; arrivals: ${JSON.stringify(this.arrivals.slice(-20))}`));
      }, timeoutMs);
      const check = (): void => {
        if (!enough(this.arrivals)) return;
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve();
      };
      this.listeners.add(check);
    });
  }

  /** Lets everything held through, and everything that comes later. */
  open(): void {
    this.opened = true;
    for (const res of this.held.splice(0)) res.end('open');
  }

  async close(): Promise<void> {
    for (const res of this.held.splice(0)) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

interface HistoryEventJson {
  eventId: number;
  timestamp: string;
  kind: string;
  details: Record<string, unknown>;
}

async function historyOf(sidecar: SidecarHandle, id: string): Promise<HistoryEventJson[]> {
  const res = await httpRequest(`${sidecar.url}${API}/${id}/history`);
  assert.equal(res.status, 200, res.body);
  return res.json<{ events: HistoryEventJson[] }>().events;
}

/** The raw `GetWorkItems` stream of a worker that takes work items and never answers one. */
function silentWorker(grpcPort: string): { received: dt.IWorkItem[]; firstItem: Promise<dt.IWorkItem>; close(): void } {
  const client = new Client(`127.0.0.1:${grpcPort}`, credentials.createInsecure());
  const method = taskHubService.getWorkItems;
  const stream: ClientReadableStream<dt.IWorkItem> = client.makeServerStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, {}, new Metadata());
  const received: dt.IWorkItem[] = [];
  const firstItem = new Promise<dt.IWorkItem>((resolve, reject) => {
    stream.on('data', (item: dt.IWorkItem) => {
      received.push(item);
      resolve(item);
    });
    stream.on('error', (error: Error) => {
      if (!/CANCELLED/.test(error.message)) reject(error);
    });
  });
  firstItem.catch(() => undefined);
  return {
    received,
    firstItem,
    close() {
      stream.cancel();
      client.close();
    },
  };
}

describe('workflows: reliability and bad input, with real processes', function () {
  this.timeout(60_000);
  const harness = new Harness();
  let nats: NatsHandle;
  let placementAddress = '';
  /** Clients and gates of the running test, closed after it. */
  let clients: DaprWorkflowClient[] = [];
  let gates: Gate[] = [];
  /** Processes of the running test, killed after it (the machine is small: no test leaves its processes running). */
  let running: ManagedProcess[] = [];

  async function grpcPortOf(sidecar: SidecarHandle): Promise<string> {
    const ready = await sidecar.proc.waitForRecord('ready', { what: 'sidecar' });
    return String(ready['grpcPort']);
  }

  function clientOf(grpcPort: string): DaprWorkflowClient {
    const client = new DaprWorkflowClient({ daprHost: '127.0.0.1', daprPort: grpcPort, logger: { level: LogLevel.Error } });
    clients.push(client);
    return client;
  }

  async function gate(): Promise<Gate> {
    const created = await new Gate().listen();
    gates.push(created);
    return created;
  }

  /** A sidecar of `appId`, without a worker (a client's front door, or a raw worker's). */
  async function sidecarOf(appId: string, args: string[] = []): Promise<{ sidecar: SidecarHandle; grpcPort: string }> {
    const sidecar = await harness.sidecar({ appId, args: ['--placement-address', placementAddress, ...args] });
    running.push(sidecar.proc);
    return { sidecar, grpcPort: await grpcPortOf(sidecar) };
  }

  /** A sidecar of `appId` and, beside it, the test's workflow worker app as a separate process, connected. */
  async function host(appId: string, workerName: string, gateUrl?: string, args: string[] = []): Promise<{ sidecar: SidecarHandle; worker: ManagedProcess; grpcPort: string }> {
    const { sidecar, grpcPort } = await sidecarOf(appId, args);
    const worker = harness.start(`worker ${workerName}`, process.execPath, [join(TEST_APPS, 'workflow-worker.js')], {
      env: { DAPR_GRPC_PORT: grpcPort, WORKER_NAME: workerName, ...(gateUrl ? { GATE_URL: gateUrl } : {}) },
    });
    running.push(worker);
    await sidecar.proc.waitForRecord('workflow worker connected');
    return { sidecar, worker, grpcPort };
  }

  /** Schedules once the app's workflow actor type is placed (a moment after its first worker connects). */
  const schedule = (client: DaprWorkflowClient, name: string, input: unknown, id: string): Promise<string> =>
    eventually(() => client.scheduleNewWorkflow(name, input, id), 20_000, `workflow ${id} to be accepted`);

  before(async function () {
    ({ nats } = await harness.controlPlane());
    const placement = await harness.placement('wf-reliability', PLACEMENT_ARGS);
    await placement.proc.waitForRecord('became leader');
    placementAddress = placement.address;
  });

  afterEach(async function () {
    await Promise.all(clients.splice(0).map((client) => client.stop().catch(() => undefined)));
    await Promise.all(gates.splice(0).map((opened) => opened.close()));
    await Promise.all(running.splice(0).map((proc) => proc.kill()));
    clients = [];
    gates = [];
    running = [];
  });

  after(async function () {
    await harness.cleanup();
  });

  it('completes 20 workflows whose activities were in flight while nats-server was stopped and started again', async function () {
    const held = await gate();
    const { sidecar, grpcPort } = await host('wf-nats', 'only', held.url);
    const client = clientOf(grpcPort);
    const ids = Array.from({ length: 20 }, (_, i) => `nats-${i}`);
    for (const id of ids) await schedule(client, 'relay', id, id);
    await held.until((arrivals) => arrivals.length >= 10, 'ten activities at the gate');

    await nats.stop();
    // The activities answer while JetStream is down: their results cannot be recorded then.
    held.open();
    await nats.start();

    for (const id of ids) {
      const state = await client.waitForWorkflowCompletion(id, true, 50);
      assert.equal(state?.runtimeStatus, WorkflowRuntimeStatus.COMPLETED, `${id}: ${JSON.stringify(state?.workflowFailureDetails)}`);
      assert.equal(state?.serializedOutput, JSON.stringify(`${id}!!`), id);
    }
    const got = await httpRequest(`${sidecar.url}/v1.0/workflows/dapr/nats-7`);
    assert.equal(got.status, 200, got.body);
    assert.equal(got.json<{ runtimeStatus: string }>().runtimeStatus, 'COMPLETED');
  });

  it('fires a durable timer after its sidecar and worker were SIGKILLed, on the new sidecar, not before it was due', async function () {
    const front = await sidecarOf('wf-timer');
    const client = clientOf(front.grpcPort);
    const first = await host('wf-timer', 'first');
    const id = await schedule(client, 'timed', 3, 'timer-1');
    const created = await eventually(async () => (await historyOf(front.sidecar, id)).find((event) => event.kind === 'timerCreated'), 20_000, 'the timer to be created');
    const fireAt = Date.parse(String(created.details['fireAt']));
    assert.ok(fireAt > Date.now(), 'the timer is still pending when its sidecar is killed');
    await first.worker.kill();
    await first.sidecar.proc.kill();

    await host('wf-timer', 'second');
    const state = await client.waitForWorkflowCompletion(id, true, 40);
    assert.equal(state?.runtimeStatus, WorkflowRuntimeStatus.COMPLETED, JSON.stringify(state?.workflowFailureDetails));
    assert.equal(state?.serializedOutput, '"slept 3 s"');
    const history = await historyOf(front.sidecar, id);
    const fired = history.filter((event) => event.kind === 'timerFired');
    const completed = history.filter((event) => event.kind === 'executionCompleted');
    assert.equal(fired.length, 1, JSON.stringify(history));
    assert.equal(completed.length, 1, JSON.stringify(history));
    assert.ok(Date.parse(fired[0]?.timestamp ?? '') >= fireAt, `fired at ${fired[0]?.timestamp}, due at ${new Date(fireAt).toISOString()}`);
    assert.ok(Date.parse(completed[0]?.timestamp ?? '') >= fireAt, `completed at ${completed[0]?.timestamp}, due at ${new Date(fireAt).toISOString()}`);
  });

  it('shares 50 workflows between two instances of one App ID, and finishes all of them on the survivor when one is SIGKILLed', async function () {
    const held = await gate();
    const [doomed, survivor] = await Promise.all([host('wf-pair', 'doomed', held.url), host('wf-pair', 'survivor', held.url)]);
    const client = clientOf(survivor.grpcPort);
    const ids = Array.from({ length: 50 }, (_, i) => `pair-${i}`);
    for (const id of ids) await schedule(client, 'relay', id, id);
    await held.until((arrivals) => arrivals.some((a) => a.worker === 'doomed') && arrivals.some((a) => a.worker === 'survivor'), 'both workers to run activities');

    await doomed.worker.kill();
    await doomed.sidecar.proc.kill();
    held.open();

    for (const id of ids) {
      const state = await client.waitForWorkflowCompletion(id, true, 50);
      assert.equal(state?.runtimeStatus, WorkflowRuntimeStatus.COMPLETED, `${id}: ${JSON.stringify(state?.workflowFailureDetails)}`);
      assert.equal(state?.serializedOutput, JSON.stringify(`${id}!!`), id);
    }
    const ranOn = (name: string): number => held.arrivals.filter((a) => a.worker === name).length;
    assert.ok(ranOn('doomed') > 0 && ranOn('survivor') > 0, JSON.stringify({ doomed: ranOn('doomed'), survivor: ranOn('survivor') }));
    // Each worker says so on its own output too.
    assert.ok(doomed.worker.lines.some((line) => line.includes('"worker":"doomed"')));
    assert.ok(survivor.worker.lines.some((line) => line.includes('"worker":"survivor"')));
  });

  it('completes an instance exactly once on the new owner when its sidecar is SIGKILLed while the worker replays it', async function () {
    const held = await gate();
    const front = await sidecarOf('wf-replay');
    const client = clientOf(front.grpcPort);
    const first = await host('wf-replay', 'first', held.url);
    const id = await schedule(client, 'held', 'order', 'replay-1');
    await client.waitForWorkflowStart(id, false, 20);
    await client.raiseEvent(id, 'go', 'now');
    // The step after the event is at the worker, held there: the instance is mid-replay when its sidecar dies.
    await held.until((arrivals) => arrivals.some((a) => a.what === `held-${id}` && a.worker === 'first'), 'the orchestration step to reach the gate');
    await first.worker.kill();
    await first.sidecar.proc.kill();

    held.open();
    await host('wf-replay', 'second', held.url);
    const state = await client.waitForWorkflowCompletion(id, true, 40);
    assert.equal(state?.runtimeStatus, WorkflowRuntimeStatus.COMPLETED, JSON.stringify(state?.workflowFailureDetails));
    assert.equal(state?.serializedOutput, '"order-now!"');
    const kinds = (await historyOf(front.sidecar, id)).map((event) => event.kind);
    assert.deepEqual(kinds.filter((kind) => kind === 'executionCompleted'), ['executionCompleted'], JSON.stringify(kinds));
    assert.deepEqual(kinds.filter((kind) => kind === 'eventRaised'), ['eventRaised'], JSON.stringify(kinds));
    assert.deepEqual(kinds.filter((kind) => kind === 'taskCompleted'), ['taskCompleted'], JSON.stringify(kinds));
  });

  describe('bad input: a precise error each time, and the sidecar keeps serving', function () {
    let sidecar: SidecarHandle;
    let client: DaprWorkflowClient;
    /** One sidecar and worker for all of these: kept out of the per-test cleanup, stopped after the last. */
    let kept: { processes: ManagedProcess[]; clients: DaprWorkflowClient[] } = { processes: [], clients: [] };

    before(async function () {
      const hosted = await host('wf-input', 'input');
      sidecar = hosted.sidecar;
      client = clientOf(hosted.grpcPort);
      await schedule(client, 'relay', 'warm-up', 'warm-up');
      kept = { processes: running.splice(0), clients: clients.splice(0) };
    });

    after(async function () {
      await Promise.all(kept.clients.map((kClient) => kClient.stop().catch(() => undefined)));
      await Promise.all(kept.processes.map((proc) => proc.kill()));
    });

    /** The sidecar still runs a workflow end to end, over gRPC and HTTP. */
    async function stillServes(id: string): Promise<void> {
      await client.scheduleNewWorkflow('relay', id, id);
      const state = await client.waitForWorkflowCompletion(id, true, 30);
      assert.equal(state?.serializedOutput, JSON.stringify(`${id}!!`));
      const got = await httpRequest(`${sidecar.url}${API}/${id}`);
      assert.equal(got.status, 200, got.body);
      assert.equal(got.json<{ runtimeStatus: string }>().runtimeStatus, 'COMPLETED');
    }

    it('refuses an input over 256 KiB over HTTP (413 ERR_WORKFLOW_PAYLOAD_TOO_LARGE naming the limit) and over gRPC', async function () {
      const big = JSON.stringify('y'.repeat(LIMIT));
      const res = await httpRequest(`${sidecar.url}${API}/relay/start?instanceID=big-http`, { method: 'POST', body: big });
      assert.equal(res.status, 413, res.body);
      assert.deepEqual(res.json(), { errorCode: 'ERR_WORKFLOW_PAYLOAD_TOO_LARGE', message: `the workflow input is ${LIMIT + 2} bytes, over the limit of ${LIMIT} bytes` });
      await assert.rejects(client.scheduleNewWorkflow('relay', 'y'.repeat(LIMIT), 'big-grpc'), (error: Error) => {
        assert.match(error.message, new RegExp(`the workflow input is ${LIMIT + 2} bytes, over the limit of ${LIMIT} bytes`));
        return true;
      });
      // Neither was started.
      assert.equal((await httpRequest(`${sidecar.url}${API}/big-http`)).status, 404);
      assert.equal(await client.getWorkflowState('big-grpc', false), undefined);
      await stillServes('after-big-input');
    });

    it('fails an activity whose output is over 256 KiB, and with it the workflow, saying so', async function () {
      const id = await client.scheduleNewWorkflow('inflated', LIMIT + 1, 'inflated-1');
      const state = await client.waitForWorkflowCompletion(id, true, 30);
      assert.equal(state?.runtimeStatus, WorkflowRuntimeStatus.FAILED);
      const message = state?.workflowFailureDetails?.getErrorMessage() ?? '';
      assert.ok(message.includes(`the output of activity 'inflate' (task 1) is ${LIMIT + 3} bytes, over the limit of ${LIMIT} bytes`), message);
      const failed = (await historyOf(sidecar, id)).find((event) => event.kind === 'taskFailed');
      assert.equal((failed?.details['failureDetails'] as Record<string, unknown> | undefined)?.['errorType'], 'ERR_WORKFLOW_PAYLOAD_TOO_LARGE', JSON.stringify(failed));
      // Just under the limit is fine.
      const fits = await client.scheduleNewWorkflow('inflated', LIMIT - 2, 'inflated-2');
      const fine = await client.waitForWorkflowCompletion(fits, true, 30);
      assert.equal(fine?.runtimeStatus, WorkflowRuntimeStatus.COMPLETED, JSON.stringify(fine?.workflowFailureDetails));
      assert.equal(fine?.serializedOutput, String(LIMIT - 2));
    });

    it('refuses an event payload over 256 KiB over HTTP and gRPC; the instance takes the next event', async function () {
      const id = await client.scheduleNewWorkflow('approval', 'req-1', 'event-1');
      await client.waitForWorkflowStart(id, false, 20);
      const big = JSON.stringify('z'.repeat(LIMIT));
      const res = await httpRequest(`${sidecar.url}${API}/${id}/raiseEvent/approval`, { method: 'POST', body: big });
      assert.equal(res.status, 413, res.body);
      assert.deepEqual(res.json(), { errorCode: 'ERR_WORKFLOW_PAYLOAD_TOO_LARGE', message: `the workflow event payload is ${LIMIT + 2} bytes, over the limit of ${LIMIT} bytes` });
      await assert.rejects(client.raiseEvent(id, 'approval', 'z'.repeat(LIMIT)), /the workflow event payload is \d+ bytes, over the limit of 262144 bytes/);
      await client.raiseEvent(id, 'approval', 'yes');
      const state = await client.waitForWorkflowCompletion(id, true, 30);
      assert.equal(state?.serializedOutput, JSON.stringify({ request: 'req-1', decision: 'yes' }));
      const raised = (await historyOf(sidecar, id)).filter((event) => event.kind === 'eventRaised');
      assert.equal(raised.length, 1, 'the refused events are not in the history');
    });

    it('refuses malformed instance ids over gRPC as over HTTP (ERR_INSTANCE_ID_INVALID, ERR_INSTANCE_ID_TOO_LONG)', async function () {
      await assert.rejects(client.scheduleNewWorkflow('relay', 'x', 'bad id!'), /workflow instance id 'bad id!' is invalid: only alphanumeric characters, underscores and dashes are allowed/);
      await assert.rejects(client.scheduleNewWorkflow('relay', 'x', 'a.b>'), /workflow instance id 'a.b>' is invalid/);
      await assert.rejects(client.scheduleNewWorkflow('relay', 'x', 'x'.repeat(65)), /workflow instance id exceeds the max length of 64 characters/);
      // Reads and events of an id that cannot exist answer as for any unknown id.
      assert.equal(await client.getWorkflowState('bad id!', false), undefined);
      await assert.rejects(client.raiseEvent('a.b>', 'go', 1), /unable to find workflow with ID 'a.b>'/);
      await stillServes('after-bad-ids');
    });

    it('ends an instance of a workflow the worker does not know FAILED, naming the workflow', async function () {
      const id = await client.scheduleNewWorkflow('noSuchWorkflow', 1, 'unknown-1');
      const state = await client.waitForWorkflowCompletion(id, true, 30);
      assert.equal(state?.runtimeStatus, WorkflowRuntimeStatus.FAILED);
      assert.equal(state?.workflowFailureDetails?.getErrorType(), 'OrchestratorNotRegisteredError');
      assert.match(state?.workflowFailureDetails?.getErrorMessage() ?? '', /Orchestrator 'noSuchWorkflow' does not exist/);
      await stillServes('after-unknown');
    });
  });

  it('sends an orchestration work item no worker answers again after --workflow-work-item-timeout, and completes on a responsive worker', async function () {
    const { sidecar, grpcPort } = await sidecarOf('wf-silent', ['--workflow-work-item-timeout', '2s']);
    const silent = silentWorker(grpcPort);
    try {
      await sidecar.proc.waitForRecord('workflow worker connected');
      const client = clientOf(grpcPort);
      const id = await schedule(client, 'timed', 0, 'silent-1');
      const item = await silent.firstItem;
      assert.equal(item.orchestratorRequest?.instanceId, id);
      const worker = harness.start('worker responsive', process.execPath, [join(TEST_APPS, 'workflow-worker.js')], { env: { DAPR_GRPC_PORT: grpcPort, WORKER_NAME: 'responsive' } });
      running.push(worker);
      const state = await client.waitForWorkflowCompletion(id, true, 30);
      assert.equal(state?.runtimeStatus, WorkflowRuntimeStatus.COMPLETED, JSON.stringify(state?.workflowFailureDetails));
      assert.equal(state?.serializedOutput, '"slept 0 s"');
      const resent = await sidecar.proc.waitForRecord('re-sending an orchestration work item', { instanceId: id });
      assert.equal(resent['reason'], 'no worker answered within 2000 ms');
      assert.equal((await historyOf(sidecar, id)).filter((event) => event.kind === 'executionCompleted').length, 1);
    } finally {
      silent.close();
    }
  });
});
