import { SkeinError } from '@skein/core';

/**
 * What the workflow front ends (Dapr's HTTP workflow API, the durabletask gRPC service, the CLI) ask of the engine.
 * Every method names the instance by id; an unknown id is `undefined` from `get`/`wait` and
 * `ERR_INSTANCE_ID_NOT_FOUND` from the rest.
 */

/** durabletask's OrchestrationStatus numbers (orchestrator_service.proto). */
export const WorkflowStatus = {
  RUNNING: 0,
  COMPLETED: 1,
  CONTINUED_AS_NEW: 2,
  FAILED: 3,
  CANCELED: 4,
  TERMINATED: 5,
  PENDING: 6,
  SUSPENDED: 7,
} as const;
export type WorkflowStatus = (typeof WorkflowStatus)[keyof typeof WorkflowStatus];

/** Dapr's status string for a status number (`pkg/runtime/wfengine`: anything unknown, e.g. STALLED = 8, reads UNKNOWN). */
export function statusName(status: number): string {
  const entry = Object.entries(WorkflowStatus).find(([, value]) => value === status);
  return entry ? entry[0] : 'UNKNOWN';
}

/** True for the statuses an instance never leaves by itself. */
export function isTerminal(status: number): boolean {
  return status === WorkflowStatus.COMPLETED || status === WorkflowStatus.FAILED || status === WorkflowStatus.TERMINATED || status === WorkflowStatus.CANCELED;
}

export interface WorkflowFailure {
  errorType: string;
  errorMessage: string;
  stackTrace?: string | undefined;
}

/** An instance as a client sees it. Inputs, outputs and custom status are the JSON strings the SDKs exchange. */
export interface WorkflowState {
  instanceId: string;
  name: string;
  status: WorkflowStatus;
  createdAt: Date;
  lastUpdatedAt: Date;
  input?: string | undefined;
  output?: string | undefined;
  customStatus?: string | undefined;
  failure?: WorkflowFailure | undefined;
  /** The instance that started this one as a child; undefined for a top-level instance. */
  parentInstanceId?: string | undefined;
  /** Events in the instance's history so far. */
  historyLength: number;
}

export interface StartRequest {
  name: string;
  /** A random UUID when absent. */
  instanceId?: string | undefined;
  input?: string | undefined;
  /** Start no earlier than this. */
  scheduledStart?: Date | undefined;
  /** The caller's W3C `traceparent` (and `tracestate`): the run becomes a child of that span in the caller's trace. */
  traceParent?: string | undefined;
  traceState?: string | undefined;
}

/** Filters of a list; every field is optional, pages are ordered by instance id. */
export interface ListQuery {
  name?: string | undefined;
  statuses?: readonly WorkflowStatus[] | undefined;
  createdFrom?: Date | undefined;
  createdTo?: Date | undefined;
  instanceIdPrefix?: string | undefined;
  /** At most this many (1,024 when absent). */
  limit?: number | undefined;
  /** From a previous page's `continuationToken`. */
  continuationToken?: string | undefined;
}

export interface ListPage {
  instances: WorkflowState[];
  /** Present when there may be more. */
  continuationToken?: string | undefined;
}

/** One event of an instance's history as the CLI and HTTP history endpoint show it. */
export interface HistoryEntry {
  eventId: number;
  timestamp: Date;
  /** durabletask's event kind: executionStarted, taskScheduled, taskCompleted, timerFired, eventRaised, ... */
  kind: string;
  /** The event's payload fields (name, input, result, failureDetails, fireAt, ...). */
  details: Record<string, unknown>;
}

/** The engine's client side. */
export interface Workflows {
  start(request: StartRequest): Promise<string>;
  get(instanceId: string): Promise<WorkflowState | undefined>;
  /** Resolves when the instance has started (`start`) or reached a terminal status (`completion`), or the signal aborts. */
  wait(instanceId: string, until: 'start' | 'completion', signal: AbortSignal): Promise<WorkflowState | undefined>;
  raiseEvent(instanceId: string, eventName: string, input?: string): Promise<void>;
  terminate(instanceId: string, options: { output?: string | undefined; recursive: boolean }): Promise<void>;
  suspend(instanceId: string, reason?: string): Promise<void>;
  resume(instanceId: string, reason?: string): Promise<void>;
  /** Deletes a terminal instance's history and summary (and its children's when `recursive`); false when unknown. */
  purge(instanceId: string, options: { recursive: boolean }): Promise<boolean>;
  list(query: ListQuery): Promise<ListPage>;
  history(instanceId: string): Promise<HistoryEntry[]>;
}

/** A sidecar's workflows: its own app's, and a client of any other app's instances in its namespace. */
export interface WorkflowClients extends Workflows {
  /** The client side of `appId`'s instances (the sidecar's own app: these). The target's policies judge each call. */
  forApp(appId: string): Workflows;
}

/** Longest instance id Dapr accepts. */
export const MAX_INSTANCE_ID_LENGTH = 64;
const INSTANCE_ID = /^[A-Za-z0-9_-]+$/;

/** Dapr's instance-id rule (pkg/api/http/workflow.go): 1–64 characters of letters, digits, `-` and `_`. */
export function validateInstanceId(instanceId: string): void {
  if (instanceId === '') throw new SkeinError('ERR_INSTANCE_ID_PROVIDED_MISSING', 'no instance id was provided');
  if (instanceId.length > MAX_INSTANCE_ID_LENGTH) throw new SkeinError('ERR_INSTANCE_ID_TOO_LONG', `workflow instance id exceeds the max length of ${MAX_INSTANCE_ID_LENGTH} characters`);
  if (!INSTANCE_ID.test(instanceId)) throw new SkeinError('ERR_INSTANCE_ID_INVALID', `workflow instance id '${instanceId}' is invalid: only alphanumeric characters, underscores and dashes are allowed`);
}
