#!/usr/bin/env node
/**
 * Places one order: schedules the order workflow through the sidecar on 127.0.0.1:$DAPR_GRPC_PORT (default 50001)
 * with the official Dapr SDK's `DaprWorkflowClient`, waits for it to finish, and prints its result as one JSON line.
 *
 *   node dist/start.js [--order-id ID] [--item widget] [--quantity 1] [--amount-cents 2500] [--card TOKEN]
 *                      [--ship-to ADDRESS] [--timeout-seconds 30]
 *
 * Exit status: 0 shipped; 3 cancelled (a step failed and was compensated; the result is still printed);
 * 1 the workflow failed, was terminated, did not finish in time or could not be scheduled; 2 bad arguments.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { DaprWorkflowClient, LogLevel, WorkflowRuntimeStatus } from '@dapr/dapr';
import type { Order, OrderResult } from './order.js';
import { orderWorkflow } from './workflow.js';

const EXIT_SHIPPED = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_CANCELLED = 3;

// The SDK's workflow client logs its INFO lines with console.info whatever its `logger` option says: they go to
// stderr, so stdout carries the result alone (`node dist/start.js | jq .` works).
console.info = console.error;

class UsageError extends Error {}

function positiveInteger(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new UsageError(`--${flag} must be a positive whole number, not "${text}"`);
  return value;
}

/** The order and the timeout from the command line. */
function parseCommandLine(argv: string[]): { order: Order; timeoutSeconds: number } {
  const { values } = parseArgs({
    args: argv,
    options: {
      'order-id': { type: 'string' },
      item: { type: 'string', default: 'widget' },
      quantity: { type: 'string', default: '1' },
      'amount-cents': { type: 'string', default: '2500' },
      card: { type: 'string', default: 'tok_visa' },
      'ship-to': { type: 'string', default: '1 Main Street, Springfield' },
      'timeout-seconds': { type: 'string', default: '30' },
    },
    strict: true,
  });
  const order: Order = {
    orderId: values['order-id'] ?? `order-${randomUUID().slice(0, 8)}`,
    item: values.item,
    quantity: positiveInteger('quantity', values.quantity),
    amountCents: positiveInteger('amount-cents', values['amount-cents']),
    card: values.card,
    shipTo: values['ship-to'],
  };
  return { order, timeoutSeconds: positiveInteger('timeout-seconds', values['timeout-seconds']) };
}

async function placeOrder(client: DaprWorkflowClient, order: Order, timeoutSeconds: number): Promise<number> {
  // The order id is the instance id: an order is placed once.
  const instanceId = await client.scheduleNewWorkflow(orderWorkflow, order, order.orderId);
  let state;
  try {
    state = await client.waitForWorkflowCompletion(instanceId, true, timeoutSeconds);
  } catch (error) {
    if ((error as Error).name !== 'TimeoutError') throw error;
    process.stderr.write(`order ${order.orderId} did not finish within ${timeoutSeconds} s: is its worker running (skein run --app-id orders -- node samples/order-workflow/dist/worker.js)?\n`);
    return EXIT_FAILED;
  }
  if (!state) {
    process.stderr.write(`order ${order.orderId}: the sidecar does not know workflow instance ${instanceId}\n`);
    return EXIT_FAILED;
  }
  if (state.runtimeStatus !== WorkflowRuntimeStatus.COMPLETED) {
    const failure = state.workflowFailureDetails;
    const why = failure ? `: ${failure.getErrorType()}: ${failure.getErrorMessage()}` : '';
    process.stderr.write(`order ${order.orderId}: the workflow ended ${WorkflowRuntimeStatus[state.runtimeStatus]}${why}\n`);
    return EXIT_FAILED;
  }
  const result = JSON.parse(state.serializedOutput ?? 'null') as OrderResult;
  process.stdout.write(`${JSON.stringify(result)}\n`);
  if (result.status === 'shipped') return EXIT_SHIPPED;
  process.stderr.write(`order ${order.orderId} cancelled: ${result.failedStep ?? 'a step'} failed (${result.reason ?? 'no reason given'}); compensated: ${result.compensated.join(', ') || 'nothing'}\n`);
  return EXIT_CANCELLED;
}

const USAGE = `Usage: node dist/start.js [--order-id ID] [--item widget] [--quantity 1] [--amount-cents 2500] [--card TOKEN]
                          [--ship-to ADDRESS] [--timeout-seconds 30]
Places one order through the sidecar on 127.0.0.1:$DAPR_GRPC_PORT (default 50001) and prints its result as JSON.
Exit status: 0 shipped, 3 cancelled (compensated), 1 failed or not finished in time, 2 bad arguments.
`;

async function main(): Promise<number> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(USAGE);
    return EXIT_SHIPPED;
  }
  let parsed;
  try {
    parsed = parseCommandLine(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  const daprPort = process.env['DAPR_GRPC_PORT'] ?? '50001';
  const client = new DaprWorkflowClient({ daprHost: '127.0.0.1', daprPort, logger: { level: LogLevel.Error } });
  try {
    return await placeOrder(client, parsed.order, parsed.timeoutSeconds);
  } catch (error) {
    process.stderr.write(`order ${parsed.order.orderId} could not be placed through the sidecar at 127.0.0.1:${daprPort}: ${(error as Error).message}\n`);
    return EXIT_FAILED;
  } finally {
    await client.stop().catch(() => undefined);
  }
}

process.exitCode = await main();
