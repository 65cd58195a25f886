import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { loadSchema } from '@skein/proto';
import type { skein } from '@skein/proto';
import type { WorkflowEvent } from '@skein/core';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { SpanStatusCode } from '@opentelemetry/api';
import { Tracing } from '../src/telemetry/tracing.js';
import { InstanceState } from '../src/workflow/instance.js';
import { WorkflowStatus } from '../src/workflow/api.js';
import { activitySpanId, recordTelemetry, runTrace, traceParentOf, type RecordTelemetry } from '../src/workflow/telemetry.js';

const SOURCE = { appId: 'orders', namespace: 'default' };
const SECRET = 'sk_live_DO-NOT-LEAK-4242';

const at = (seconds: number) => ({ seconds, nanos: 0 });

function started(options: { executionId?: string; traceParent?: string } = {}) {
  return {
    eventId: -1,
    timestamp: at(1000),
    executionStarted: {
      name: 'checkout',
      input: { value: JSON.stringify({ card: SECRET }) },
      orchestrationInstance: { instanceId: 'i1', executionId: { value: options.executionId ?? 'e1' } },
      ...(options.traceParent ? { parentTraceContext: { traceParent: options.traceParent } } : {}),
    },
  };
}

/** Keeps what it is given (the SDK's in-memory exporter forgets everything at shutdown). */
class Collector implements SpanExporter {
  readonly spans: ReadableSpan[] = [];
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.spans.push(...spans);
    done({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {}
}

/** Records like the engine: the telemetry of each record is taken before it is applied. */
class Recorder {
  readonly state = new InstanceState('i1');
  readonly all: RecordTelemetry = { events: [], spans: [] };

  record(record: skein.workflow.v1.IHistoryRecord): RecordTelemetry {
    const telemetry = recordTelemetry(this.state, record, SOURCE);
    this.state.apply(record, this.state.lastSequence + 1);
    this.all.events.push(...telemetry.events);
    this.all.spans.push(...telemetry.spans);
    return telemetry;
  }

  receive(event: object): RecordTelemetry {
    return this.record({ received: { events: [event] } });
  }

  step(actions: object[], nowSeconds: number): RecordTelemetry {
    const { newEvents } = this.state.request(nowSeconds * 1000);
    const { record } = this.state.planStep(newEvents, { instanceId: 'i1', actions }, nowSeconds * 1000);
    return this.record({ stepped: record });
  }
}

function validator() {
  const ajv = new Ajv({ strict: true, allowUnionTypes: true });
  ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
  return ajv.compile(loadSchema('workflow-event'));
}

/** Two activities, the second failing; the workflow catches it and completes. */
function twoActivities(options: { traceParent?: string } = {}): Recorder {
  const recorder = new Recorder();
  recorder.receive(started(options));
  recorder.step([{ id: 0, scheduleTask: { name: 'reserve', input: { value: JSON.stringify(SECRET) } } }], 1001);
  recorder.receive({ eventId: -1, timestamp: at(1003), taskCompleted: { taskScheduledId: 0, result: { value: `"reserved ${SECRET}"` } } });
  recorder.step([{ id: 1, scheduleTask: { name: 'charge', input: { value: JSON.stringify(SECRET) } } }], 1004);
  recorder.receive({ eventId: -1, timestamp: at(1007), taskFailed: { taskScheduledId: 1, failureDetails: { errorType: 'Error', errorMessage: 'the card was declined', stackTrace: { value: `at charge (${SECRET})` } } } });
  recorder.step([{ id: 2, completeOrchestration: { orchestrationStatus: WorkflowStatus.COMPLETED, result: { value: `"refunded ${SECRET}"` } } }], 1008);
  return recorder;
}

describe('workflow telemetry (pure: recorded records in, events and spans out)', function () {
  const validate = validator();

  it('maps a run with two activities, one failing, to the ordered events, each valid against the schema', function () {
    const { all } = twoActivities();
    assert.deepEqual(all.events.map((event) => [event.type, event.activityName, event.taskId]), [
      ['workflow.created', undefined, undefined],
      ['workflow.activity.scheduled', 'reserve', 0],
      ['workflow.activity.completed', 'reserve', 0],
      ['workflow.activity.scheduled', 'charge', 1],
      ['workflow.activity.failed', 'charge', 1],
      ['workflow.completed', undefined, undefined],
    ]);
    for (const event of all.events) {
      assert.ok(validate(JSON.parse(JSON.stringify(event))), JSON.stringify(validate.errors));
      assert.deepEqual([event.appId, event.namespace, event.instanceId, event.workflowName, event.executionId], ['orders', 'default', 'i1', 'checkout', 'e1']);
    }
    const failed = all.events[4] as WorkflowEvent;
    assert.deepEqual(failed.failure, { type: 'Error', message: 'the card was declined' });
    assert.equal(failed.durationMs, 3000);
    assert.equal(failed.time, '1970-01-01T00:16:47.000Z', 'the time the history records, not the clock of the mapping');
    assert.equal(all.events[5]?.durationMs, 8000);
    assert.equal(all.events[0]?.payloadBytes, Buffer.byteLength(JSON.stringify({ card: SECRET })), 'sizes, never payloads');
  });

  it('never carries an input, output, result or stack trace', function () {
    const { all } = twoActivities();
    assert.ok(!JSON.stringify(all.events).includes(SECRET));
    assert.ok(!JSON.stringify(all.spans).includes(SECRET));
  });

  it('ends one span per activity under the workflow span, and the workflow span at completion, all in one trace', function () {
    const { all } = twoActivities();
    const trace = runTrace('i1', 'e1');
    assert.deepEqual(all.spans.map((span) => span.name), ['activity reserve', 'activity charge', 'workflow checkout']);
    const [reserve, charge, workflow] = all.spans;
    assert.ok(reserve && charge && workflow);
    for (const span of all.spans) assert.equal(span.traceId, trace.traceId);
    assert.equal(workflow.spanId, trace.spanId);
    assert.equal(workflow.parentSpanId, undefined, 'a root when the start carried no trace context');
    assert.deepEqual([workflow.startMs, workflow.endMs], [1_000_000, 1_008_000]);
    assert.equal(workflow.error, undefined);
    assert.equal(reserve.parentSpanId, trace.spanId);
    assert.equal(reserve.spanId, activitySpanId('i1', 'e1', 0));
    assert.deepEqual([reserve.startMs, reserve.endMs], [1_001_000, 1_003_000]);
    assert.deepEqual(reserve.attributes, { 'workflow.instance_id': 'i1', 'workflow.name': 'checkout', 'workflow.activity.name': 'reserve', 'workflow.task_id': 0 });
    assert.equal(reserve.error, undefined);
    assert.deepEqual(charge.error, { type: 'Error', message: 'the card was declined' });
    assert.equal(all.events[2]?.spanId, reserve.spanId, 'activity events name their span');
    assert.equal(all.events[0]?.spanId, trace.spanId);
  });

  it('derives the same ids on every sidecar (a failover keeps one trace), and a new one per execution', function () {
    assert.deepEqual(runTrace('i1', 'e1'), runTrace('i1', 'e1'));
    assert.notEqual(runTrace('i1', 'e1').traceId, runTrace('i1', 'e2').traceId);
    assert.notEqual(runTrace('i1', 'e1').traceId, runTrace('i2', 'e1').traceId);
    assert.match(runTrace('i1', 'e1').traceId, /^[0-9a-f]{32}$/);
    assert.match(activitySpanId('i1', 'e1', 7), /^[0-9a-f]{16}$/);
    assert.notEqual(activitySpanId('i1', 'e1', 7), activitySpanId('i1', 'e1', 8));
  });

  it("joins the caller's trace when the start carried a traceparent, and ignores a malformed one", function () {
    const caller = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const { all } = twoActivities({ traceParent: caller });
    const workflow = all.spans.find((span) => span.name === 'workflow checkout');
    assert.equal(workflow?.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.equal(workflow?.parentSpanId, '00f067aa0ba902b7');
    assert.equal(workflow?.sampled, true);
    assert.ok(all.events.every((event) => event.traceId === '4bf92f3577b34da6a3ce929d0e0e4736'));
    assert.equal(runTrace('i1', 'e1', { traceParent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00' }).sampled, false);
    for (const bad of ['garbage', '00-00000000000000000000000000000000-00f067aa0ba902b7-01', '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01']) {
      assert.deepEqual(runTrace('i1', 'e1', { traceParent: bad }), runTrace('i1', 'e1'));
    }
    const run = runTrace('i1', 'e1');
    assert.equal(traceParentOf(run), `00-${run.traceId}-${run.spanId}-01`, 'what a child workflow is started with');
  });

  it('maps a failing workflow, timers, raised events, suspension and termination', function () {
    const recorder = new Recorder();
    recorder.receive(started());
    assert.deepEqual(recorder.step([{ id: 0, createTimer: { fireAt: at(1100) } }], 1001).events.map((event) => [event.type, event.timerId, event.fireAt]), [['workflow.timer.created', 0, '1970-01-01T00:18:20.000Z']]);
    assert.deepEqual(recorder.receive({ eventId: -1, timestamp: at(1100), timerFired: { timerId: 0, fireAt: at(1100) } }).events.map((event) => event.type), ['workflow.timer.fired']);
    const raised = recorder.receive({ eventId: -1, timestamp: at(1101), eventRaised: { name: 'approve', input: { value: JSON.stringify(SECRET) } } }).events;
    assert.deepEqual(raised.map((event) => [event.type, event.eventName, event.payloadBytes]), [['workflow.event.raised', 'approve', JSON.stringify(SECRET).length]]);
    assert.deepEqual(recorder.receive({ eventId: -1, timestamp: at(1102), executionSuspended: {} }).events.map((event) => event.type), ['workflow.suspended']);
    assert.deepEqual(recorder.receive({ eventId: -1, timestamp: at(1103), executionResumed: {} }).events.map((event) => event.type), ['workflow.resumed']);
    const steppedOver = recorder.step([{ id: 1, completeOrchestration: { orchestrationStatus: WorkflowStatus.FAILED, failureDetails: { errorType: 'TypeError', errorMessage: 'x'.repeat(1000) } } }], 1104);
    assert.deepEqual(steppedOver.events.map((event) => event.type), ['workflow.failed'], 'the consumed inbox events are not published twice');
    assert.equal(steppedOver.events[0]?.failure?.type, 'TypeError');
    assert.equal(steppedOver.events[0]?.failure?.message.length, 256);
    assert.equal(steppedOver.spans[0]?.error?.type, 'TypeError');
    assert.equal(steppedOver.spans[0]?.attributes['workflow.status'], 'FAILED');

    const terminated = new Recorder();
    terminated.receive(started());
    terminated.receive({ eventId: -1, timestamp: at(1001), executionTerminated: { input: { value: SECRET } } });
    const end = terminated.step([{ id: 0, completeOrchestration: { orchestrationStatus: WorkflowStatus.TERMINATED } }], 1002);
    assert.deepEqual(end.events.map((event) => event.type), ['workflow.terminated']);
    assert.equal(end.spans[0]?.error, undefined);
    assert.equal(end.spans[0]?.attributes['workflow.status'], 'TERMINATED');
    assert.ok(!JSON.stringify(terminated.all).includes(SECRET));
  });

  it('ends the execution on continue-as-new and starts a new trace for the next one', function () {
    const recorder = new Recorder();
    recorder.receive(started());
    const { events, spans } = recorder.step([{ id: 0, completeOrchestration: { orchestrationStatus: WorkflowStatus.CONTINUED_AS_NEW, result: { value: '1' } } }], 1002);
    assert.deepEqual(events.map((event) => event.type), ['workflow.continued_as_new', 'workflow.created']);
    assert.equal(events[0]?.executionId, 'e1');
    const next = events[1]?.executionId ?? '';
    assert.notEqual(next, 'e1');
    assert.equal(events[1]?.traceId, runTrace('i1', next).traceId);
    assert.deepEqual(spans.map((span) => [span.name, span.attributes['workflow.status']]), [['workflow checkout', 'CONTINUED_AS_NEW']]);
  });

  it('publishes nothing for a duplicate result, and a child names its parent', function () {
    const recorder = twoActivities();
    assert.equal(recordTelemetry(recorder.state, { received: { events: [{ eventId: -1, timestamp: at(1009), taskCompleted: { taskScheduledId: 0 } }] } }, SOURCE).events.length, 0);
    const child = new InstanceState('c1');
    const start = { ...started(), executionStarted: { ...started().executionStarted, orchestrationInstance: { instanceId: 'c1', executionId: { value: 'e9' } }, parentInstance: { taskScheduledId: 3, orchestrationInstance: { instanceId: 'i1' } } } };
    assert.equal(recordTelemetry(child, { received: { events: [start] } }, SOURCE).events[0]?.parentInstanceId, 'i1');
  });

  it('the tracing records the spans under their own ids and times, and keeps or drops a whole trace', async function () {
    const exporter = new Collector();
    const tracing = new Tracing({ appId: 'orders', namespace: 'default', samplingRate: 1, otlpUrl: undefined }, [exporter]);
    const { spans } = twoActivities().all;
    for (const span of spans) tracing.record(span);
    await tracing.shutdown();
    const exported = exporter.spans;
    assert.deepEqual(exported.map((span) => [span.name, span.spanContext().traceId, span.spanContext().spanId, span.parentSpanContext?.spanId]), spans.map((span) => [span.name, span.traceId, span.spanId, span.parentSpanId]));
    assert.deepEqual(exported[1]?.startTime, [1004, 0]);
    assert.equal(exported[1]?.status.code, SpanStatusCode.ERROR);
    assert.equal(exported[1]?.attributes['error.type'], 'Error');

    const none = new Collector();
    const unsampled = new Tracing({ appId: 'orders', namespace: 'default', samplingRate: 0.5, otlpUrl: undefined }, [none]);
    // Every span of a trace follows the trace id's sampling decision, whichever sidecar records it.
    for (const instance of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']) {
      const run = runTrace(instance, 'e1');
      unsampled.record({ ...spans[2]!, traceId: run.traceId, spanId: run.spanId, parentSpanId: undefined });
      unsampled.record({ ...spans[0]!, traceId: run.traceId, spanId: activitySpanId(instance, 'e1', 0), parentSpanId: run.spanId });
    }
    await unsampled.shutdown();
    const kept = none.spans;
    const perTrace = new Map<string, number>();
    for (const span of kept) perTrace.set(span.spanContext().traceId, (perTrace.get(span.spanContext().traceId) ?? 0) + 1);
    assert.ok([...perTrace.values()].every((count) => count === 2), 'never half a trace');
    assert.ok(perTrace.size > 0 && perTrace.size < 8, `about half of 8 traces kept, not ${perTrace.size}`);
  });

  it("the schema's example is valid", function () {
    for (const example of loadSchema('workflow-event')['examples'] as unknown[]) assert.ok(validate(example), JSON.stringify(validate.errors));
  });
});
