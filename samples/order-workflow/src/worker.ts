#!/usr/bin/env node
/**
 * The order workflow app: registers the workflow and its activities with the official Dapr SDK's `WorkflowRuntime`
 * and serves them to its sidecar, on 127.0.0.1:$DAPR_GRPC_PORT (`skein run` sets it). Says
 * `{"orderWorkflow":"started"}` on stdout once it runs, one JSON line per activity after that, and stops on SIGTERM.
 */
import { LogLevel, WorkflowRuntime } from '@dapr/dapr';
import { chargePayment, refundPayment, releaseInventory, reserveInventory, shipOrder } from './activities.js';
import { orderWorkflow } from './workflow.js';

const daprPort = process.env['DAPR_GRPC_PORT'] ?? '50001';

const runtime = new WorkflowRuntime({ daprHost: '127.0.0.1', daprPort, logger: { level: LogLevel.Error } })
  .registerWorkflow(orderWorkflow)
  .registerActivity(reserveInventory)
  .registerActivity(chargePayment)
  .registerActivity(shipOrder)
  .registerActivity(refundPayment)
  .registerActivity(releaseInventory);

await runtime.start();

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  runtime.stop().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`the workflow runtime did not stop cleanly: ${(error as Error).message}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The SDK's worker gives up when it cannot reach the sidecar, and the process would then end with status 0.
process.once('beforeExit', () => {
  if (stopping) return;
  process.stderr.write(`the workflow runtime gave up on the sidecar at 127.0.0.1:${daprPort}: run the worker under \`skein run\`\n`);
  process.exit(1);
});
// Said only once a SIGTERM would be handled: whoever waits for this line may stop the worker right away.
process.stdout.write(`${JSON.stringify({ orderWorkflow: 'started' })}\n`);
