import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Harness, TEST_APPS } from '../src/harness.js';
import { eventually } from '../src/eventually.js';
import { freePort } from '../src/ports.js';

const PLACEMENT_ARGS = ['--host-ttl', '2s', '--dissemination-timeout', '4s', '--batch-window', '100ms', '--lease-ttl', '2s'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What `show --json` prints: Dapr's GetWorkflowResponse. */
interface Shown {
  instanceID: string;
  workflowName: string;
  runtimeStatus: string;
  properties: Record<string, string>;
}

describe('skein workflows: the CLI against a sidecar and its SDK workflow worker', function () {
  this.timeout(120_000);
  const harness = new Harness();
  let httpPort = '';

  /** Runs `skein workflows <args>` as a process, against the sidecar unless `connection` says otherwise. */
  async function cli(args: string[], options: { connection?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; output: string; lines: string[] }> {
    const proc = harness.skein(`workflows ${args[0] ?? ''}`, ['workflows', ...args, ...(options.connection ?? ['--dapr-http-port', httpPort])], { env: options.env ?? {} });
    const { code } = await proc.exited;
    return { code, output: proc.output(), lines: [...proc.lines] };
  }

  /** Runs it and asserts it succeeded; its output lines. */
  async function ok(args: string[], options: { connection?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<string[]> {
    const result = await cli(args, options);
    assert.equal(result.code, 0, `skein workflows ${args.join(' ')}:\n${result.output}`);
    return result.lines;
  }

  async function show(id: string): Promise<Shown> {
    const lines = await ok(['show', id, '--json']);
    assert.equal(lines.length, 1, lines.join('\n'));
    return JSON.parse(lines[0] ?? '') as Shown;
  }

  const eventuallyStatus = (id: string, status: string): Promise<Shown> =>
    eventually(async () => {
      const shown = await show(id);
      return shown.runtimeStatus === status ? shown : undefined;
    }, 30_000, `instance ${id} to be ${status}`);

  const jsonLines = <T>(lines: string[]): T[] => lines.map((line) => JSON.parse(line) as T);

  before(async function () {
    await harness.controlPlane();
    const placement = await harness.placement('wf-cli', PLACEMENT_ARGS);
    await placement.proc.waitForRecord('became leader');
    const sidecar = await harness.sidecar({ appId: 'orders-cli', args: ['--placement-address', placement.address] });
    httpPort = String(sidecar.httpPort);
    const ready = await sidecar.proc.waitForRecord('ready', { what: 'sidecar' });
    harness.start('worker orders-cli', process.execPath, [join(TEST_APPS, 'workflow-worker.js')], {
      env: { DAPR_GRPC_PORT: String(ready['grpcPort']), ATTEMPTS_FILE: join(harness.dir('wf-cli-attempts'), 'attempts') },
    });
    await sidecar.proc.waitForRecord('workflow worker connected');
  });

  after(() => harness.cleanup());

  let firstId = '';

  it('starts an instance, lists it, shows it and prints its history', async function () {
    // The workflow actor type is placed once the worker has connected: the first start may need a moment.
    const started = await eventually(async () => {
      const result = await cli(['start', 'checkout', '--input', '"order-1"']);
      return result.code === 0 ? result.lines : undefined;
    }, 20_000, 'the workflow actor type to be placed');
    assert.equal(started.length, 1, started.join('\n'));
    firstId = started[0] ?? '';
    assert.match(firstId, UUID);
    const done = await eventuallyStatus(firstId, 'COMPLETED');
    assert.equal(done.workflowName, 'checkout');
    assert.equal(done.properties['dapr.workflow.input'], '"order-1"');
    assert.equal(done.properties['dapr.workflow.output'], '"charged order-1"');

    const table = await ok(['list']);
    assert.match(table[0] ?? '', /^INSTANCE ID\s+WORKFLOW\s+STATUS\s+CREATED\s+UPDATED$/);
    assert.ok(table.some((line) => new RegExp(`^${firstId}\\s+checkout\\s+COMPLETED\\s+\\d{4}-`).test(line)), table.join('\n'));
    const filtered = jsonLines<Shown>(await ok(['list', '--name', 'checkout', '--status', 'completed', '--since', '10m', '--json']));
    assert.ok(filtered.some((instance) => instance.instanceID === firstId), JSON.stringify(filtered));
    assert.ok(!jsonLines<Shown>(await ok(['list', '--status', 'RUNNING', '--json'])).some((instance) => instance.instanceID === firstId));
    assert.ok(!jsonLines<Shown>(await ok(['list', '--name', 'approval', '--json'])).some((instance) => instance.instanceID === firstId));

    const described = (await ok(['show', firstId])).join('\n');
    assert.match(described, new RegExp(`^Instance ID:\\s+${firstId}$`, 'm'));
    assert.match(described, /^Workflow:\s+checkout$/m);
    assert.match(described, /^Status:\s+COMPLETED$/m);
    assert.match(described, /^Input:\s+"order-1"$/m);
    assert.match(described, /^Output:\s+"charged order-1"$/m);
    // DAPR_HTTP_PORT names the sidecar when no flag does, as for Dapr's SDKs.
    const byEnv = jsonLines<Shown>(await ok(['show', firstId, '--json'], { connection: [], env: { DAPR_HTTP_PORT: httpPort } }));
    assert.equal(byEnv[0]?.instanceID, firstId);

    const history = await ok(['history', firstId]);
    assert.match(history[0] ?? '', /^#\s+TIME\s+TYPE\s+SUMMARY$/);
    const row = (kind: string, summary: string): void =>
      assert.ok(history.some((line) => new RegExp(`^\\S+\\s+\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\s+${kind}\\s+${summary}$`).test(line)), `${kind} ${summary} in\n${history.join('\n')}`);
    row('executionStarted', 'checkout input="order-1"');
    row('taskScheduled', 'charge input="order-1"');
    row('executionCompleted', 'COMPLETED result="charged order-1"');
    const events = jsonLines<{ eventId: number; kind: string; timestamp: string; details: Record<string, unknown> }>(await ok(['history', firstId, '--json']));
    assert.deepEqual([...new Set(events.map((event) => event.kind))], ['executionStarted', 'taskScheduled', 'taskCompleted', 'executionCompleted']);
    // The completion names the task by the id of its taskScheduled event (the SDK numbers them).
    const taskId = events.find((event) => event.kind === 'taskScheduled')?.eventId;
    row('taskCompleted', `task #${String(taskId)} result="charged order-1"`);
  });

  it('lists a waiting instance as stuck, suspends and resumes it, and completes it with a raised event', async function () {
    const id = 'cli-approval-1';
    assert.deepEqual(await ok(['start', 'approval', '--id', id, '--input', '{"amount":5}']), [id]);
    await eventuallyStatus(id, 'RUNNING');
    // It waits for its event: unchanged since it started, so stuck for any age shorter than its wait.
    const stuck = await eventually(async () => {
      const listed = jsonLines<Shown>(await ok(['stuck', '--for', '0s', '--json']));
      return listed.some((instance) => instance.instanceID === id) ? listed : undefined;
    }, 10_000, `${id} to be listed as stuck`);
    assert.ok(stuck.every((instance) => instance.runtimeStatus === 'RUNNING'));
    assert.ok(!jsonLines<Shown>(await ok(['stuck', '--for', '1h', '--json'])).some((instance) => instance.instanceID === id));
    const stuckTable = await ok(['stuck', '--for', '0s', '--name', 'approval']);
    assert.match(stuckTable[0] ?? '', /IDLE$/);
    assert.ok(stuckTable.some((line) => line.startsWith(`${id} `)), stuckTable.join('\n'));

    assert.deepEqual(await ok(['suspend', id]), [`asked ${id} to suspend`]);
    await eventuallyStatus(id, 'SUSPENDED');
    assert.deepEqual(await ok(['resume', id]), [`asked ${id} to resume`]);
    await eventuallyStatus(id, 'RUNNING');

    assert.deepEqual(await ok(['raise', id, 'approval', '--data', '"yes"']), [`raised event approval on ${id}`]);
    const done = await eventuallyStatus(id, 'COMPLETED');
    assert.deepEqual(JSON.parse(done.properties['dapr.workflow.output'] ?? ''), { request: { amount: 5 }, decision: 'yes' });
    const kinds = jsonLines<{ kind: string }>(await ok(['history', id, '--json'])).map((event) => event.kind);
    for (const kind of ['executionSuspended', 'executionResumed', 'eventRaised', 'executionCompleted']) assert.ok(kinds.includes(kind), `${kind} in ${kinds.join(', ')}`);
    const history = await ok(['history', id]);
    assert.ok(history.some((line) => /\seventRaised\s+approval input="yes"$/.test(line)), history.join('\n'));
  });

  it('terminates an instance and purges it, after which it is not found', async function () {
    const id = 'cli-terminate-1';
    await ok(['start', 'approval', '--id', id, '--input', '"never approved"']);
    await eventuallyStatus(id, 'RUNNING');
    assert.deepEqual(await ok(['terminate', id]), [`asked ${id} (and its children) to terminate`]);
    await eventuallyStatus(id, 'TERMINATED');
    assert.deepEqual(await ok(['purge', id]), [`purged ${id} (and its children)`]);
    const gone = await cli(['show', id]);
    assert.equal(gone.code, 1, gone.output);
    assert.match(gone.output, new RegExp(`^error: ERR_INSTANCE_ID_NOT_FOUND: unable to find workflow with the provided instance ID: ${id}$`, 'm'));
  });

  it('reruns an instance as a new one, with the same workflow and input, leaving the original as it was', async function () {
    assert.ok(firstId !== '', 'the first test started an instance');
    const result = await cli(['rerun', firstId]);
    assert.equal(result.code, 0, result.output);
    const ids = result.lines.filter((line) => UUID.test(line));
    assert.equal(ids.length, 1, result.output);
    const rerunId = ids[0] ?? '';
    assert.notEqual(rerunId, firstId);
    assert.match(result.output, new RegExp(`started a new instance of checkout with the input of ${firstId}, which is unchanged`));
    const rerun = await eventuallyStatus(rerunId, 'COMPLETED');
    assert.equal(rerun.workflowName, 'checkout');
    assert.equal(rerun.properties['dapr.workflow.input'], '"order-1"');
    assert.equal(rerun.properties['dapr.workflow.output'], '"charged order-1"');
    const original = await show(firstId);
    assert.equal(original.runtimeStatus, 'COMPLETED');
    assert.equal(original.properties['dapr.workflow.input'], '"order-1"');
  });

  it('prints the sidecar\'s errors as error: <code>: <message> with exit code 1, and names an unreachable sidecar', async function () {
    const unknown = await cli(['show', 'no-such-instance']);
    assert.equal(unknown.code, 1, unknown.output);
    assert.match(unknown.output, /^error: ERR_INSTANCE_ID_NOT_FOUND: unable to find workflow with the provided instance ID: no-such-instance$/m);
    const history = await cli(['rerun', 'no-such-instance']);
    assert.equal(history.code, 1, history.output);
    assert.match(history.output, /^error: ERR_INSTANCE_ID_NOT_FOUND: /m);

    const invalid = await cli(['start', 'checkout', '--id', 'bad id!']);
    assert.equal(invalid.code, 1, invalid.output);
    assert.match(invalid.output, /^error: ERR_INSTANCE_ID_INVALID: workflow instance id 'bad id!' is invalid/m);
    const tooLong = await cli(['start', 'checkout', '--id', 'x'.repeat(65)]);
    assert.equal(tooLong.code, 1, tooLong.output);
    assert.match(tooLong.output, /^error: ERR_INSTANCE_ID_TOO_LONG: /m);

    const port = await freePort();
    const unreachable = await cli(['list'], { connection: ['--sidecar-url', `http://127.0.0.1:${port}`] });
    assert.equal(unreachable.code, 1, unreachable.output);
    assert.match(unreachable.output, new RegExp(`^error: cannot reach the sidecar at http://127\\.0\\.0\\.1:${port} \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\)`, 'm'));
    assert.doesNotMatch(unreachable.output, /\n\s+at /, 'no stack trace');

    // Bad flags never reach the sidecar: usage errors, exit code 2.
    for (const [args, pattern] of [
      [['start', 'checkout', '--input', 'not json'], /--input must be JSON/],
      [['list', '--status', 'DONE'], /--status must be one of RUNNING/],
      [['stuck', '--for', 'a while'], /--for must be a duration/],
      [['raise', 'cli-approval-1'], /raise takes <id> <event>/],
    ] as const) {
      const refused = await cli([...args]);
      assert.equal(refused.code, 2, refused.output);
      assert.match(refused.output, pattern);
    }
  });
});
