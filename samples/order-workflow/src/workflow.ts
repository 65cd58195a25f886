/**
 * The order workflow, a saga: reserve inventory, charge payment, ship. When a step fails, the steps already done are
 * undone in reverse order (refund the payment, then release the inventory) and the workflow completes with a result
 * that says so. Workflow code is replayed from its history on every step, so it is deterministic: no clock, no
 * randomness, no I/O here — all of that is in the activities.
 */
import type { Task, WorkflowContext } from '@dapr/dapr';
import { chargePayment, refundPayment, releaseInventory, reserveInventory, shipOrder } from './activities.js';
import type { Compensation, Order, OrderResult, OrderStep, Payment, Reservation, Shipment } from './order.js';

/** The message an activity threw, without the SDK's "<instance>: Activity task #n failed:" prefix. */
function reasonOf(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'details' in error) {
    const details = (error as { details?: { message?: unknown } }).details;
    if (typeof details?.message === 'string') return details.message;
  }
  return error instanceof Error ? error.message : String(error);
}

/** Places one order; completes `shipped`, or `cancelled` with what was compensated. */
export async function* orderWorkflow(ctx: WorkflowContext, order: Order): AsyncGenerator<Task<unknown>, OrderResult, unknown> {
  const completed: OrderStep[] = [];
  // What to run to undo each step done so far, last step last.
  const undo: Array<{ name: Compensation; task: () => Task<unknown> }> = [];
  let step: OrderStep = 'reserveInventory';
  try {
    const reservation = (yield ctx.callActivity(reserveInventory, order)) as Reservation;
    completed.push(step);
    undo.push({ name: 'releaseInventory', task: () => ctx.callActivity(releaseInventory, reservation) });

    step = 'chargePayment';
    const payment = (yield ctx.callActivity(chargePayment, order)) as Payment;
    completed.push(step);
    undo.push({ name: 'refundPayment', task: () => ctx.callActivity(refundPayment, payment) });

    step = 'shipOrder';
    const shipment = (yield ctx.callActivity(shipOrder, order)) as Shipment;
    completed.push(step);
    return { orderId: order.orderId, status: 'shipped', completed, compensated: [], trackingNumber: shipment.trackingNumber };
  } catch (error) {
    const reason = reasonOf(error);
    const compensated: Compensation[] = [];
    // A compensation that throws fails the workflow: the order is then left for a person to look at.
    for (const compensation of undo.reverse()) {
      yield compensation.task();
      compensated.push(compensation.name);
    }
    return { orderId: order.orderId, status: 'cancelled', completed, failedStep: step, reason, compensated };
  }
}
