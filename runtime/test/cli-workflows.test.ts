import assert from 'node:assert/strict';
import { UsageError } from '../src/cli/args.js';
import { formatTable, printable } from '../src/cli/table.js';
import {
  SidecarError,
  ageFlag,
  apiTokenFor,
  describeInstance,
  formatSidecarError,
  historyTable,
  instanceTable,
  jsonFlag,
  parseWorkflowsArgs,
  recentInstances,
  sidecarBaseUrl,
  sidecarErrorOf,
  statusFlag,
  stuckInstances,
  summarizeEvent,
} from '../src/cli/workflows.js';
import type { HistoryEventJson, WorkflowStateJson } from '../src/api/http-workflows.js';

const NOW = Date.parse('2026-12-04T12:00:00.000Z');

function instance(fields: Partial<WorkflowStateJson> & { instanceID: string }): WorkflowStateJson {
  return { workflowName: 'checkout', createdAt: '2026-12-04T11:00:00.000Z', lastUpdatedAt: '2026-12-04T11:00:00.000Z', runtimeStatus: 'RUNNING', properties: {}, ...fields };
}

function event(kind: string, details: Record<string, unknown>, eventId = 0): HistoryEventJson {
  return { eventId, timestamp: '2026-12-04T11:00:00.000Z', kind, details };
}

const usage = (pattern: RegExp) => (error: unknown): boolean => error instanceof UsageError && pattern.test(error.message);

describe('skein workflows: tables', function () {
  it('pads every column to its widest cell, two spaces apart, and leaves the last one unpadded', function () {
    assert.deepEqual(formatTable(['A', 'BB', 'C'], [['long-cell', 'x', 'tail'], ['y', 'wider', '']]), ['A          BB     C', 'long-cell  x      tail', 'y          wider']);
  });

  it('shows control characters from the sidecar as escapes, never as terminal input', function () {
    assert.equal(printable('a\nb\u001b[31mc\u007f'), 'a\\nb\\u001b[31mc\\u007f');
    assert.equal(printable('plain "text" ✓'), 'plain "text" ✓');
  });

  it('shows the invisible characters that reorder or hide text (bidi controls, zero-width marks) as escapes', function () {
    assert.equal(printable('evil\u202Etxt.exe\u200b\u2066'), 'evil\\u202etxt.exe\\u200b\\u2066');
  });

  it('lists instances with id, workflow, status and times; stuck listings add how long each has been idle', function () {
    const rows = [instance({ instanceID: 'order-1' }), instance({ instanceID: 'a-much-longer-instance-id', workflowName: 'approval', runtimeStatus: 'SUSPENDED' })];
    const lines = instanceTable(rows);
    assert.deepEqual(lines, [
      'INSTANCE ID                WORKFLOW  STATUS     CREATED                   UPDATED',
      'order-1                    checkout  RUNNING    2026-12-04T11:00:00.000Z  2026-12-04T11:00:00.000Z',
      'a-much-longer-instance-id  approval  SUSPENDED  2026-12-04T11:00:00.000Z  2026-12-04T11:00:00.000Z',
    ]);
    const idle = instanceTable([rows[0] as WorkflowStateJson], NOW);
    assert.match(idle[0] ?? '', /UPDATED\s+IDLE$/);
    assert.match(idle[1] ?? '', /\s1h0m0s$/);
  });

  it('describes one instance: summary, input, output, custom status; a failure instead of an output', function () {
    const done = describeInstance(instance({ instanceID: 'order-1', runtimeStatus: 'COMPLETED', properties: { 'dapr.workflow.input': '"order-1"', 'dapr.workflow.output': '"charged order-1"', 'dapr.workflow.custom_status': 'paid' } }));
    assert.deepEqual(done, [
      'Instance ID:    order-1',
      'Workflow:       checkout',
      'Status:         COMPLETED',
      'Created:        2026-12-04T11:00:00.000Z',
      'Last updated:   2026-12-04T11:00:00.000Z',
      'Input:          "order-1"',
      'Output:         "charged order-1"',
      'Custom status:  paid',
    ]);
    const failed = describeInstance(instance({ instanceID: 'f', runtimeStatus: 'FAILED', properties: { 'dapr.workflow.failure.error_type': 'Error', 'dapr.workflow.failure.error_message': 'exploded', 'dapr.workflow.failure.stack_trace': 'Error: exploded\n    at charge' } }));
    assert.ok(failed.includes('Failure:        Error: exploded'), failed.join('\n'));
    assert.deepEqual(failed.slice(-3), ['Stack trace:', '  Error: exploded', '      at charge']);
    assert.ok(!failed.some((line) => line.startsWith('Output')));
  });
});

describe('skein workflows: history rows', function () {
  it('prints each event\'s id, timestamp, type and summary', function () {
    const lines = historyTable([
      event('executionStarted', { name: 'checkout', input: '"order-7"', orchestrationInstance: { instanceId: 'i-1', executionId: 'e' } }, -1),
      event('taskScheduled', { name: 'charge', input: '"order-7"' }, 0),
      event('taskCompleted', { taskScheduledId: 0, result: '"charged order-7"' }, -1),
      event('executionCompleted', { orchestrationStatus: 1, result: '"charged order-7"' }, 1),
    ]);
    assert.deepEqual(lines, [
      '#  TIME                      TYPE                SUMMARY',
      '-  2026-12-04T11:00:00.000Z  executionStarted    checkout input="order-7"',
      '0  2026-12-04T11:00:00.000Z  taskScheduled       charge input="order-7"',
      '-  2026-12-04T11:00:00.000Z  taskCompleted       task #0 result="charged order-7"',
      '1  2026-12-04T11:00:00.000Z  executionCompleted  COMPLETED result="charged order-7"',
    ]);
  });

  it('summarises timers, events, failures, children, suspension and termination in a few words', function () {
    assert.equal(summarizeEvent(event('timerCreated', { fireAt: '2026-12-04T11:00:05.000Z' })), 'fires at 2026-12-04T11:00:05.000Z');
    assert.equal(summarizeEvent(event('timerFired', { fireAt: '2026-12-04T11:00:05.000Z', timerId: 2 })), 'timer #2 due at 2026-12-04T11:00:05.000Z');
    assert.equal(summarizeEvent(event('eventRaised', { name: 'approval', input: '{"ok":true}' })), 'approval input={"ok":true}');
    assert.equal(summarizeEvent(event('eventSent', { name: 'ping', instanceId: 'other' })), 'ping to other');
    assert.equal(summarizeEvent(event('taskFailed', { taskScheduledId: 3, failureDetails: { errorType: 'Error', errorMessage: 'exploded: on purpose' } })), 'task #3 failed: Error: exploded: on purpose');
    assert.equal(summarizeEvent(event('executionCompleted', { orchestrationStatus: 3, failureDetails: { errorType: 'Error', errorMessage: 'boom' } })), 'FAILED Error: boom');
    assert.equal(summarizeEvent(event('executionCompleted', {})), 'RUNNING');
    assert.equal(summarizeEvent(event('subOrchestrationInstanceCreated', { name: 'chain', instanceId: 'p-child', input: '1' })), 'chain instanceId=p-child input=1');
    assert.equal(summarizeEvent(event('executionTerminated', { input: '"stop"', recurse: true })), 'reason="stop" with children');
    assert.equal(summarizeEvent(event('executionSuspended', {})), '');
    assert.equal(summarizeEvent(event('executionStarted', { name: 'chain', parentInstance: { orchestrationInstance: { instanceId: 'parent-1' } } })), 'chain parent=parent-1');
    assert.equal(summarizeEvent(event('somethingNew', { a: 1 })), '{"a":1}');
  });

  it('cuts long payloads and folds their whitespace, so each event stays one line', function () {
    const summary = summarizeEvent(event('taskScheduled', { name: 'charge', input: `"${'x'.repeat(200)}"\n` }));
    assert.ok(summary.length < 80, summary);
    assert.ok(summary.endsWith('…'));
    assert.ok(!historyTable([event('eventRaised', { name: 'a\nb' })]).some((line) => line.includes('\n')));
  });
});

describe('skein workflows: stuck and recent instances', function () {
  const instances = [
    instance({ instanceID: 'fresh', lastUpdatedAt: '2026-12-04T11:59:00.000Z' }),
    instance({ instanceID: 'old', lastUpdatedAt: '2026-12-04T11:00:00.000Z' }),
    instance({ instanceID: 'older', lastUpdatedAt: '2026-12-04T10:00:00.000Z' }),
    instance({ instanceID: 'done', runtimeStatus: 'COMPLETED', lastUpdatedAt: '2026-12-04T09:00:00.000Z' }),
    instance({ instanceID: 'paused', runtimeStatus: 'SUSPENDED', lastUpdatedAt: '2026-12-04T09:00:00.000Z' }),
  ];

  it('keeps RUNNING instances unchanged for longer than the age, the longest idle first', function () {
    assert.deepEqual(stuckInstances(instances, 5 * 60_000, NOW).map((i) => i.instanceID), ['older', 'old']);
    assert.deepEqual(stuckInstances(instances, 60 * 60_000, NOW).map((i) => i.instanceID), ['older']);
    assert.deepEqual(stuckInstances(instances, 0, NOW).map((i) => i.instanceID), ['older', 'old', 'fresh']);
  });

  it('keeps the last N created, oldest first', function () {
    const created = [instance({ instanceID: 'b', createdAt: '2026-12-04T11:00:02.000Z' }), instance({ instanceID: 'a', createdAt: '2026-12-04T11:00:03.000Z' }), instance({ instanceID: 'c', createdAt: '2026-12-04T11:00:01.000Z' })];
    assert.deepEqual(recentInstances(created, 2).map((i) => i.instanceID), ['b', 'a']);
    assert.deepEqual(recentInstances(created, 50).map((i) => i.instanceID), ['c', 'b', 'a']);
  });
});

describe('skein workflows: flags', function () {
  it('sends DAPR_API_TOKEN only to a loopback or https sidecar', function () {
    assert.equal(apiTokenFor('http://127.0.0.1:3500', 't'), 't');
    assert.equal(apiTokenFor('https://sidecar.example:3500', 't'), 't');
    assert.equal(apiTokenFor('http://sidecar.example:3500', undefined), undefined);
    assert.throws(() => apiTokenFor('http://sidecar.example:3500', 't'), usage(/neither loopback nor https: the token would cross the network in clear/));
  });

  it('finds the sidecar by --sidecar-url, --dapr-http-port, DAPR_HTTP_PORT or 3500, in that order', function () {
    assert.equal(sidecarBaseUrl({}, {}), 'http://127.0.0.1:3500');
    assert.equal(sidecarBaseUrl({}, { DAPR_HTTP_PORT: '3601' }), 'http://127.0.0.1:3601');
    assert.equal(sidecarBaseUrl({ 'dapr-http-port': '3602' }, { DAPR_HTTP_PORT: '3601' }), 'http://127.0.0.1:3602');
    assert.equal(sidecarBaseUrl({ 'sidecar-url': 'http://sidecar.local:3500/' }, { DAPR_HTTP_PORT: '3601' }), 'http://sidecar.local:3500');
    assert.throws(() => sidecarBaseUrl({ 'sidecar-url': 'http://a', 'dapr-http-port': '1' }, {}), usage(/not both/));
    assert.throws(() => sidecarBaseUrl({ 'sidecar-url': 'ftp://a' }, {}), usage(/http:\/\/ or https:\/\//));
    assert.throws(() => sidecarBaseUrl({ 'sidecar-url': 'nope' }, {}), usage(/must be a URL/));
    assert.throws(() => sidecarBaseUrl({ 'dapr-http-port': '0' }, {}), usage(/--dapr-http-port must be a sidecar's port/));
    assert.throws(() => sidecarBaseUrl({}, { DAPR_HTTP_PORT: 'x' }), usage(/DAPR_HTTP_PORT must be a sidecar's port/));
  });

  it('validates statuses, payloads and ages before calling the sidecar', function () {
    assert.equal(statusFlag('running, Completed'), 'RUNNING,COMPLETED');
    assert.equal(statusFlag(undefined), undefined);
    assert.throws(() => statusFlag('DONE'), usage(/--status must be one of RUNNING, COMPLETED.*not "DONE"/));
    assert.throws(() => statusFlag(','), usage(/--status needs a status/));
    assert.equal(jsonFlag('input', '{"n":1}'), '{"n":1}');
    assert.throws(() => jsonFlag('input', 'plain text'), usage(/--input must be JSON/));
    assert.equal(ageFlag(undefined, 300_000), 300_000);
    assert.equal(ageFlag('90s', 0), 90_000);
    assert.throws(() => ageFlag('soon', 0), usage(/--for must be a duration/));
  });

  it('takes each subcommand\'s own flags and arguments, and names what is wrong', function () {
    assert.equal(parseWorkflowsArgs([]), 'help');
    assert.equal(parseWorkflowsArgs(['show', '--help']), 'help');
    const parsed = parseWorkflowsArgs(['raise', 'i-1', 'approval', '--data', '"yes"', '--dapr-http-port', '3501']);
    assert.ok(parsed !== 'help');
    assert.deepEqual({ ...parsed, flags: { ...parsed.flags } }, { subcommand: 'raise', flags: { data: '"yes"', 'dapr-http-port': '3501' }, args: ['i-1', 'approval'] });
    assert.throws(() => parseWorkflowsArgs(['frob']), usage(/unknown workflows subcommand "frob"/));
    assert.throws(() => parseWorkflowsArgs(['show']), usage(/show takes <id>, not none/));
    assert.throws(() => parseWorkflowsArgs(['raise', 'i-1']), usage(/raise takes <id> <event>, not "i-1"/));
    assert.throws(() => parseWorkflowsArgs(['list', 'extra']), usage(/list takes no arguments/));
    assert.throws(() => parseWorkflowsArgs(['show', 'i-1', '--input', '1']), usage(/--input/));
    assert.throws(() => parseWorkflowsArgs(['show', '..']), usage(/cannot name an instance/));
  });
});

describe('skein workflows: sidecar errors', function () {
  it('reads Dapr\'s {errorCode, message} and prints it as error: <code>: <message>', function () {
    const error = sidecarErrorOf(404, '{"errorCode":"ERR_INSTANCE_ID_NOT_FOUND","message":"unable to find workflow with the provided instance ID: x"}');
    assert.equal(formatSidecarError(error), 'error: ERR_INSTANCE_ID_NOT_FOUND: unable to find workflow with the provided instance ID: x');
  });

  it('describes an answer without a Dapr error by its status and body', function () {
    assert.equal(formatSidecarError(sidecarErrorOf(502, 'Bad Gateway\n')), 'error: the sidecar answered HTTP 502: Bad Gateway');
    assert.equal(formatSidecarError(sidecarErrorOf(500, '')), 'error: the sidecar answered HTTP 500');
    assert.equal(formatSidecarError(new SidecarError('ERR_X', 'line\nbreak')), 'error: ERR_X: line\\nbreak');
  });
});
