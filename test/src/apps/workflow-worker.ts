/**
 * A workflow app written with the official Dapr JS SDK (`WorkflowRuntime`), as its docs show it: the sidecar's gRPC
 * port from DAPR_GRPC_PORT. Its one activity writes a line per attempt to ATTEMPTS_FILE and says so on stdout; with
 * HANG_FIRST_ATTEMPT=1 the first attempt never returns (the test kills the app there). `approval` waits for an
 * external event of that name and returns its request together with the event's data.
 *
 * For the reliability tests: `relay` runs the activity `step` twice in a row (each appends `!` and prints a line
 * naming WORKER_NAME); `timed` sleeps on a durable timer of its input's seconds; `held` waits for the event `go`, then
 * holds its orchestration step at the test's gate before running `step`; `inflate` returns an output of its input's
 * length in bytes. With GATE_URL set, `step` and `held` wait for a GET of `<GATE_URL>/<what>` to be answered, so
 * the test decides when they go on.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { LogLevel, WorkflowRuntime, type WorkflowActivityContext, type WorkflowContext } from '@dapr/dapr';

const attemptsFile = process.env['ATTEMPTS_FILE'] ?? '';
const hangFirst = process.env['HANG_FIRST_ATTEMPT'] === '1';

const attempts = (): number => (existsSync(attemptsFile) ? readFileSync(attemptsFile, 'utf8').split('\n').filter(Boolean).length : 0);

const charge = async (_ctx: WorkflowActivityContext, order: string): Promise<string> => {
  appendFileSync(attemptsFile, `${order}\n`);
  const attempt = attempts();
  process.stdout.write(`${JSON.stringify({ activity: 'charge', order, attempt })}\n`);
  if (hangFirst && attempt === 1) await new Promise<never>(() => undefined);
  return `charged ${order}`;
};

const checkout = async function* checkout(ctx: WorkflowContext, order: string): AsyncGenerator<unknown, string, string> {
  const receipt = yield ctx.callActivity(charge, order);
  return receipt;
};

const approval = async function* approval(ctx: WorkflowContext, request: unknown): AsyncGenerator<unknown, { request: unknown; decision: unknown }, unknown> {
  const decision: unknown = yield ctx.waitForExternalEvent('approval');
  return { request, decision };
};

const workerName = process.env['WORKER_NAME'] ?? 'worker';
const gateUrl = process.env['GATE_URL'];

/** Waits until the test's gate lets `what` through (at once without a gate). */
async function passGate(what: string): Promise<void> {
  if (!gateUrl) return;
  const answer = await fetch(`${gateUrl}/${encodeURIComponent(what)}?worker=${encodeURIComponent(workerName)}`);
  await answer.text();
  if (!answer.ok) throw new Error(`the gate answered ${answer.status}`);
}

const step = async (_ctx: WorkflowActivityContext, value: string): Promise<string> => {
  process.stdout.write(`${JSON.stringify({ activity: 'step', worker: workerName, value })}\n`);
  await passGate(value);
  return `${value}!`;
};

// RELAY_CHANGED=1 is a later version of `relay` whose second call is another activity: what a replay calls non-deterministic.
const relayChanged = process.env['RELAY_CHANGED'] === '1';

const relay = async function* relay(ctx: WorkflowContext, value: string): AsyncGenerator<unknown, string, string> {
  const once: string = yield ctx.callActivity(step, value);
  return yield ctx.callActivity(relayChanged ? charge : step, once);
};

const timed = async function* timed(ctx: WorkflowContext, seconds: number): AsyncGenerator<unknown, string, unknown> {
  yield ctx.createTimer(seconds);
  return `slept ${seconds} s`;
};

const held = async function* held(ctx: WorkflowContext, value: string): AsyncGenerator<unknown, string, unknown> {
  const go = (yield ctx.waitForExternalEvent('go')) as string;
  // Not deterministic on purpose: it keeps the orchestration work item at this worker until the test opens the gate.
  await passGate(`held-${ctx.getWorkflowInstanceId()}`);
  const stepped = (yield ctx.callActivity(step, `${value}-${go}`)) as string;
  return stepped;
};

const inflate = (_ctx: WorkflowActivityContext, bytes: number): string => 'x'.repeat(bytes);

const inflated = async function* inflated(ctx: WorkflowContext, bytes: number): AsyncGenerator<unknown, number, string> {
  const output: string = yield ctx.callActivity(inflate, bytes);
  return output.length;
};

const runtime = new WorkflowRuntime({ daprHost: '127.0.0.1', daprPort: process.env['DAPR_GRPC_PORT'] ?? '50001', logger: { level: LogLevel.Error } })
  .registerWorkflow(checkout)
  .registerWorkflow(approval)
  .registerWorkflow(relay)
  .registerWorkflow(timed)
  .registerWorkflow(held)
  .registerWorkflow(inflated)
  .registerActivity(charge)
  .registerActivity(step)
  .registerActivity(inflate);
await runtime.start();
process.stdout.write(`${JSON.stringify({ workflowWorker: 'started' })}\n`);
process.on('SIGTERM', () => {
  void runtime.stop().finally(() => process.exit(0));
});
