import type { HeaderList } from '@skein/core';
import type { ActorTypeSettings } from './app-config.js';
import type { StateOperation } from './requests.js';

/**
 * The seam between the actor runtime and whatever runs an actor's code. The runtime owns placement, activation,
 * one turn at a time, reentrancy, state, reminders and timers; a host only runs what it is handed, inside the turn
 * the runtime holds for it. The app behind the sidecar is one host (`AppActorHost`, over the app channel); the
 * sidecar's own actor types (workflow instances, activities: `dapr.internal.<namespace>.<appId>.workflow`, ...)
 * register in-process hosts with `ActorRuntime.registerInternalType`.
 */

/** The header that carries a call chain's reentrancy id (Dapr's name). */
export const REENTRANCY_HEADER = 'dapr-reentrancy-id';

/** The actor a host is asked to act as. */
export interface ActorRef {
  readonly actorType: string;
  readonly actorId: string;
}

/** The verified caller of an actor method, stamped on the call to the app as `dapr-caller-app-id`/`-namespace`. */
export interface ActorCaller {
  appId: string;
  namespace: string;
}

/** A method call as the API hands it over. */
export interface ActorCall {
  method: string;
  /** The verb the client used; the app is always called with PUT, as Dapr does. */
  verb: string;
  headers: HeaderList;
  body: Buffer;
}

/** What the actor answered: passed back to the client unchanged. */
export interface ActorReply {
  status: number;
  headers: HeaderList;
  body: Buffer;
}

/** A method call with its verified caller. */
export interface ActorMethodCall extends ActorCall {
  caller: ActorCaller;
}

/** The turn a host runs in. */
export interface ActorTurn {
  /** The reentrancy id of the turn's call chain when the type allows reentrancy: calls that carry it join the turn. */
  readonly reentrancyId: string | undefined;
  /** Aborts when the caller gives up or the turn times out. */
  readonly signal: AbortSignal;
}

/** A reminder due now, as it was created. */
export interface ReminderFire {
  name: string;
  data: unknown;
  dueTime: string | undefined;
  period: string | undefined;
  ttl: string | undefined;
}

/** What became of a reminder fire: a 2xx `status` acknowledges it; `cancel` ends the reminder. */
export interface ReminderOutcome {
  status: number;
  cancel: boolean;
}

/** A timer due now, as it was created. */
export interface TimerFire {
  name: string;
  data: unknown;
  callback: string | undefined;
  dueTime: string | undefined;
  period: string | undefined;
}

/**
 * Runs the turns of the actor types it hosts. Every method is called inside the actor's turn (deactivation after
 * the last one), never two at once for one actor unless a reentrant call joins its chain.
 */
export interface ActorHost {
  /** Runs a method call. */
  invoke(actor: ActorRef, call: ActorMethodCall, turn: ActorTurn): Promise<ActorReply>;
  /** Runs a reminder; a throw counts as not acknowledged (the runtime retries, then moves on). */
  remind(actor: ActorRef, reminder: ReminderFire, turn: ActorTurn): Promise<ReminderOutcome>;
  /** Runs a timer's callback; a throw is logged and the timer keeps its schedule. */
  timer(actor: ActorRef, timer: TimerFire, turn: ActorTurn): Promise<void>;
  /** The activation ended (idle, moved to another host, or shutdown); the host drops what it kept in memory. */
  deactivate(actor: ActorRef, why: string): Promise<void>;
}

/** How an in-process actor type behaves; what is left out takes Dapr's defaults (no reentrancy, 60 min idle). */
export type InternalTypeSettings = Partial<ActorTypeSettings>;

/** A reminder or timer as created: Dapr's `dueTime`, `period` and `ttl` formats, and any JSON `data`. */
export interface ScheduleRequest {
  dueTime?: string;
  period?: string;
  ttl?: string;
  data?: unknown;
}

/**
 * What the host of an internal type may do with that type's actors, on behalf of the sidecar itself: the same
 * state, reminders and timers the actor API gives an app, and calls to any actor.
 */
export interface InternalTypeContext {
  readonly actorType: string;
  /** One key of an actor's state, as JSON; undefined when absent. */
  getState(actorId: string, key: string): Promise<string | undefined>;
  /** Applies a state transaction atomically. */
  transactState(actorId: string, operations: readonly StateOperation[]): Promise<void>;
  /** Creates or replaces a reminder (durable; it fires on whichever sidecar owns the actor then). */
  createReminder(actorId: string, name: string, request: ScheduleRequest): Promise<void>;
  deleteReminder(actorId: string, name: string): Promise<void>;
  /** Creates or replaces a timer on the actor's activation (in memory; it ends with the activation). */
  createTimer(actorId: string, name: string, request: ScheduleRequest & { callback?: string }, signal: AbortSignal): Promise<void>;
  deleteTimer(actorId: string, name: string, signal: AbortSignal): Promise<void>;
  /** Calls a method of any actor, wherever it lives, as this sidecar's app. */
  invoke(actorType: string, actorId: string, call: ActorCall, signal: AbortSignal): Promise<ActorReply>;
}
