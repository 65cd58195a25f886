import assert from 'node:assert/strict';
import { compareReplay, planReplay } from '../src/workflow/replay.js';

describe('workflow replay planning (pure)', () => {
  const started = { eventId: -1, orchestratorStarted: {} };
  const events = [
    started,
    { eventId: -1, executionStarted: { name: 'relay', orchestrationInstance: { instanceId: 'i', executionId: { value: 'x1' } } } },
    { eventId: 1, taskScheduled: { name: 'step' } },
    started,
    { eventId: -1, taskCompleted: { taskScheduledId: 1 } },
    { eventId: 2, taskScheduled: { name: 'step' } },
  ];

  it('ends the work item on the inputs of the chosen step and keeps its recorded actions to compare', () => {
    const plan = planReplay('i', events, 4);
    assert.equal(plan.request.pastEvents?.length, 3);
    assert.deepEqual(plan.request.newEvents?.map((event) => Object.keys(event).filter((key) => key !== 'eventId' && key !== 'timestamp')), [['orchestratorStarted'], ['taskCompleted']]);
    assert.deepEqual(plan.request.executionId, { value: 'x1' });
    assert.deepEqual(plan.after.map((event) => event.taskScheduled?.name), ['step']);
    // Choosing an action replays the step that took it: the same work item.
    assert.equal(planReplay('i', events, 5).replayed, 5);
  });

  it('compares the code\'s actions with the recorded ones, naming the first difference', () => {
    assert.equal(compareReplay([{ id: 2, scheduleTask: { name: 'step' } }], [{ eventId: 2, taskScheduled: { name: 'step' } }]).divergence, undefined);
    const changed = compareReplay([{ id: 2, scheduleTask: { name: 'charge' } }], [{ eventId: 2, taskScheduled: { name: 'step' } }]);
    assert.equal(changed.divergence, 'the code would schedule activity charge, but the recorded run did schedule activity step');
    assert.match(compareReplay([], [{ eventId: 2, taskScheduled: { name: 'step' } }]).divergence ?? '', /the code would nothing more|nothing more/);
  });
});
