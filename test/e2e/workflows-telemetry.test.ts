import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DaprWorkflowClient, LogLevel, WorkflowRuntime, WorkflowRuntimeStatus, type WorkflowActivityContext, type WorkflowContext } from '@dapr/dapr';
import { mintOperatorTls, parseSpanEvent, readCa, readTelemetry, type SpanEvent, type WorkflowEvent } from '@skein/core';
import { Harness, type SidecarHandle } from '../src/harness.js';
import { eventually } from '../src/eventually.js';
import { httpRequest } from '../src/http.js';

const PLACEMENT_ARGS = ['--host-ttl', '2s', '--dissemination-timeout', '4s', '--batch-window', '100ms', '--lease-ttl', '2s'];

/** Looks like a credential, so a leak into telemetry is easy to spot. */
const SECRET = `sk_live_${randomBytes(12).toString('hex')}`;

const reserve = (_ctx: WorkflowActivityContext, order: { card: string }): string => `reserved for ${order.card}`;
const charge = (_ctx: WorkflowActivityContext, _order: { card: string }): never => {
  throw new Error('the card was declined');
};

/** Reserves, then charges; a declined charge is caught and the order completes as unpaid. */
const checkout = async function* checkout(ctx: WorkflowContext, order: { card: string }): AsyncGenerator<unknown, string, string> {
  const reservation = yield ctx.callActivity(reserve, order);
  try {
    yield ctx.callActivity(charge, order);
    return `paid: ${reservation}`;
  } catch {
    return `unpaid: ${reservation}`;
  }
};

/** Lets the declined charge fail the workflow. */
const doomed = async function* doomed(ctx: WorkflowContext, order: { card: string }): AsyncGenerator<unknown, string, string> {
  return yield ctx.callActivity(charge, order);
};

const TRACED = ['apiVersion: dapr.io/v1alpha1', 'kind: Configuration', 'metadata:', '  name: traced', 'spec:', '  tracing:', '    samplingRate: "1"', ''].join('\n');

describe('workflows: telemetry events and a trace per instance run', function () {
  this.timeout(60_000);
  const harness = new Harness();
  let sidecar: SidecarHandle;
  let runtime: WorkflowRuntime;
  let client: DaprWorkflowClient;
  let nc: NatsConnection;

  before(async function () {
    const { nats } = await harness.controlPlane();
    const placement = await harness.placement('wf', PLACEMENT_ARGS);
    await placement.proc.waitForRecord('became leader');
    const config = join(harness.dir('configs'), 'traced.yaml');
    writeFileSync(config, TRACED);
    sidecar = await harness.sidecar({ appId: 'orders', args: ['--placement-address', placement.address, '--config', config] });
    const ready = await sidecar.proc.waitForRecord('ready', { what: 'sidecar' });
    const daprPort = String(ready['grpcPort']);
    runtime = new WorkflowRuntime({ daprHost: '127.0.0.1', daprPort, logger: { level: LogLevel.Error } }).registerWorkflow(checkout).registerWorkflow(doomed).registerActivity(reserve).registerActivity(charge);
    await runtime.start();
    client = new DaprWorkflowClient({ daprHost: '127.0.0.1', daprPort, logger: { level: LogLevel.Error } });
    await sidecar.proc.waitForRecord('workflow worker connected');
    const tls = mintOperatorTls(readCa(harness.home), 'e2e-observer');
    nc = await connect({ servers: nats.url, tls: { cert: tls.certPem, key: tls.keyPem, ca: tls.caPem } });
  });

  after(async function () {
    await nc?.close();
    await client?.stop().catch(() => undefined);
    await runtime?.stop().catch(() => undefined);
    await harness.cleanup();
  });

  /** Every stored message of `subject`, raw text included (to look for leaks). */
  async function stored(subject: string): Promise<Array<{ data: unknown; raw: string }>> {
    const out: Array<{ data: unknown; raw: string }> = [];
    for await (const item of readTelemetry(nc, { subject })) if (item.kind === 'message') out.push({ data: item.data, raw: JSON.stringify(item.data) });
    return out;
  }

  /** The instance's workflow events, once one of type `last` is among them. */
  function eventsOf(instanceId: string, last: WorkflowEvent['type']): Promise<{ events: WorkflowEvent[]; raw: string[] }> {
    return eventually(async () => {
      const mine = (await stored('skein.workflows.default.orders')).filter(({ data }) => (data as WorkflowEvent).instanceId === instanceId);
      const events = mine.map(({ data }) => data as WorkflowEvent);
      return events.some((event) => event.type === last) ? { events, raw: mine.map(({ raw }) => raw) } : undefined;
    }, 20_000, `the ${last} event of ${instanceId}`);
  }

  /** The spans of `traceId`, once `count` of them are stored. */
  function spansOf(traceId: string, count: number): Promise<{ spans: SpanEvent[]; raw: string[] }> {
    return eventually(async () => {
      const mine = (await stored('skein.spans.default.orders')).filter(({ data }) => parseSpanEvent(data)?.traceId === traceId);
      return mine.length >= count ? { spans: mine.map(({ data }) => parseSpanEvent(data) as SpanEvent), raw: mine.map(({ raw }) => raw) } : undefined;
    }, 20_000, `${count} spans of trace ${traceId}`);
  }

  it('publishes the ordered events of a run with a caught activity failure, and one trace with a span per activity', async function () {
    const id = await eventually(() => client.scheduleNewWorkflow(checkout, { card: SECRET }), 20_000, 'the workflow actor type to be placed');
    const state = await client.waitForWorkflowCompletion(id, true, 30);
    assert.equal(state?.runtimeStatus, WorkflowRuntimeStatus.COMPLETED);
    assert.ok(state?.serializedOutput?.includes(SECRET), 'the workflow did carry the secret');

    const { events, raw } = await eventsOf(id, 'workflow.completed');
    assert.deepEqual(events.map((event) => [event.type, event.activityName]), [
      ['workflow.created', undefined],
      ['workflow.activity.scheduled', 'reserve'],
      ['workflow.activity.completed', 'reserve'],
      ['workflow.activity.scheduled', 'charge'],
      ['workflow.activity.failed', 'charge'],
      ['workflow.completed', undefined],
    ]);
    const taskOf = (name: string): number | undefined => events.find((event) => event.type === 'workflow.activity.scheduled' && event.activityName === name)?.taskId;
    assert.deepEqual([events[2]?.taskId, events[4]?.taskId], [taskOf('reserve'), taskOf('charge')]);
    assert.notEqual(taskOf('reserve'), taskOf('charge'));
    const [created] = events;
    assert.ok(created);
    for (const event of events) {
      assert.deepEqual([event.version, event.appId, event.namespace, event.workflowName, event.executionId, event.traceId], [1, 'orders', 'default', 'checkout', created.executionId, created.traceId]);
      assert.ok(Date.parse(event.time) >= Date.parse(created.time));
    }
    assert.equal(events[4]?.failure?.message, 'the card was declined');
    assert.ok(events[0]?.payloadBytes !== undefined && events[0].payloadBytes > SECRET.length, 'the input size, not the input');
    for (const text of raw) assert.ok(!text.includes(SECRET), `no payload in ${text}`);

    const { spans, raw: rawSpans } = await spansOf(created.traceId, 3);
    assert.deepEqual(spans.map((span) => span.name).sort(), ['activity charge', 'activity reserve', 'workflow checkout']);
    const workflow = spans.find((span) => span.name === 'workflow checkout');
    assert.ok(workflow);
    assert.equal(workflow.parentSpanId, undefined);
    assert.equal(workflow.spanId, created.spanId);
    assert.equal(workflow.status.code, 'unset');
    assert.deepEqual([workflow.attributes['workflow.instance_id'], workflow.attributes['workflow.name'], workflow.attributes['workflow.status']], [id, 'checkout', 'COMPLETED']);
    assert.equal(workflow.startTime, created.time, 'the run starts when it was created');
    for (const name of ['reserve', 'charge']) {
      const activity = spans.find((span) => span.name === `activity ${name}`);
      assert.ok(activity);
      assert.equal(activity.parentSpanId, workflow.spanId);
      assert.deepEqual([activity.attributes['workflow.instance_id'], activity.attributes['workflow.name'], activity.attributes['workflow.activity.name']], [id, 'checkout', name]);
      assert.equal(activity.attributes['workflow.task_id'], taskOf(name));
      assert.equal(activity.spanId, events.find((event) => event.type === 'workflow.activity.scheduled' && event.activityName === name)?.spanId);
      assert.ok(BigInt(activity.startTimeUnixNano) >= BigInt(workflow.startTimeUnixNano) && BigInt(activity.endTimeUnixNano) <= BigInt(workflow.endTimeUnixNano));
    }
    assert.equal(spans.find((span) => span.name === 'activity reserve')?.status.code, 'unset');
    assert.deepEqual(spans.find((span) => span.name === 'activity charge')?.status, { code: 'error', message: 'the card was declined' });
    for (const text of rawSpans) assert.ok(!text.includes(SECRET), `no payload in ${text}`);

    // `skein traces <id>` shows the run as a waterfall.
    const shown = await eventually(async () => {
      const cli = harness.skein('traces', ['traces', created.traceId, '--home', harness.home, '--nats-url', harness.natsHandle?.url ?? '']);
      await cli.exited;
      const output = cli.output();
      return ['workflow checkout', 'activity reserve', 'activity charge'].every((name) => output.includes(name)) ? output : undefined;
    }, 20_000, 'skein traces to show the workflow trace');
    assert.ok(!shown.includes(SECRET));
  });

  it('publishes workflow.failed and an error span for a failing workflow; a traceparent on the start makes the run part of that trace', async function () {
    const callerTrace = randomBytes(16).toString('hex');
    const callerSpan = randomBytes(8).toString('hex');
    const id = `doomed-${randomBytes(4).toString('hex')}`;
    const started = await httpRequest(`${sidecar.url}/v1.0-beta1/workflows/dapr/doomed/start?instanceID=${id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${callerTrace}-${callerSpan}-01` },
      body: JSON.stringify({ card: SECRET }),
    });
    assert.equal(started.status, 202);
    const state = await client.waitForWorkflowCompletion(id, false, 30);
    assert.equal(state?.runtimeStatus, WorkflowRuntimeStatus.FAILED);

    const { events, raw } = await eventsOf(id, 'workflow.failed');
    assert.deepEqual(events.map((event) => event.type), ['workflow.created', 'workflow.activity.scheduled', 'workflow.activity.failed', 'workflow.failed']);
    assert.ok(events.every((event) => event.traceId === callerTrace));
    assert.equal(events[3]?.failure?.type !== undefined, true);
    for (const text of raw) assert.ok(!text.includes(SECRET), `no payload in ${text}`);

    const { spans, raw: rawSpans } = await spansOf(callerTrace, 2);
    const workflow = spans.find((span) => span.name === 'workflow doomed');
    assert.ok(workflow);
    assert.equal(workflow.parentSpanId, callerSpan, "a child of the caller's span");
    assert.equal(workflow.status.code, 'error');
    const activity = spans.find((span) => span.name === 'activity charge');
    assert.equal(activity?.parentSpanId, workflow.spanId);
    assert.equal(activity?.status.code, 'error');
    for (const text of rawSpans) assert.ok(!text.includes(SECRET), `no payload in ${text}`);
  });
});
