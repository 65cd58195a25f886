import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { ERROR_CATALOGUE, SkeinError, asSkeinError, logger, sleep, type Clock, type ErrorCode } from '@skein/core';
import { durabletask as dt, skein } from '@skein/proto';
import type { ActorCall, ActorReply } from '../actors/actor-host.js';
import { WorkflowStatus, isTerminal, validateInstanceId, type HistoryEntry, type ListPage, type ListQuery, type StartRequest, type WorkflowState, type Workflows } from './api.js';
import { createExecutionId, failureOf, text, timestamp, toNumber, wrap } from './instance.js';
import { WorkflowStore } from './store.js';

const log = logger('workflow');

/** Inputs, outputs and event payloads above this are refused with ERR_WORKFLOW_PAYLOAD_TOO_LARGE. */
export const MAX_PAYLOAD_BYTES = 256 * 1024;
/** Header of an `event` actor call naming the execution the event belongs to; events of another execution are dropped. */
export const EXECUTION_HEADER = 'skein-workflow-execution';

const HistoryEvent = dt.HistoryEvent;

/** The actor type that hosts one app's workflow instances (Dapr's name). */
export function workflowActorType(namespace: string, appId: string): string {
  return `dapr.internal.${namespace}.${appId}.workflow`;
}

/** What a client of one app's instances needs. */
export interface WorkflowClientOptions {
  /** The app whose instances this client reaches (the sidecar's own, or another app of its namespace). */
  appId: string;
  namespace: string;
  nc: NatsConnection;
  /** Calls an actor wherever it is placed, as the sidecar's own app (the owner sees that verified identity). */
  invokeActor(actorType: string, actorId: string, call: ActorCall, signal: AbortSignal): Promise<ActorReply>;
  clock: Clock;
  /** Ends the summary watch and every call in flight (the sidecar is stopping). */
  signal: AbortSignal;
  /** The app's store, when the caller has one already (the engine shares its own). */
  store?: WorkflowStore;
}

/**
 * The client side of one app's workflows: every operation is an actor call to the instance (an actor of the type
 * `dapr.internal.<ns>.<appId>.workflow`, wherever placement put it), and waits are woken by one watch of the app's
 * instance summaries. A sidecar uses one for its own app (inside its engine) and one per other app it is a client
 * of, without hosting that app's instances.
 */
export class WorkflowClient implements Workflows {
  readonly appId: string;
  readonly actorType: string;
  readonly store: WorkflowStore;
  private readonly options: WorkflowClientOptions;
  /** Clients waiting for an instance to start or finish, by summary key; woken by one shared watch. */
  private readonly waiters = new Map<string, Set<(summary: skein.workflow.v1.InstanceSummary | undefined) => void>>();
  private summaryWatch: Promise<void> | undefined;

  constructor(options: WorkflowClientOptions) {
    this.options = options;
    this.appId = options.appId;
    this.actorType = workflowActorType(options.namespace, options.appId);
    this.store = options.store ?? new WorkflowStore(options.nc, options.namespace, options.appId);
  }

  async start(request: StartRequest): Promise<string> {
    if (!request.name) throw new SkeinError('ERR_WORKFLOW_NAME_MISSING', 'workflow name is not configured');
    const instanceId = request.instanceId || randomUUID();
    validateInstanceId(instanceId);
    checkPayload('input', request.input);
    const event: dt.IHistoryEvent = {
      eventId: -1,
      timestamp: timestamp(this.options.clock.now()),
      executionStarted: {
        name: request.name,
        input: wrap(request.input),
        orchestrationInstance: { instanceId, executionId: wrap(createExecutionId()) },
        ...(request.scheduledStart ? { scheduledStartTimestamp: timestamp(request.scheduledStart.getTime()) } : {}),
        ...(request.traceParent ? { parentTraceContext: { traceParent: request.traceParent, traceState: wrap(request.traceState) } } : {}),
      },
    };
    await this.deliver(instanceId, event, undefined);
    return instanceId;
  }

  async get(instanceId: string): Promise<WorkflowState | undefined> {
    if (!instanceId) throw new SkeinError('ERR_INSTANCE_ID_PROVIDED_MISSING', 'no instance id was provided');
    const answer = await this.callInstance(instanceId, { method: 'state', verb: 'GET', headers: [], body: Buffer.alloc(0) });
    const parsed = JSON.parse(answer.body.toString('utf8')) as StateJson | null;
    return parsed ? stateFromJson(parsed) : undefined;
  }

  async wait(instanceId: string, until: 'start' | 'completion', signal: AbortSignal): Promise<WorkflowState | undefined> {
    const done = (state: WorkflowState | undefined): boolean => !state || (until === 'start' ? state.status !== WorkflowStatus.PENDING : isTerminal(state.status));
    const reached = (summary: skein.workflow.v1.InstanceSummary): boolean => (until === 'start' ? Number(summary.status) !== WorkflowStatus.PENDING : isTerminal(summary.status));
    // Registered before the first read, so a change between the read and the wait is not missed.
    const key = this.store.summaryKey(instanceId);
    const changes: Array<skein.workflow.v1.InstanceSummary | undefined> = [];
    let notify: (() => void) | undefined;
    const waiter = (summary: skein.workflow.v1.InstanceSummary | undefined): void => {
      changes.push(summary);
      notify?.();
    };
    const onAbort = (): void => notify?.();
    signal.addEventListener('abort', onAbort, { once: true });
    let waiters = this.waiters.get(key);
    if (!waiters) this.waiters.set(key, (waiters = new Set()));
    waiters.add(waiter);
    try {
      let state = await this.readWhileWaiting(instanceId, signal);
      for (;;) {
        if (done(state)) return state;
        while (changes.length === 0) {
          if (signal.aborted) throw new SkeinError('ERR_GET_WORKFLOW', `stopped waiting for workflow instance '${instanceId}'`);
          await new Promise<void>((resolve) => (notify = resolve));
          notify = undefined;
        }
        const summary = changes.shift();
        // Purged, or the watch was restarted: read the instance again.
        if (summary === undefined || reached(summary)) state = await this.readWhileWaiting(instanceId, signal);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      waiters.delete(waiter);
      if (waiters.size === 0) this.waiters.delete(key);
    }
  }

  /**
   * Reads an instance for a waiting client, the summary watch running first. A failure that is not the client's
   * (JetStream or the owner briefly unreachable, as while nats-server restarts) is read again after a pause until
   * the client stops waiting: a wait lasts as long as the client asked, not until the first hiccup.
   */
  private async readWhileWaiting(instanceId: string, signal: AbortSignal): Promise<WorkflowState | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.watchSummaries();
        return await this.get(instanceId);
      } catch (error) {
        if (!retriesWhileWaiting(error) || signal.aborted || this.options.signal.aborted) throw error;
        log.debug('reading a workflow instance for a waiting client failed; reading it again', { instanceId, reason: (error as Error).message });
        await sleep(this.options.clock, waitRetryDelayMs(attempt));
      }
    }
  }

  /**
   * One watch over the app's instance summaries for every client waiting through this one (a watch per wait would
   * cost a consumer each). When it ends, every waiter reads its instance again and the next wait starts a new one.
   */
  private watchSummaries(): Promise<void> {
    const { signal } = this.options;
    this.summaryWatch ??= (async () => {
      const watcher = await this.store.summaries.use((kv) => kv.watch({ key: `${this.store.summaryPrefix}>`, include: 'updates' as never }));
      const stop = (): void => void watcher.stop();
      signal.addEventListener('abort', stop, { once: true });
      void (async () => {
        try {
          for await (const entry of watcher) {
            const waiters = this.waiters.get(entry.key);
            if (!waiters) continue;
            const summary = entry.operation === 'PUT' && entry.value.length > 0 ? skein.workflow.v1.InstanceSummary.decode(entry.value) : undefined;
            for (const waiter of waiters) waiter(summary);
          }
        } catch (error) {
          log.warn('the watch of workflow summaries ended', { appId: this.appId, reason: (error as Error).message });
        } finally {
          signal.removeEventListener('abort', stop);
          this.summaryWatch = undefined;
          for (const waiters of this.waiters.values()) for (const waiter of waiters) waiter(undefined);
        }
      })();
    })().catch((error: unknown) => {
      this.summaryWatch = undefined;
      throw error;
    });
    return this.summaryWatch;
  }

  async raiseEvent(instanceId: string, eventName: string, input?: string): Promise<void> {
    if (!eventName) throw new SkeinError('ERR_WORKFLOW_EVENT_NAME_MISSING', 'missing workflow event name');
    checkPayload('event payload', input);
    await this.deliver(instanceId, { eventId: -1, timestamp: timestamp(this.options.clock.now()), eventRaised: { name: eventName, input: wrap(input) } }, undefined);
  }

  async terminate(instanceId: string, options: { output?: string | undefined; recursive: boolean }): Promise<void> {
    await this.deliver(instanceId, { eventId: -1, timestamp: timestamp(this.options.clock.now()), executionTerminated: { input: wrap(options.output), recurse: options.recursive } }, undefined);
  }

  async suspend(instanceId: string, reason?: string): Promise<void> {
    await this.deliver(instanceId, { eventId: -1, timestamp: timestamp(this.options.clock.now()), executionSuspended: { input: wrap(reason) } }, undefined);
  }

  async resume(instanceId: string, reason?: string): Promise<void> {
    await this.deliver(instanceId, { eventId: -1, timestamp: timestamp(this.options.clock.now()), executionResumed: { input: wrap(reason) } }, undefined);
  }

  async purge(instanceId: string, options: { recursive: boolean }): Promise<boolean> {
    try {
      await this.callInstance(instanceId, { method: 'purge', verb: 'PUT', headers: [], body: Buffer.from(JSON.stringify({ recursive: options.recursive })) });
      return true;
    } catch (error) {
      if (asSkeinError(error).code === 'ERR_INSTANCE_ID_NOT_FOUND') return false;
      throw error;
    }
  }

  /** Filters the app's instance summaries (read from the bus, not from the instances). */
  async list(query: ListQuery): Promise<ListPage> {
    const limit = Math.max(1, Math.min(query.limit ?? 1024, 1024));
    const all = (await this.store.listSummaries())
      .map(summaryState)
      .filter((state) => (query.name === undefined || state.name === query.name)
        && (query.statuses === undefined || query.statuses.length === 0 || query.statuses.includes(state.status))
        && (query.createdFrom === undefined || state.createdAt >= query.createdFrom)
        && (query.createdTo === undefined || state.createdAt <= query.createdTo)
        && (query.instanceIdPrefix === undefined || state.instanceId.startsWith(query.instanceIdPrefix))
        && (query.continuationToken === undefined || state.instanceId > query.continuationToken))
      .sort((a, b) => (a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0));
    const instances = all.slice(0, limit);
    const last = instances[instances.length - 1];
    return { instances, ...(all.length > limit && last ? { continuationToken: last.instanceId } : {}) };
  }

  async history(instanceId: string): Promise<HistoryEntry[]> {
    const answer = await this.callInstance(instanceId, { method: 'history', verb: 'GET', headers: [], body: Buffer.alloc(0) });
    return (JSON.parse(answer.body.toString('utf8')) as Array<Omit<HistoryEntry, 'timestamp'> & { timestamp: string }>).map((entry) => ({ ...entry, timestamp: new Date(entry.timestamp) }));
  }

  /** The events of the instance's current execution as durabletask has them (GetInstanceHistory). */
  async historyEvents(instanceId: string): Promise<dt.IHistoryEvent[]> {
    const answer = await this.callInstance(instanceId, { method: 'events', verb: 'GET', headers: [], body: Buffer.alloc(0) });
    return dt.GetInstanceHistoryResponse.decode(answer.body).events;
  }

  /** Delivers an event to an instance, wherever its owner is; `executionId` drops it if that execution ended. */
  async deliver(instanceId: string, event: dt.IHistoryEvent, executionId: string | undefined): Promise<void> {
    const call: ActorCall = {
      method: 'event',
      verb: 'PUT',
      headers: executionId ? [[EXECUTION_HEADER, executionId]] : [],
      body: Buffer.from(HistoryEvent.encode(event).finish()),
    };
    await this.callInstance(instanceId, call);
  }

  /** Calls a method of the instance's actor; an error answer becomes the SkeinError it names. */
  async callInstance(instanceId: string, call: ActorCall): Promise<ActorReply> {
    const answer = await this.options.invokeActor(this.actorType, instanceId, call, this.options.signal).catch((error: unknown) => {
      // Placement knows no sidecar hosting the app's instances: no worker of that app has connected (or no such app).
      const failure = asSkeinError(error);
      if (failure.code === 'ERR_ACTOR_INVOKE_METHOD' && failure.message.includes('no host serves actor type')) {
        throw new SkeinError('ERR_WORKFLOW_NO_WORKER', `no sidecar hosts the workflows of app '${this.appId}' in namespace ${this.options.namespace}: no workflow worker of ${this.appId} has connected (is the app running, and is its name right?)`, { cause: error });
      }
      throw error;
    });
    if (answer.status >= 300) {
      const { errorCode, message } = parseError(answer.body);
      throw new SkeinError(errorCode, message);
    }
    return answer;
  }
}

/** A failed read a waiting client should not see: the sidecar's or the bus's fault (5xx), never the caller's (4xx). */
export function retriesWhileWaiting(error: unknown): boolean {
  return asSkeinError(error).httpStatus >= 500;
}

/** The pause before a waiting client's next read: 250 ms, doubling up to 2 s. */
export function waitRetryDelayMs(attempt: number): number {
  return Math.min(250 * 2 ** Math.max(0, attempt), 2000);
}

/** Refuses an input or payload over MAX_PAYLOAD_BYTES, naming what it is. */
export function checkPayload(what: string, value: string | undefined): void {
  if (value !== undefined && Buffer.byteLength(value) > MAX_PAYLOAD_BYTES) {
    throw new SkeinError('ERR_WORKFLOW_PAYLOAD_TOO_LARGE', `the workflow ${what} is ${Buffer.byteLength(value)} bytes, over the limit of ${MAX_PAYLOAD_BYTES} bytes`);
  }
}

function parseError(body: Buffer): { errorCode: ErrorCode; message: string } {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { errorCode?: string; message?: string };
    const code = parsed.errorCode !== undefined && parsed.errorCode in ERROR_CATALOGUE ? (parsed.errorCode as ErrorCode) : 'ERR_INTERNAL';
    return { errorCode: code, message: parsed.message ?? body.toString('utf8') };
  } catch {
    return { errorCode: 'ERR_INTERNAL', message: body.toString('utf8') };
  }
}

/** An instance's state as the `state` method of its actor answers it (dates as RFC 3339). */
export type StateJson = Omit<WorkflowState, 'createdAt' | 'lastUpdatedAt'> & { createdAt: string; lastUpdatedAt: string };

function stateFromJson(json: StateJson): WorkflowState {
  return { ...json, createdAt: new Date(json.createdAt), lastUpdatedAt: new Date(json.lastUpdatedAt) };
}

function summaryState(summary: skein.workflow.v1.InstanceSummary): WorkflowState {
  return {
    instanceId: summary.instanceId,
    name: summary.name,
    status: summary.status,
    createdAt: new Date(toNumber(summary.createdAtMs)),
    lastUpdatedAt: new Date(toNumber(summary.lastUpdatedAtMs)),
    input: text(summary.input),
    output: text(summary.output),
    customStatus: text(summary.customStatus),
    failure: summary.failureDetails ? failureOf(summary.failureDetails) : undefined,
    parentInstanceId: summary.parentInstanceId || undefined,
    historyLength: toNumber(summary.historyEvents),
  };
}
