/**
 * A workflow app written with the official Dapr JS SDK (`WorkflowRuntime`), as its docs show it: the sidecar's gRPC
 * port from DAPR_GRPC_PORT. Its one activity writes a line per attempt to ATTEMPTS_FILE and says so on stdout; with
 * HANG_FIRST_ATTEMPT=1 the first attempt never returns (the test kills the app there). `approval` waits for an
 * external event of that name and returns its request together with the event's data.
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

const runtime = new WorkflowRuntime({ daprHost: '127.0.0.1', daprPort: process.env['DAPR_GRPC_PORT'] ?? '50001', logger: { level: LogLevel.Error } })
  .registerWorkflow(checkout)
  .registerWorkflow(approval)
  .registerActivity(charge);
await runtime.start();
process.stdout.write(`${JSON.stringify({ workflowWorker: 'started' })}\n`);
process.on('SIGTERM', () => {
  void runtime.stop().finally(() => process.exit(0));
});
