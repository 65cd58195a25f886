import assert from 'node:assert/strict';
import { Client, credentials, status, type ServiceError } from '@grpc/grpc-js';
import { taskHubService } from '@skein/proto';
import { DaprWorkflowClient, LogLevel, WorkflowRuntime, WorkflowRuntimeStatus, type WorkflowActivityContext, type WorkflowContext } from '@dapr/dapr';
import { Harness, type SidecarHandle } from '../src/harness.js';
import { eventually } from '../src/eventually.js';
import { httpRequest } from '../src/http.js';

const PLACEMENT_ARGS = ['--host-ttl', '2s', '--dissemination-timeout', '4s', '--batch-window', '100ms', '--lease-ttl', '2s'];

/** How often each activity ran, by name and input (at-least-once: a re-run shows here). */
const runs = new Map<string, number>();
const count = (key: string): void => void runs.set(key, (runs.get(key) ?? 0) + 1);

const double = (_ctx: WorkflowActivityContext, n: number): number => {
  count(`double:${n}`);
  return n * 2;
};
const greet = (_ctx: WorkflowActivityContext, name: string): string => `hello ${name}`;
const explode = (_ctx: WorkflowActivityContext, why: string): never => {
  throw new Error(`exploded: ${why}`);
};

const chain = async function* chain(ctx: WorkflowContext, input: number): AsyncGenerator<unknown, number, number> {
  let value = input;
  for (let i = 0; i < 3; i++) value = yield ctx.callActivity(double, value);
  ctx.setCustomStatus(`doubled three times to ${value}`);
  return value;
};

const fanOut = async function* fanOut(ctx: WorkflowContext, n: number): AsyncGenerator<unknown, number, number[]> {
  const results = yield ctx.whenAll(Array.from({ length: n }, (_, i) => ctx.callActivity(double, i + 1000)));
  return results.reduce((sum, value) => sum + value, 0);
};

const approval = async function* approval(ctx: WorkflowContext, who: string): AsyncGenerator<unknown, string, unknown> {
  // The first event may arrive before the workflow waits for it: it is kept.
  const early = (yield ctx.waitForExternalEvent('early')) as string;
  yield ctx.createTimer(1);
  const decision = (yield ctx.whenAny([ctx.waitForExternalEvent('approve'), ctx.createTimer(60)]));
  const greeting = (yield ctx.callActivity(greet, who)) as string;
  return `${greeting}; early=${early}; approved=${decision !== undefined}`;
};

const parent = async function* parent(ctx: WorkflowContext, n: number): AsyncGenerator<unknown, number[], number> {
  const first = yield ctx.callChildWorkflow(chain, n, `${ctx.getWorkflowInstanceId()}-child`);
  const second = yield ctx.callChildWorkflow(chain, n + 1);
  return [first, second];
};

const failing = async function* failing(ctx: WorkflowContext): AsyncGenerator<unknown, string, string> {
  return yield ctx.callActivity(explode, 'on purpose');
};

const waitsForever = async function* waitsForever(ctx: WorkflowContext): AsyncGenerator<unknown, string, string> {
  return yield ctx.waitForExternalEvent('never');
};

/** Takes six `part` events and returns the total of their lengths. */
const collector = async function* collector(ctx: WorkflowContext): AsyncGenerator<unknown, number, string> {
  let total = 0;
  for (let i = 0; i < 6; i++) total += (yield ctx.waitForExternalEvent('part')).length;
  return total;
};

const counter = async function* counter(ctx: WorkflowContext, n: number): AsyncGenerator<unknown, number, unknown> {
  yield ctx.createTimer(0);
  if (n < 3) {
    ctx.continueAsNew(n + 1, false);
    return n;
  }
  return n;
};

describe('workflows: Dapr\'s workflow SDK (@dapr/dapr WorkflowRuntime and DaprWorkflowClient) against the sidecar', function () {
  this.timeout(60_000);
  const harness = new Harness();
  let sidecar: SidecarHandle;
  let runtime: WorkflowRuntime;
  let client: DaprWorkflowClient;
  let daprPort: string;

  before(async function () {
    await harness.controlPlane();
    const placement = await harness.placement('wf', PLACEMENT_ARGS);
    await placement.proc.waitForRecord('became leader');
    sidecar = await harness.sidecar({ appId: 'orders', args: ['--placement-address', placement.address] });
    const ready = await sidecar.proc.waitForRecord('ready', { what: 'sidecar' });
    daprPort = String(ready['grpcPort']);
    runtime = new WorkflowRuntime({ daprHost: '127.0.0.1', daprPort, logger: { level: LogLevel.Error } })
      .registerWorkflow(chain)
      .registerWorkflow(fanOut)
      .registerWorkflow(approval)
      .registerWorkflow(parent)
      .registerWorkflow(failing)
      .registerWorkflow(waitsForever)
      .registerWorkflow(counter)
      .registerWorkflow(collector)
      .registerActivity(double)
      .registerActivity(greet)
      .registerActivity(explode);
    await runtime.start();
    client = new DaprWorkflowClient({ daprHost: '127.0.0.1', daprPort, logger: { level: LogLevel.Error } });
    // The workflow actor type is placed once the worker has connected: the first start may need a moment.
    await sidecar.proc.waitForRecord('workflow worker connected');
  });

  /** Suspend and resume are recorded asynchronously: wait until the client reads `status`. */
  const eventuallyStatus = (id: string, status: WorkflowRuntimeStatus): Promise<true> =>
    eventually(async () => ((await client.getWorkflowState(id, false))?.runtimeStatus === status ? true : undefined), 10_000, `instance ${id} to be ${String(status)}`);

  after(async function () {
    await client?.stop().catch(() => undefined);
    await runtime?.stop().catch(() => undefined);
    await harness.cleanup();
  });

  it('runs chained activities to completion: output, custom status and timestamps through the SDK client', async function () {
    const id = await eventually(() => client.scheduleNewWorkflow(chain, 5), 20_000, 'the workflow actor type to be placed');
    const state = await client.waitForWorkflowCompletion(id, true, 30);
    assert.ok(state);
    assert.equal(state.runtimeStatus, WorkflowRuntimeStatus.COMPLETED);
    assert.equal(state.name, 'chain');
    assert.equal(state.serializedInput, '5');
    assert.equal(state.serializedOutput, '40');
    assert.equal(state.customStatus, 'doubled three times to 40');
    assert.ok(state.createdAt.getTime() <= state.lastUpdatedAt.getTime());
    assert.deepEqual([runs.get('double:5'), runs.get('double:10'), runs.get('double:20')], [1, 1, 1]);
  });

  it('fans out 1,000 activities and fans them back in', async function () {
    const id = await client.scheduleNewWorkflow(fanOut, 1000);
    const state = await client.waitForWorkflowCompletion(id, true, 30);
    assert.equal(state?.runtimeStatus, WorkflowRuntimeStatus.COMPLETED);
    const expected = Array.from({ length: 1000 }, (_, i) => (i + 1000) * 2).reduce((a, b) => a + b, 0);
    assert.equal(state?.serializedOutput, String(expected));
  });

  it('runs 300 workflows started at once to completion (the sidecar never sends a worker more than it can hold)', async function () {
    const ids = await Promise.all(Array.from({ length: 300 }, (_, i) => client.scheduleNewWorkflow(chain, i + 1)));
    const states = await Promise.all(ids.map((id) => client.waitForWorkflowCompletion(id, true, 50)));
    assert.deepEqual(states.map((state) => state?.serializedOutput), ids.map((_, i) => String((i + 1) * 8)));
  });

  it('keeps an external event raised before the workflow waits for it, fires durable timers, and takes a later event', async function () {
    const id = await client.scheduleNewWorkflow(approval, 'ada');
    await client.raiseEvent(id, 'early', 'first');
    await client.waitForWorkflowStart(id, false, 10);
    // Raised while the workflow still sleeps on its 1 s timer, or already waits: either way it is delivered.
    await client.raiseEvent(id, 'approve', true);
    const state = await client.waitForWorkflowCompletion(id, true, 30);
    assert.equal(state?.runtimeStatus, WorkflowRuntimeStatus.COMPLETED);
    assert.equal(state?.serializedOutput, '"hello ada; early=first; approved=true"');
  });

  it('runs child workflows, with a given and a generated instance id, and returns their results to the parent', async function () {
    const id = await client.scheduleNewWorkflow(parent, 1, 'parent-1');
    const state = await client.waitForWorkflowCompletion(id, true, 30);
    assert.equal(state?.runtimeStatus, WorkflowRuntimeStatus.COMPLETED);
    assert.equal(state?.serializedOutput, '[8,16]');
    const child = await client.getWorkflowState('parent-1-child', true);
    assert.equal(child?.runtimeStatus, WorkflowRuntimeStatus.COMPLETED);
    assert.equal(child?.serializedOutput, '8');
  });

  it('fails the workflow with the activity\'s error when an activity throws', async function () {
    const id = await client.scheduleNewWorkflow(failing);
    const state = await client.waitForWorkflowCompletion(id, true, 30);
    assert.equal(state?.runtimeStatus, WorkflowRuntimeStatus.FAILED);
    assert.match(state?.workflowFailureDetails?.getErrorMessage() ?? '', /exploded: on purpose/);
  });

  it('continues as new until done, keeping one instance id', async function () {
    const id = await client.scheduleNewWorkflow(counter, 0);
    const state = await client.waitForWorkflowCompletion(id, true, 30);
    assert.equal(state?.runtimeStatus, WorkflowRuntimeStatus.COMPLETED);
    assert.equal(state?.serializedOutput, '3');
    assert.equal(state?.serializedInput, '3');
  });

  it('suspends, resumes and terminates an instance; purges it afterwards', async function () {
    const id = await client.scheduleNewWorkflow(waitsForever);
    await client.waitForWorkflowStart(id, false, 10);
    await client.suspendWorkflow(id);
    await eventuallyStatus(id, WorkflowRuntimeStatus.SUSPENDED);
    await client.resumeWorkflow(id);
    await eventuallyStatus(id, WorkflowRuntimeStatus.RUNNING);
    await client.terminateWorkflow(id, 'stopped by the test');
    const state = await client.waitForWorkflowCompletion(id, true, 30);
    assert.equal(state?.runtimeStatus, WorkflowRuntimeStatus.TERMINATED);
    assert.equal(await client.purgeWorkflow(id), true);
    assert.equal(await client.getWorkflowState(id, false), undefined);
    assert.equal(await client.purgeWorkflow(id), false);
  });

  it("lists instance ids a page at a time and returns an instance's raw history over gRPC (Dapr 1.17's ListInstanceIDs, GetInstanceHistory)", async function () {
    const raw = new Client(`127.0.0.1:${daprPort}`, credentials.createInsecure());
    const call = <Req, Res>(method: { path: string; requestSerialize: (value: Req) => Buffer; responseDeserialize: (bytes: Buffer) => Res }, request: Req): Promise<Res> =>
      new Promise((resolve, reject) => raw.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, request, (error: ServiceError | null, response?: Res) => (error ? reject(error) : resolve(response as Res))));
    try {
      const ids = ['list-a', 'list-b', 'list-c'];
      for (const id of ids) await client.scheduleNewWorkflow(chain, 1, id);
      for (const id of ids) await client.waitForWorkflowCompletion(id, false, 30);
      const seen: string[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const page = await call(taskHubService.listInstanceIDs, { pageSize: 100, ...(token ? { continuationToken: token } : {}) });
        assert.ok((page.instanceIds ?? []).length <= 100, 'a page holds at most pageSize ids');
        seen.push(...(page.instanceIds ?? []));
        token = page.continuationToken ?? undefined;
        pages++;
      } while (token && pages < 1000);
      assert.ok(pages > 1, `the earlier tests left more than a page of instances (${seen.length} in ${pages} page(s))`);
      assert.deepEqual(seen, [...seen].sort(), 'ordered by id');
      assert.equal(new Set(seen).size, seen.length, 'no id twice across pages');
      for (const id of ids) assert.ok(seen.includes(id), `${id} listed`);
      const history = await call(taskHubService.getInstanceHistory, { instanceId: 'list-b' });
      const kinds = (history.events ?? []).map((event) => Object.keys(event).find((key) => key !== 'eventId' && key !== 'timestamp'));
      assert.equal(kinds[0], 'orchestratorStarted');
      assert.ok(kinds.includes('executionStarted'));
      assert.equal(kinds.filter((kind) => kind === 'taskScheduled').length, 3);
      assert.equal(kinds.filter((kind) => kind === 'taskCompleted').length, 3);
      assert.equal(kinds[kinds.length - 1], 'executionCompleted');
      await assert.rejects(call(taskHubService.getInstanceHistory, { instanceId: 'never-was' }), (error: ServiceError) => error.code === status.NOT_FOUND && /unable to find workflow with ID 'never-was'/.test(error.details));
    } finally {
      raw.close();
    }
  });

  it('takes waiting events that together pass what one step may record over several steps: six 200 KB events before a scheduled start', async function () {
    // A scheduled start: the events wait in the inbox until it is due, and the first step finds all of them.
    const id = await client.scheduleNewWorkflow(collector, undefined, undefined, new Date(Date.now() + 1500));
    const part = 'x'.repeat(200 * 1024);
    // As JSON strings: 200 KiB of payload each, 1.2 MB together, more than one step's record holds.
    for (let i = 0; i < 6; i++) await client.raiseEvent(id, 'part', part);
    assert.equal((await client.getWorkflowState(id, false))?.runtimeStatus, WorkflowRuntimeStatus.PENDING, 'all six arrived before the start was due');
    const state = await client.waitForWorkflowCompletion(id, true, 30);
    assert.equal(state?.runtimeStatus, WorkflowRuntimeStatus.COMPLETED, state?.workflowFailureDetails?.getErrorMessage());
    assert.equal(state?.serializedOutput, String(6 * part.length));
  });

  it('refuses to start over an active instance id, and says which', async function () {
    const id = await client.scheduleNewWorkflow(waitsForever, undefined, 'busy-1');
    await assert.rejects(client.scheduleNewWorkflow(waitsForever, undefined, id), /an active workflow with ID 'busy-1' already exists/);
    await client.terminateWorkflow(id, null);
    await client.waitForWorkflowCompletion(id, false, 30);
  });

  it('serves Dapr\'s HTTP workflow API: start with instanceID, get, list, history, and Dapr\'s errors', async function () {
    const started = await httpRequest(`${sidecar.url}/v1.0-beta1/workflows/dapr/chain/start?instanceID=http-1`, { method: 'POST', body: '4' });
    assert.equal(started.status, 202, started.body);
    assert.deepEqual(started.json(), { instanceID: 'http-1' });
    await client.waitForWorkflowCompletion('http-1', false, 30);
    const got = await httpRequest(`${sidecar.url}/v1.0/workflows/dapr/http-1`);
    assert.equal(got.status, 200, got.body);
    const body = got.json<{ instanceID: string; workflowName: string; runtimeStatus: string; createdAt: string; lastUpdatedAt: string; properties: Record<string, string> }>();
    assert.equal(body.instanceID, 'http-1');
    assert.equal(body.workflowName, 'chain');
    assert.equal(body.runtimeStatus, 'COMPLETED');
    assert.ok(!Number.isNaN(Date.parse(body.createdAt)) && !Number.isNaN(Date.parse(body.lastUpdatedAt)));
    assert.equal(body.properties['dapr.workflow.input'], '4');
    assert.equal(body.properties['dapr.workflow.output'], '32');
    const list = (await httpRequest(`${sidecar.url}/v1.0-beta1/workflows/dapr?name=chain&status=COMPLETED`)).json<{ instances: Array<{ instanceID: string }> }>();
    assert.ok(list.instances.some((instance) => instance.instanceID === 'http-1'), JSON.stringify(list));
    const history = (await httpRequest(`${sidecar.url}/v1.0-beta1/workflows/dapr/http-1/history`)).json<{ events: Array<{ kind: string }> }>();
    assert.deepEqual([...new Set(history.events.map((event) => event.kind))], ['executionStarted', 'taskScheduled', 'taskCompleted', 'executionCompleted']);
    for (const [path, status, code] of [
      ['/v1.0-beta1/workflows/dapr/chain/start?instanceID=bad%20id!', 400, 'ERR_INSTANCE_ID_INVALID'],
      [`/v1.0-beta1/workflows/dapr/chain/start?instanceID=${'x'.repeat(65)}`, 400, 'ERR_INSTANCE_ID_TOO_LONG'],
      ['/v1.0-beta1/workflows/dapr/no-such-instance', 404, 'ERR_INSTANCE_ID_NOT_FOUND'],
    ] as const) {
      const res = await httpRequest(`${sidecar.url}${path}`, { method: path.includes('/start') ? 'POST' : 'GET' });
      assert.equal(res.status, status, `${path}: ${res.body}`);
      assert.equal(res.json<{ errorCode: string }>().errorCode, code, path);
    }
    const busy = `${sidecar.url}/v1.0-beta1/workflows/dapr/waitsForever/start?instanceID=http-busy`;
    assert.equal((await httpRequest(busy, { method: 'POST' })).status, 202);
    const again = await httpRequest(busy, { method: 'POST' });
    assert.equal(again.status, 500, again.body);
    assert.deepEqual(again.json(), { errorCode: 'ERR_START_WORKFLOW', message: "an active workflow with ID 'http-busy' already exists" });
    assert.equal((await httpRequest(`${sidecar.url}/v1.0-beta1/workflows/dapr/http-busy/terminate`, { method: 'POST' })).status, 202);
    assert.equal((await client.waitForWorkflowCompletion('http-busy', false, 30))?.runtimeStatus, WorkflowRuntimeStatus.TERMINATED);
  });

  it('answers an unknown instance id as not existing', async function () {
    assert.equal(await client.getWorkflowState('no-such-instance', false), undefined);
  });

});
