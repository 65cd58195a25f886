/**
 * What the order workflow takes and returns: the wire types shared by the worker (`worker.ts`) and the starter
 * (`start.ts`). Both travel as JSON through the sidecar.
 */

/** An order to place. */
export interface Order {
  orderId: string;
  item: string;
  quantity: number;
  /** What to charge, in cents. */
  amountCents: number;
  /**
   * A token for the card to charge, never a card number: the input is kept in the workflow's history. The sample's
   * payment provider declines the token `declined`.
   */
  card: string;
  /** Where to ship; the sample's carrier delivers anywhere but `nowhere`. */
  shipTo: string;
}

/** The forward steps of the workflow, in the order they run. */
export type OrderStep = 'reserveInventory' | 'chargePayment' | 'shipOrder';

/** The compensations, each undoing one forward step. */
export type Compensation = 'refundPayment' | 'releaseInventory';

/**
 * How an order ended. A step that fails is not a failed workflow: the workflow undoes what was done and completes
 * with `status: 'cancelled'`. Only a compensation that fails (nothing left to undo it) fails the workflow.
 */
export interface OrderResult {
  orderId: string;
  status: 'shipped' | 'cancelled';
  /** Forward steps that succeeded, in the order they ran. */
  completed: OrderStep[];
  /** The step that failed, when cancelled. */
  failedStep?: OrderStep;
  /** Why that step failed, when cancelled. */
  reason?: string;
  /** Compensations that ran, in the order they ran (the reverse of the steps they undo). */
  compensated: Compensation[];
  /** The carrier's tracking number, when shipped. */
  trackingNumber?: string;
}

/** A reservation of stock for one order. */
export interface Reservation {
  reservationId: string;
  orderId: string;
  item: string;
  quantity: number;
}

/** A charge for one order. */
export interface Payment {
  paymentId: string;
  orderId: string;
  amountCents: number;
}

/** A shipment of one order. */
export interface Shipment {
  orderId: string;
  trackingNumber: string;
}
