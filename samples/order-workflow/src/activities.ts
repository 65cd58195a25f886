/**
 * The order workflow's activities: a warehouse, a payment provider and a carrier, simulated in the worker's memory
 * (it is a sample). Activities run at least once — a worker that dies mid-activity gets it again — so each one is
 * idempotent per order: running it twice has the effect of running it once. Each run writes one JSON line to stdout,
 * `{"activity":...,"orderId":...,"outcome":...}`, so you (and the tests) can follow what happened.
 */
import type { WorkflowActivityContext } from '@dapr/dapr';
import type { Order, Payment, Reservation, Shipment } from './order.js';

/** The card the payment provider declines. */
export const DECLINED_CARD = 'declined';
/** The address no carrier delivers to. */
export const UNDELIVERABLE_ADDRESS = 'nowhere';

/** Units in stock, by item. */
const stock = new Map<string, number>([
  ['widget', 100],
  ['gadget', 5],
]);
const reservations = new Map<string, Reservation & { released: boolean }>();
const payments = new Map<string, Payment & { refunded: boolean }>();
const shipments = new Map<string, Shipment>();

function record(activity: string, orderId: string, outcome: string, details: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ activity, orderId, outcome, ...details })}\n`);
}

/** Takes the order's quantity out of stock; fails when there is not enough. */
export async function reserveInventory(_ctx: WorkflowActivityContext, order: Order): Promise<Reservation> {
  const existing = reservations.get(order.orderId);
  if (existing) {
    record('reserveInventory', order.orderId, 'already reserved', { reservationId: existing.reservationId });
    return { reservationId: existing.reservationId, orderId: existing.orderId, item: existing.item, quantity: existing.quantity };
  }
  const available = stock.get(order.item) ?? 0;
  if (available < order.quantity) {
    record('reserveInventory', order.orderId, 'out of stock', { item: order.item, available });
    throw new Error(`only ${available} ${order.item} in stock, ${order.quantity} ordered`);
  }
  stock.set(order.item, available - order.quantity);
  const reservation: Reservation = { reservationId: `reservation-${order.orderId}`, orderId: order.orderId, item: order.item, quantity: order.quantity };
  reservations.set(order.orderId, { ...reservation, released: false });
  record('reserveInventory', order.orderId, 'reserved', { item: order.item, quantity: order.quantity, left: available - order.quantity });
  return reservation;
}

/** Charges the order's card; fails when the card is declined. */
export async function chargePayment(_ctx: WorkflowActivityContext, order: Order): Promise<Payment> {
  const existing = payments.get(order.orderId);
  if (existing) {
    record('chargePayment', order.orderId, 'already charged', { paymentId: existing.paymentId });
    return { paymentId: existing.paymentId, orderId: existing.orderId, amountCents: existing.amountCents };
  }
  if (order.card === DECLINED_CARD) {
    record('chargePayment', order.orderId, 'declined', { amountCents: order.amountCents });
    throw new Error(`payment of ${order.amountCents} cents declined`);
  }
  const payment: Payment = { paymentId: `payment-${order.orderId}`, orderId: order.orderId, amountCents: order.amountCents };
  payments.set(order.orderId, { ...payment, refunded: false });
  record('chargePayment', order.orderId, 'charged', { amountCents: order.amountCents });
  return payment;
}

/** Hands the order to the carrier; fails when it cannot deliver to the address. */
export async function shipOrder(_ctx: WorkflowActivityContext, order: Order): Promise<Shipment> {
  const existing = shipments.get(order.orderId);
  if (existing) {
    record('shipOrder', order.orderId, 'already shipped', { trackingNumber: existing.trackingNumber });
    return existing;
  }
  if (order.shipTo === UNDELIVERABLE_ADDRESS) {
    record('shipOrder', order.orderId, 'undeliverable', { shipTo: order.shipTo });
    throw new Error(`no carrier delivers to "${order.shipTo}"`);
  }
  const shipment: Shipment = { orderId: order.orderId, trackingNumber: `track-${order.orderId}` };
  shipments.set(order.orderId, shipment);
  record('shipOrder', order.orderId, 'shipped', { trackingNumber: shipment.trackingNumber });
  return shipment;
}

/** Compensates `chargePayment`: gives the money back (once). */
export async function refundPayment(_ctx: WorkflowActivityContext, payment: Payment): Promise<void> {
  const known = payments.get(payment.orderId);
  if (!known || known.refunded) {
    record('refundPayment', payment.orderId, 'nothing to refund', { paymentId: payment.paymentId });
    return;
  }
  known.refunded = true;
  record('refundPayment', payment.orderId, 'refunded', { paymentId: payment.paymentId, amountCents: payment.amountCents });
}

/** Compensates `reserveInventory`: puts the reserved units back in stock (once). */
export async function releaseInventory(_ctx: WorkflowActivityContext, reservation: Reservation): Promise<void> {
  const known = reservations.get(reservation.orderId);
  if (!known || known.released) {
    record('releaseInventory', reservation.orderId, 'nothing to release', { reservationId: reservation.reservationId });
    return;
  }
  known.released = true;
  const left = (stock.get(reservation.item) ?? 0) + reservation.quantity;
  stock.set(reservation.item, left);
  record('releaseInventory', reservation.orderId, 'released', { item: reservation.item, quantity: reservation.quantity, left });
}
