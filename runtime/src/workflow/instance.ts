import { randomUUID } from 'node:crypto';
import type { durabletask as dt, skein } from '@skein/proto';
import { WorkflowStatus, isTerminal, type HistoryEntry, type WorkflowFailure, type WorkflowState } from './api.js';

/**
 * One workflow instance as its history records make it: the history the orchestrator has seen, the inbox of events
 * it has not, and what follows from both (status, name, input, output). Pure: the engine loads records, applies
 * them here, asks `planStep` what an orchestrator's answer means, and carries out the effects itself.
 */

type HistoryEvent = dt.IHistoryEvent;

/** A fresh execution id (durabletask's form: a UUID without dashes). */
export function createExecutionId(): string {
  return randomUUID().replaceAll('-', '');
}
type HistoryRecord = skein.workflow.v1.IHistoryRecord;

/** A timestamp as protobuf carries it. */
export function timestamp(ms: number): { seconds: number; nanos: number } {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

/** An int64 as protobufjs decodes it (a Long when long.js is installed) as a number. */
export function toNumber(value: number | { toNumber(): number } | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : value.toNumber();
}

/** Milliseconds since the epoch of a protobuf timestamp (0 when absent). */
export function millisOf(value: { seconds?: number | { toNumber(): number } | null; nanos?: number | null } | null | undefined): number {
  if (!value) return 0;
  return toNumber(value.seconds) * 1000 + Math.floor((value.nanos ?? 0) / 1_000_000);
}

/** A StringValue wrapper's text, or undefined. */
export function text(value: { value?: string | null } | null | undefined): string | undefined {
  return value?.value ?? undefined;
}

/** Wraps a string as a StringValue (undefined stays absent). */
export function wrap(value: string | undefined): { value: string } | undefined {
  return value === undefined ? undefined : { value };
}

/** What the engine must do after a step was recorded. */
export type Effect =
  | { kind: 'activity'; taskId: number; name: string; input: string | undefined }
  | { kind: 'timer'; timerId: number; fireAtMs: number }
  | { kind: 'child'; taskId: number; instanceId: string; name: string; input: string | undefined }
  | { kind: 'send'; instanceId: string; name: string; input: string | undefined }
  | { kind: 'terminate'; instanceId: string; reason: string | undefined; recursive: boolean }
  | { kind: 'completed'; status: number; result: string | undefined; failure: dt.ITaskFailureDetails | undefined };

/** The kind of a history event: the name of its set oneof field (executionStarted, taskScheduled, ...). */
export function eventKind(event: HistoryEvent): string {
  for (const key of Object.keys(event)) {
    if (key !== 'eventId' && key !== 'timestamp' && (event as Record<string, unknown>)[key] != null) return key;
  }
  return 'unknown';
}

/** The key that makes redelivering a completion a no-op, or undefined for events that may repeat (raised events). */
export function deliveryKey(event: HistoryEvent): string | undefined {
  if (event.taskCompleted) return `task:${event.taskCompleted.taskScheduledId ?? 0}`;
  if (event.taskFailed) return `task:${event.taskFailed.taskScheduledId ?? 0}`;
  if (event.timerFired) return `timer:${event.timerFired.timerId ?? 0}`;
  if (event.subOrchestrationInstanceCompleted) return `child:${event.subOrchestrationInstanceCompleted.taskScheduledId ?? 0}`;
  if (event.subOrchestrationInstanceFailed) return `child:${event.subOrchestrationInstanceFailed.taskScheduledId ?? 0}`;
  return undefined;
}

export class InstanceState {
  readonly instanceId: string;
  executionId = '';
  history: HistoryEvent[] = [];
  inbox: HistoryEvent[] = [];
  /** Subject sequence of the last record applied; the next append expects it. */
  lastSequence = 0;
  customStatus: string | undefined;
  /** Delivery keys seen in this execution (history and inbox). */
  private seen = new Set<string>();
  /** Instance ids of every child started, across executions (for recursive terminate and purge). */
  readonly children = new Set<string>();
  /** The TaskScheduled events of this execution's history, by task id. */
  private scheduled = new Map<number, HistoryEvent>();
  // Derived from the history as it is applied, so that reading the status costs nothing however long it is.
  private historyStart: HistoryEvent | undefined;
  private completedEvent: dt.IExecutionCompletedEvent | undefined;
  private suspended = false;

  constructor(instanceId: string) {
    this.instanceId = instanceId;
  }

  /** True when an event with this delivery key has already been received in this execution. */
  delivered(event: HistoryEvent): boolean {
    const key = deliveryKey(event);
    return key !== undefined && this.seen.has(key);
  }

  /** True when this execution's history shows activity `taskId` scheduled. */
  hasScheduled(taskId: number): boolean {
    return this.scheduled.has(taskId);
  }

  /** The TaskScheduled event of activity `taskId` in this execution's history. */
  scheduledTask(taskId: number): HistoryEvent | undefined {
    return this.scheduled.get(taskId);
  }

  /** The ExecutionStarted event of the current execution, in the history or still in the inbox. */
  get startEvent(): HistoryEvent | undefined {
    return this.historyStart ?? this.inbox.find((event) => event.executionStarted);
  }

  /** True once an ExecutionStarted has been received. */
  get exists(): boolean {
    return this.started !== undefined;
  }

  /** The ExecutionStarted of the current execution, in the history or still in the inbox. */
  get started(): dt.IExecutionStartedEvent | undefined {
    return this.startEvent?.executionStarted ?? undefined;
  }

  get completion(): dt.IExecutionCompletedEvent | undefined {
    return this.completedEvent;
  }

  get status(): WorkflowStatus {
    if (this.completedEvent) return (this.completedEvent.orchestrationStatus ?? WorkflowStatus.COMPLETED);
    if (!this.historyStart) return WorkflowStatus.PENDING;
    return this.suspended ? WorkflowStatus.SUSPENDED : WorkflowStatus.RUNNING;
  }

  get terminal(): boolean {
    return isTerminal(this.status);
  }

  /** Applies one record read back from (or just appended to) the instance's subject. */
  apply(record: HistoryRecord, sequence: number): void {
    this.lastSequence = sequence;
    if (record.received) {
      const events = record.received.events ?? [];
      for (const event of events) {
        const key = deliveryKey(event);
        if (key !== undefined) {
          if (this.seen.has(key)) continue;
          this.seen.add(key);
        }
        if (event.executionStarted) this.beginExecution(event.executionStarted);
        this.inbox.push(event);
      }
      return;
    }
    const step = record.stepped;
    if (!step) return;
    this.inbox.splice(0, step.consumed ?? 0);
    for (const event of step.events ?? []) this.record(event);
    if (step.customStatus) this.customStatus = step.customStatus;
    if (step.newExecutionId) {
      this.clearExecution();
      this.executionId = step.newExecutionId;
      this.inbox.unshift(...(step.restartEvents ?? []));
    }
  }

  /** Adds one event to the history, and to what is derived from it. */
  private record(event: HistoryEvent): void {
    this.history.push(event);
    // A held result reaches the history through its step alone: its key is seen from here on.
    const key = deliveryKey(event);
    if (key !== undefined) this.seen.add(key);
    if (event.taskScheduled) this.scheduled.set(event.eventId ?? 0, event);
    else if (event.executionStarted) this.historyStart ??= event;
    else if (event.executionCompleted) this.completedEvent = event.executionCompleted;
    else if (event.executionSuspended) this.suspended = true;
    else if (event.executionResumed) this.suspended = false;
    const child = event.subOrchestrationInstanceCreated?.instanceId;
    if (child) this.children.add(child);
  }

  /** Forgets the current execution's history (a new execution begins). */
  private clearExecution(): void {
    this.history = [];
    this.seen = new Set();
    this.scheduled = new Map();
    this.historyStart = undefined;
    this.completedEvent = undefined;
    this.suspended = false;
  }

  /** A new ExecutionStarted in the inbox replaces a finished execution (starting over a terminal instance). */
  private beginExecution(started: dt.IExecutionStartedEvent): void {
    const executionId = started.orchestrationInstance?.executionId?.value;
    if (this.history.length > 0 || this.inbox.length > 0) {
      this.clearExecution();
      this.inbox = [];
      this.customStatus = undefined;
    }
    if (executionId) this.executionId = executionId;
  }

  /**
   * True when the inbox holds something the orchestrator must see now. Before the first step only a due
   * ExecutionStarted counts (a scheduled start waits for its time).
   */
  hasWork(nowMs: number): boolean {
    if (this.inbox.length === 0 || this.terminal) return false;
    const due = this.startDueAt();
    return due === undefined || due <= nowMs;
  }

  /** When the first step may run, for an instance created with a scheduled start; undefined otherwise. */
  startDueAt(): number | undefined {
    if (this.history.length > 0) return undefined;
    const at = millisOf(this.started?.scheduledStartTimestamp);
    return at > 0 ? at : undefined;
  }

  /**
   * The work item that runs the next step: the whole history, and the inbox behind an OrchestratorStarted. `held`
   * are activity results not yet recorded anywhere but in the step itself (their work-queue messages stay unacked
   * until it is): they follow the inbox.
   */
  request(nowMs: number, held: readonly HistoryEvent[] = [], inboxCount = this.inbox.length): { request: dt.IOrchestratorRequest; newEvents: HistoryEvent[] } {
    // `inboxCount` bounds the step: what it consumes is copied into its record, which has a size limit.
    const newEvents: HistoryEvent[] = [{ eventId: -1, timestamp: timestamp(nowMs), orchestratorStarted: {} }, ...this.inbox.slice(0, inboxCount), ...held];
    return {
      newEvents,
      request: { instanceId: this.instanceId, executionId: wrap(this.executionId), pastEvents: [...this.history], newEvents },
    };
  }

  /**
   * What the orchestrator's answer to `request` adds: the Stepped record to append, and the effects to carry out
   * once it is recorded. `consumed` is how many inbox events the request carried; `held` how many held results
   * followed them (recorded by this step alone).
   */
  planStep(newEvents: readonly HistoryEvent[], response: dt.IOrchestratorResponse, nowMs: number, held = 0): { record: skein.workflow.v1.IStepped; effects: Effect[] } {
    const at = timestamp(nowMs);
    const produced: HistoryEvent[] = [];
    const effects: Effect[] = [];
    let newExecutionId = '';
    let restartEvents: HistoryEvent[] = [];
    for (const action of response.actions ?? []) {
      const id = action.id ?? 0;
      if (action.scheduleTask) {
        const { name, input, version } = action.scheduleTask;
        produced.push({ eventId: id, timestamp: at, taskScheduled: { name: name ?? '', input, version } });
        effects.push({ kind: 'activity', taskId: id, name: name ?? '', input: text(input) });
      } else if (action.createTimer) {
        produced.push({ eventId: id, timestamp: at, timerCreated: { fireAt: action.createTimer.fireAt } });
        effects.push({ kind: 'timer', timerId: id, fireAtMs: millisOf(action.createTimer.fireAt) });
      } else if (action.createSubOrchestration) {
        const { instanceId, name, input, version } = action.createSubOrchestration;
        const childId = instanceId || `${this.instanceId}:${id.toString(16).padStart(4, '0')}`;
        produced.push({ eventId: id, timestamp: at, subOrchestrationInstanceCreated: { instanceId: childId, name: name ?? '', input, version } });
        effects.push({ kind: 'child', taskId: id, instanceId: childId, name: name ?? '', input: text(input) });
      } else if (action.sendEvent) {
        const { instance, name, data } = action.sendEvent;
        const target = instance?.instanceId ?? '';
        produced.push({ eventId: id, timestamp: at, eventSent: { instanceId: target, name: name ?? '', input: data } });
        effects.push({ kind: 'send', instanceId: target, name: name ?? '', input: text(data) });
      } else if (action.terminateOrchestration) {
        const { instanceId, reason, recurse } = action.terminateOrchestration;
        effects.push({ kind: 'terminate', instanceId: instanceId ?? '', reason: text(reason), recursive: recurse ?? false });
      } else if (action.completeOrchestration) {
        const { orchestrationStatus, result, failureDetails, carryoverEvents } = action.completeOrchestration;
        const status: number = orchestrationStatus ?? WorkflowStatus.COMPLETED;
        if (status === WorkflowStatus.CONTINUED_AS_NEW) {
          const started = this.started;
          newExecutionId = createExecutionId();
          restartEvents = [
            {
              eventId: -1,
              timestamp: at,
              executionStarted: {
                name: started?.name ?? '',
                version: started?.version,
                input: result,
                orchestrationInstance: { instanceId: this.instanceId, executionId: { value: newExecutionId } },
                parentInstance: started?.parentInstance,
              },
            },
            ...(carryoverEvents ?? []),
          ];
        } else {
          produced.push({ eventId: -1, timestamp: at, executionCompleted: { orchestrationStatus: status, result, failureDetails } });
          effects.push({ kind: 'completed', status, result: text(result), failure: failureDetails ?? undefined });
        }
      }
    }
    const record: skein.workflow.v1.IStepped = {
      consumed: newEvents.length - 1 - held,
      events: [...newEvents, ...produced],
      customStatus: text(response.customStatus) ?? '',
      ...(newExecutionId ? { newExecutionId, restartEvents } : {}),
    };
    return { record, effects };
  }

  /**
   * Effects the history asks for but cannot show were carried out: activities and children scheduled but not
   * finished, timers created but not fired, the parent not yet told of the end. A new owner re-issues them (each is
   * idempotent or at-least-once).
   */
  pendingEffects(): Effect[] {
    // The delivery keys of the history and the inbox: what has finished.
    const finished = this.seen;
    const effects: Effect[] = [];
    for (const event of this.history) {
      const id = event.eventId ?? 0;
      if (event.taskScheduled && !finished.has(`task:${id}`)) {
        effects.push({ kind: 'activity', taskId: id, name: event.taskScheduled.name ?? '', input: text(event.taskScheduled.input) });
      } else if (event.timerCreated && !finished.has(`timer:${id}`)) {
        effects.push({ kind: 'timer', timerId: id, fireAtMs: millisOf(event.timerCreated.fireAt) });
      } else if (event.subOrchestrationInstanceCreated && !finished.has(`child:${id}`)) {
        const child = event.subOrchestrationInstanceCreated;
        effects.push({ kind: 'child', taskId: id, instanceId: child.instanceId ?? '', name: child.name ?? '', input: text(child.input) });
      } else if (event.executionCompleted) {
        effects.push({ kind: 'completed', status: event.executionCompleted.orchestrationStatus ?? 0, result: text(event.executionCompleted.result), failure: event.executionCompleted.failureDetails ?? undefined });
      }
    }
    return effects;
  }

  /** The instance as a client sees it. */
  view(): WorkflowState {
    const started = this.started;
    const completion = this.completion;
    const first = this.history[0] ?? this.inbox[0];
    const last = this.history[this.history.length - 1] ?? first;
    const failure = completion?.failureDetails;
    return {
      instanceId: this.instanceId,
      name: started?.name ?? '',
      status: this.status,
      createdAt: new Date(millisOf(first?.timestamp)),
      lastUpdatedAt: new Date(millisOf(last?.timestamp)),
      input: text(started?.input),
      output: text(completion?.result),
      customStatus: this.customStatus,
      failure: failure ? failureOf(failure) : undefined,
      parentInstanceId: started?.parentInstance?.orchestrationInstance?.instanceId ?? undefined,
      historyLength: this.history.length,
    };
  }

  /** The history as the CLI and the HTTP history endpoint list it. */
  entries(): HistoryEntry[] {
    return [...this.history, ...this.inbox]
      .filter((event) => !event.orchestratorStarted)
      .map((event) => {
        const kind = eventKind(event);
        return { eventId: event.eventId ?? -1, timestamp: new Date(millisOf(event.timestamp)), kind, details: plain((event as Record<string, unknown>)[kind]) };
      });
  }
}

export function failureOf(details: dt.ITaskFailureDetails): WorkflowFailure {
  return { errorType: details.errorType ?? '', errorMessage: details.errorMessage ?? '', stackTrace: text(details.stackTrace) };
}

/** A protobuf message as plain JSON-able fields: wrappers unwrapped, timestamps as ISO strings. */
function plain(value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object') return {};
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value as Record<string, unknown>)) {
    if (field === null || field === undefined) continue;
    if (typeof field === 'object' && 'value' in field && Object.keys(field).length === 1) out[key] = (field).value;
    else if (typeof field === 'object' && 'seconds' in field) out[key] = new Date(millisOf(field as { seconds: number; nanos: number })).toISOString();
    else if (typeof field === 'object') out[key] = plain(field);
    else out[key] = field;
  }
  return out;
}
