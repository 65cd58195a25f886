import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { LogLevel, WorkflowRuntime, type WorkflowActivityContext, type WorkflowContext } from '@dapr/dapr';
import { createCsr, generateKeyPem, signSvid } from '@skein/core';
import { Harness, type SidecarHandle } from '../src/harness.js';
import { eventually } from '../src/eventually.js';
import { httpRequest, type HttpResult } from '../src/http.js';
import { nextDecisions } from '../src/decisions.js';

const PLACEMENT_ARGS = ['--host-ttl', '2s', '--dissemination-timeout', '4s', '--batch-window', '100ms', '--lease-ttl', '2s'];

/** `orders` lets `shop` schedule, read, raise events on and terminate `checkout*` workflows; nothing else. */
const ORDERS_POLICY = `apiVersion: dapr.io/v1alpha1
kind: WorkflowAccessPolicy
metadata:
  name: orders-callers
scopes: [orders]
spec:
  rules:
    - callers:
        - appID: shop
      workflows:
        - name: "checkout*"
          operations: [schedule, get, raise, terminate]
`;

const charge = (_ctx: WorkflowActivityContext, order: string): string => `charged ${order}`;

const checkout = async function* checkout(ctx: WorkflowContext, order: string): AsyncGenerator<unknown, string, unknown> {
  const paid = (yield ctx.waitForExternalEvent('paid')) as string;
  const receipt = (yield ctx.callActivity(charge, order)) as string;
  return `${receipt} (${paid})`;
};

const checkoutHold = async function* checkoutHold(ctx: WorkflowContext): AsyncGenerator<unknown, string, string> {
  return yield ctx.waitForExternalEvent('never');
};

const refund = async function* refund(ctx: WorkflowContext, order: string): AsyncGenerator<unknown, string, string> {
  return yield ctx.callActivity(charge, `refund of ${order}`);
};

interface DaprError {
  errorCode: string;
  message: string;
}

interface StateJson {
  instanceID: string;
  workflowName: string;
  runtimeStatus: string;
  properties: Record<string, string>;
}


const API = '/v1.0-beta1/workflows/dapr';

describe('workflows across apps: ?appID= over the HTTP API, judged by the target\'s WorkflowAccessPolicy', function () {
  this.timeout(90_000);
  const harness = new Harness();
  const runtimes: WorkflowRuntime[] = [];
  let orders: SidecarHandle;
  let billing: SidecarHandle;
  let shop: SidecarHandle;
  let intruder: SidecarHandle;
  let nc: NatsConnection;

  const call = (from: SidecarHandle, verb: string, path: string, body?: string): Promise<HttpResult> =>
    httpRequest(`${from.url}${API}/${path}`, { method: verb, ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }) });
  const stateOf = async (from: SidecarHandle, instanceId: string, appId: string): Promise<StateJson> => {
    const answer = await call(from, 'GET', `${instanceId}?appID=${appId}`);
    assert.equal(answer.status, 200, answer.body);
    return answer.json<StateJson>();
  };
  const eventuallyStatus = (from: SidecarHandle, instanceId: string, appId: string, status: string): Promise<StateJson> =>
    eventually(async () => {
      const state = await stateOf(from, instanceId, appId);
      return state.runtimeStatus === status ? state : undefined;
    }, 20_000, `${appId}'s instance ${instanceId} to be ${status}`);
  const denied = (answer: HttpResult): DaprError => {
    assert.equal(answer.status, 403, answer.body);
    const error = answer.json<DaprError>();
    assert.equal(error.errorCode, 'ERR_WORKFLOW_ACCESS_DENIED');
    return error;
  };
  const decisions = (count: number): ReturnType<typeof nextDecisions> => nextDecisions(nc, 'skein.decisions.default.orders', count, 15_000);

  /** A worker of `appId`'s workflows, in this process, on the app's own sidecar. */
  const worker = async (sidecar: SidecarHandle): Promise<void> => {
    const ready = await sidecar.proc.waitForRecord('ready', { what: 'sidecar' });
    const runtime = new WorkflowRuntime({ daprHost: '127.0.0.1', daprPort: String(ready['grpcPort']), logger: { level: LogLevel.Error } })
      .registerWorkflow(checkout)
      .registerWorkflow(checkoutHold)
      .registerWorkflow(refund)
      .registerActivity(charge);
    runtimes.push(runtime);
    await runtime.start();
    await sidecar.proc.waitForRecord('workflow worker connected');
  };

  before(async function () {
    const { nats } = await harness.controlPlane();
    const placement = await harness.placement('wf', PLACEMENT_ARGS);
    await placement.proc.waitForRecord('became leader');
    const placementArgs = ['--placement-address', placement.address];
    const resources = harness.dir('orders-resources');
    writeFileSync(join(resources, 'orders-callers.yaml'), ORDERS_POLICY);
    // `billing` loads no policy at all: open to every app of the namespace, as in Dapr.
    [orders, billing, shop, intruder] = await Promise.all([
      harness.sidecar({ appId: 'orders', args: [...placementArgs, '--resources-path', resources] }),
      harness.sidecar({ appId: 'billing', args: placementArgs }),
      harness.sidecar({ appId: 'shop', args: placementArgs }),
      harness.sidecar({ appId: 'intruder', args: placementArgs }),
    ]);
    await Promise.all([worker(orders), worker(billing)]);
    const { privateKeyPem } = generateKeyPem();
    const id = { trustDomain: 'public', namespace: 'default', appId: 'observer' };
    nc = await connect({ servers: nats.url, tls: { cert: signSvid(harness.ca, createCsr(privateKeyPem, id.appId), id, 3_600_000), key: privateKeyPem, ca: harness.ca.certPem } });
    // The workflow actor types are placed once their workers have connected.
    for (const appId of ['orders', 'billing']) {
      // The owner answers: 404 (no such instance) from billing, 403 from orders (shop may read only checkouts).
      await eventually(async () => ([403, 404].includes((await call(shop, 'GET', `warm-up?appID=${appId}`)).status) ? true : undefined), 30_000, `${appId}'s workflow actor type to be placed`);
    }
  });

  after(async function () {
    await nc?.close();
    for (const runtime of runtimes) await runtime.stop().catch(() => undefined);
    await harness.cleanup();
  });

  it('lets shop start a checkout on orders (202), raise its event, read it and see it complete', async function () {
    const started = await call(shop, 'POST', 'checkout/start?instanceID=order-1&appID=orders', '"order-1"');
    assert.equal(started.status, 202, started.body);
    assert.deepEqual(started.json(), { instanceID: 'order-1' });
    const running = await eventuallyStatus(shop, 'order-1', 'orders', 'RUNNING');
    assert.equal(running.workflowName, 'checkout');
    const raised = await call(shop, 'POST', 'order-1/raiseEvent/paid?appID=orders', '"card"');
    assert.equal(raised.status, 202, raised.body);
    const done = await eventuallyStatus(shop, 'order-1', 'orders', 'COMPLETED');
    assert.equal(done.properties['dapr.workflow.output'], '"charged order-1 (card)"');
    // The same instance, read on its own app's sidecar.
    assert.equal((await stateOf(orders, 'order-1', 'orders')).runtimeStatus, 'COMPLETED');
  });

  it('lets shop terminate a checkout it may terminate, and refuses the operations the rule leaves out', async function () {
    assert.equal((await call(shop, 'POST', 'checkoutHold/start?instanceID=hold-1&appID=orders')).status, 202);
    await eventuallyStatus(shop, 'hold-1', 'orders', 'RUNNING');
    const paused = denied(await call(shop, 'POST', 'hold-1/pause?appID=orders'));
    assert.match(paused.message, /shop.*pause workflow 'checkoutHold'/);
    denied(await call(shop, 'POST', 'hold-1/purge?appID=orders'));
    assert.equal((await call(shop, 'POST', 'hold-1/terminate?appID=orders')).status, 202);
    await eventuallyStatus(shop, 'hold-1', 'orders', 'TERMINATED');
  });

  it('refuses shop a workflow its rule does not name, and every other app, with 403 ERR_WORKFLOW_ACCESS_DENIED; each decision is published', async function () {
    const published = await decisions(2);
    const refused = denied(await call(shop, 'POST', 'refund/start?instanceID=refund-1&appID=orders', '"order-1"'));
    assert.match(refused.message, /caller shop to schedule workflow 'refund'/);
    const intruded = denied(await call(intruder, 'POST', 'checkout/start?instanceID=intruded-1&appID=orders', '"x"'));
    assert.match(intruded.message, /caller intruder to schedule workflow 'checkout'/);
    const events = await published.events();
    assert.deepEqual(events.map((event) => [event.decision.source, event.decision.allowed, event.decision.caller, event.decision.target, event.decision.method]), [
      ['workflow-policy', false, 'default/shop', 'orders', 'schedule refund'],
      ['workflow-policy', false, 'default/intruder', 'orders', 'schedule checkout'],
    ]);
    // Nothing was started: orders reads no such instances.
    assert.equal((await call(orders, 'GET', 'refund-1')).status, 404);
    assert.equal((await call(orders, 'GET', 'intruded-1')).status, 404);
    denied(await call(intruder, 'GET', 'order-1?appID=orders'));
  });

  it('always lets orders act on its own workflows, the policy notwithstanding', async function () {
    assert.equal((await call(orders, 'POST', 'refund/start?instanceID=refund-own', '"order-1"')).status, 202);
    assert.equal((await call(orders, 'POST', 'refund/start?instanceID=refund-own-2&appID=orders', '"order-2"')).status, 202);
    const done = await eventuallyStatus(orders, 'refund-own', 'orders', 'COMPLETED');
    assert.equal(done.properties['dapr.workflow.output'], '"charged refund of order-1"');
    assert.equal((await call(orders, 'POST', 'refund-own/purge')).status, 202);
  });

  it('lets any app of the namespace act on the workflows of an app that loads no policy (open by default)', async function () {
    assert.equal((await call(intruder, 'POST', 'refund/start?instanceID=open-1&appID=billing', '"b-1"')).status, 202);
    const done = await eventuallyStatus(intruder, 'open-1', 'billing', 'COMPLETED');
    assert.equal(done.properties['dapr.workflow.output'], '"charged refund of b-1"');
    assert.equal((await call(intruder, 'POST', 'open-1/purge?appID=billing')).status, 202);
    assert.equal((await call(billing, 'GET', 'open-1')).status, 404);
  });

  it('answers 400 ERR_WORKFLOW_APP_ID_INVALID for a malformed appID and a clear 503 for an app no sidecar hosts', async function () {
    const malformed = await call(shop, 'POST', 'checkout/start?instanceID=bad-1&appID=orders.prod');
    assert.equal(malformed.status, 400, malformed.body);
    assert.equal(malformed.json<DaprError>().errorCode, 'ERR_WORKFLOW_APP_ID_INVALID');
    const unknown = await call(shop, 'POST', 'checkout/start?instanceID=ghost-1&appID=ghost');
    assert.equal(unknown.status, 503, unknown.body);
    const error = unknown.json<DaprError>();
    assert.equal(error.errorCode, 'ERR_WORKFLOW_NO_WORKER');
    assert.match(error.message, /no sidecar hosts the workflows of app 'ghost'/);
  });

  it("does not list another app's instances (a list reads summaries no policy of that app would judge), nor start over one of its instance ids", async function () {
    const listed = await call(shop, 'GET', '?appID=orders');
    assert.equal(listed.status, 501, listed.body);
    assert.match(listed.json<DaprError>().message, /listing the workflow instances of another app \(orders\) is not served/);
    const first = await call(shop, 'POST', 'checkout/start?instanceID=reuse-1&appID=orders');
    assert.equal(first.status, 202, first.body);
    const again = await call(shop, 'POST', 'checkout/start?instanceID=reuse-1&appID=orders');
    assert.equal(again.status, 403, again.body);
    assert.match(again.json<DaprError>().message, /shop may not start over workflow instance 'reuse-1' of orders/);
  });
});
