import assert from 'node:assert/strict';
import { InstanceState, deliveryKey } from '../src/workflow/instance.js';
import { WorkflowStatus } from '../src/workflow/api.js';

const started = (name = 'order', input = '"x"', executionId = 'e1') => ({
  eventId: -1,
  timestamp: { seconds: 1000, nanos: 0 },
  executionStarted: { name, input: { value: input }, orchestrationInstance: { instanceId: 'i1', executionId: { value: executionId } } },
});

/** Runs one step: the request's new events, and the orchestrator's actions, recorded as the engine records them. */
function step(state: InstanceState, actions: object[], customStatus?: string) {
  const { newEvents, request } = state.request(2_000_000);
  const plan = state.planStep(newEvents, { instanceId: 'i1', actions, ...(customStatus ? { customStatus: { value: customStatus } } : {}) }, 2_000_000);
  state.apply({ stepped: plan.record }, state.lastSequence + 1);
  return { request, ...plan };
}

describe('workflow instance state (pure: records in, history, inbox and effects out)', function () {
  it('is PENDING with its start in the inbox, then RUNNING once a step has given it to the orchestrator', function () {
    const state = new InstanceState('i1');
    assert.equal(state.exists, false);
    state.apply({ received: { events: [started()] } }, 1);
    assert.equal(state.status, WorkflowStatus.PENDING);
    assert.equal(state.hasWork(0), true);
    const { request, effects } = step(state, [{ id: 1, scheduleTask: { name: 'charge', input: { value: '"x"' } } }]);
    assert.equal(request.pastEvents?.length, 0);
    assert.deepEqual(request.newEvents?.map((event) => Object.keys(event).find((key) => key !== 'eventId' && key !== 'timestamp')), ['orchestratorStarted', 'executionStarted']);
    assert.deepEqual(effects, [{ kind: 'activity', taskId: 1, name: 'charge', input: '"x"' }]);
    assert.equal(state.status, WorkflowStatus.RUNNING);
    assert.equal(state.inbox.length, 0);
    assert.equal(state.history.find((event) => event.taskScheduled)?.eventId, 1);
  });

  it('drops a redelivered activity completion, so an activity that ran twice completes its task once', function () {
    const state = new InstanceState('i1');
    state.apply({ received: { events: [started()] } }, 1);
    step(state, [{ id: 1, scheduleTask: { name: 'charge' } }]);
    const done = { eventId: -1, timestamp: { seconds: 1001, nanos: 0 }, taskCompleted: { taskScheduledId: 1, result: { value: '"ok"' } } };
    state.apply({ received: { events: [done] } }, 3);
    state.apply({ received: { events: [done] } }, 4);
    assert.equal(state.inbox.length, 1);
    assert.equal(deliveryKey(done), 'task:1');
  });

  it('knows which activities its history shows scheduled, per execution (a result for any other waits)', function () {
    const state = new InstanceState('i1');
    state.apply({ received: { events: [started()] } }, 1);
    assert.equal(state.hasScheduled(1), false, 'nothing scheduled before the step is recorded');
    step(state, [{ id: 1, scheduleTask: { name: 'charge' } }, { id: 2, createTimer: { fireAt: { seconds: 5000, nanos: 0 } } }]);
    assert.deepEqual([state.hasScheduled(1), state.hasScheduled(2), state.hasScheduled(3)], [true, false, false], 'a timer is not an activity');
    step(state, [{ id: -1, completeOrchestration: { orchestrationStatus: WorkflowStatus.CONTINUED_AS_NEW, result: { value: '1' } } }]);
    assert.equal(state.hasScheduled(1), false, 'a new execution starts with none');
  });

  it('records held activity results in the step that consumes them: a reload rebuilds the same history and inbox', function () {
    const live = new InstanceState('i1');
    const records: Array<{ record: object; sequence: number }> = [];
    const record = (r: object): void => {
      const sequence = records.length + 1;
      records.push({ record: r, sequence });
      live.apply(r, sequence);
    };
    record({ received: { events: [started()] } });
    const first = live.planStep(live.request(1).newEvents, { instanceId: 'i1', actions: [{ id: 1, scheduleTask: { name: 'a' } }, { id: 2, scheduleTask: { name: 'b' } }] }, 1);
    record({ stepped: first.record });
    // One result was recorded on its own (the old path), one is held by the owner, and an event waits in the inbox.
    record({ received: { events: [{ eventId: -1, taskCompleted: { taskScheduledId: 1, result: { value: '"a"' } } }] } });
    const held = [{ eventId: -1, taskCompleted: { taskScheduledId: 2, result: { value: '"b"' } } }];
    assert.equal(live.delivered(held[0] as never), false);
    const { newEvents } = live.request(2, held);
    assert.deepEqual(newEvents.map((event) => event.taskCompleted?.taskScheduledId), [undefined, 1, 2], 'held results follow the inbox');
    const second = live.planStep(newEvents, { instanceId: 'i1', actions: [] }, 2, held.length);
    assert.equal(second.record.consumed, 1, 'only the inbox event is consumed from the inbox');
    record({ stepped: second.record });
    assert.equal(live.delivered(held[0] as never), true, 'a redelivery of the held result is recognised once its step is recorded');
    assert.equal(live.inbox.length, 0);
    const reloaded = new InstanceState('i1');
    for (const { record: r, sequence } of records) reloaded.apply(r, sequence);
    assert.deepEqual(reloaded.history, live.history);
    assert.deepEqual(reloaded.inbox, live.inbox);
    assert.equal(reloaded.delivered(held[0] as never), true);
    assert.deepEqual(reloaded.pendingEffects(), [], 'nothing left to re-issue: both activities finished');
  });

  it('lists what a new owner must re-issue: unfinished activities and timers, and the end for the parent', function () {
    const state = new InstanceState('i1');
    state.apply({ received: { events: [started()] } }, 1);
    step(state, [
      { id: 1, scheduleTask: { name: 'a' } },
      { id: 2, scheduleTask: { name: 'b' } },
      { id: 3, createTimer: { fireAt: { seconds: 5000, nanos: 0 } } },
    ]);
    state.apply({ received: { events: [{ eventId: -1, taskCompleted: { taskScheduledId: 1 } }] } }, 3);
    assert.deepEqual(state.pendingEffects(), [
      { kind: 'activity', taskId: 2, name: 'b', input: undefined },
      { kind: 'timer', timerId: 3, fireAtMs: 5_000_000 },
    ]);
    step(state, [{ id: -1, completeOrchestration: { orchestrationStatus: WorkflowStatus.COMPLETED, result: { value: '42' } } }], 'done');
    assert.equal(state.status, WorkflowStatus.COMPLETED);
    assert.equal(state.view().output, '42');
    assert.equal(state.view().customStatus, 'done');
    assert.equal(state.hasWork(0), false);
  });

  it('continues as new: the history restarts with a new execution and the result as its input', function () {
    const state = new InstanceState('i1');
    state.apply({ received: { events: [started('loop', '1')] } }, 1);
    const { record } = step(state, [{ id: -1, completeOrchestration: { orchestrationStatus: WorkflowStatus.CONTINUED_AS_NEW, result: { value: '2' } } }]);
    assert.ok(record.newExecutionId);
    assert.equal(state.executionId, record.newExecutionId);
    assert.equal(state.history.length, 0);
    assert.equal(state.view().input, '2');
    assert.equal(state.status, WorkflowStatus.PENDING);
    assert.equal(state.hasWork(0), true);
  });

  it('reads SUSPENDED after a suspend reaches the history and RUNNING after a resume', function () {
    const state = new InstanceState('i1');
    state.apply({ received: { events: [started()] } }, 1);
    step(state, []);
    state.apply({ received: { events: [{ eventId: -1, executionSuspended: {} }] } }, 3);
    step(state, []);
    assert.equal(state.status, WorkflowStatus.SUSPENDED);
    state.apply({ received: { events: [{ eventId: -1, executionResumed: {} }] } }, 5);
    step(state, []);
    assert.equal(state.status, WorkflowStatus.RUNNING);
  });

  it('starts over a terminal instance with a fresh execution', function () {
    const state = new InstanceState('i1');
    state.apply({ received: { events: [started()] } }, 1);
    step(state, [{ id: -1, completeOrchestration: { orchestrationStatus: WorkflowStatus.FAILED, failureDetails: { errorType: 'Error', errorMessage: 'boom' } } }]);
    assert.deepEqual(state.view().failure, { errorType: 'Error', errorMessage: 'boom', stackTrace: undefined });
    state.apply({ received: { events: [started('order', '"y"', 'e2')] } }, 3);
    assert.equal(state.executionId, 'e2');
    assert.equal(state.status, WorkflowStatus.PENDING);
    assert.equal(state.view().input, '"y"');
  });

  it('waits for a scheduled start', function () {
    const state = new InstanceState('i1');
    const event = started();
    state.apply({ received: { events: [{ ...event, executionStarted: { ...event.executionStarted, scheduledStartTimestamp: { seconds: 3000, nanos: 0 } } }] } }, 1);
    assert.equal(state.hasWork(2_999_999), false);
    assert.equal(state.hasWork(3_000_000), true);
  });
});
