import type { JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { SkeinError, asSkeinError, logger, sleep, systemClock, type Clock, type TimerHandle } from '@skein/core';
import { durabletask as dt, skein } from '@skein/proto';
import type { ActorCall, ActorHost, ActorMethodCall, ActorRef, ActorReply, InternalTypeContext, ReminderFire, ReminderOutcome } from '../actors/actor-host.js';
import { WorkflowStatus, type HistoryEntry, type ListPage, type ListQuery, type StartRequest, type WorkflowClients, type WorkflowState, type Workflows } from './api.js';
import type { WorkflowAccessCheck } from './access-guard.js';
import { EXECUTION_HEADER, MAX_PAYLOAD_BYTES, WorkflowClient, checkPayload, type StateJson } from './client.js';
import { InstanceState, createExecutionId, deliveryKey, text, timestamp, wrap, type Effect } from './instance.js';
import { ACTIVITY_ACK_WAIT_MS, HistoryConflict, MAX_RECORD_BYTES, WorkflowStore } from './store.js';
import { recordTelemetry, runTrace, traceParentOf } from './telemetry.js';
import type { WorkflowTelemetrySink } from './telemetry-publisher.js';

const log = logger('workflow');


export { MAX_PAYLOAD_BYTES, retriesWhileWaiting, waitRetryDelayMs, workflowActorType } from './client.js';
/** An instance's history may hold at most this many events. */
export const MAX_HISTORY_EVENTS = 100_000;
/** A worker that has not answered an orchestration work item within this gets the item again (or another worker). */
export const DEFAULT_ORCHESTRATION_TIMEOUT_MS = 60_000;
/** The wake-up reminder of a running instance: a new owner picks up its work within this after a failover. */
const WAKE_PERIOD = '10s';
const WAKE_REMINDER = 'wake';
const TIMER_REMINDER_PREFIX = 'timer-';

const HistoryEvent = dt.HistoryEvent;

/**
 * Work items one worker holds at most. The SDKs queue a bounded number and drop the rest (the JS SDK runs 10 and
 * queues 100), so the sidecar never sends more than this and keeps the rest until a worker answers one.
 */
const WORKER_WINDOW = 64;
/** Clients of other apps' instances kept by one engine (`forApp`). */
const MAX_OTHER_APP_CLIENTS = 256;

interface WorkerSlot {
  sink: WorkItemSink;
  outstanding: number;
}

/** A connected `GetWorkItems` stream: an app running a workflow SDK. */
export interface WorkItemSink {
  readonly id: string;
  send(item: dt.IWorkItem): void;
}

/** A worker inside the sidecar for workflows of its own (MCPServer tools): it takes the items it handles. */
export interface InternalWorker extends WorkItemSink {
  handles(item: dt.IWorkItem): boolean;
  attach(answers: { completeOrchestration(response: dt.IOrchestratorResponse): void; completeActivity(response: dt.IActivityResponse): Promise<void> }): void;
}

/** What the engine needs from the sidecar. */
export interface WorkflowEngineOptions {
  appId: string;
  namespace: string;
  nc: NatsConnection;
  /** Registers the workflow actor type with the sidecar's actor runtime (once, when the first worker connects). */
  registerActorType(actorType: string, host: ActorHost): InternalTypeContext;
  /** Calls an actor wherever it is placed: how a sidecar without a worker reaches its app's instances. */
  invokeActor(actorType: string, actorId: string, call: ActorCall, signal: AbortSignal): Promise<ActorReply>;
  /** Judges the actor calls of other apps to this app's instances (its WorkflowAccessPolicies); all pass when absent. */
  access?: WorkflowAccessCheck;
  /** How long a worker has to answer an orchestration work item; DEFAULT_ORCHESTRATION_TIMEOUT_MS when absent. */
  orchestrationTimeoutMs?: number;
  /** Gets the workflow events and spans of every record this sidecar appends; none when absent. */
  telemetry?: WorkflowTelemetrySink;
  clock?: Clock;
}

/** One instance activated on this sidecar. */
class Activation {
  readonly state: InstanceState;
  loaded: Promise<void> | undefined;
  stepping = false;
  closed = false;
  /** True once the history is loaded and its unfinished effects re-issued. */
  ready = false;
  /**
   * Activity results taken by this owner but recorded nowhere yet: the next step records them with itself, and
   * only then are their work-queue messages acknowledged (until then they are kept in progress). If the instance
   * closes here first, they are released and the activities run again.
   */
  held: HeldResult[] = [];
  /** Appends run one at a time, each expecting the sequence the previous one left. */
  private queue: Promise<unknown> = Promise.resolve();
  startTimer: TimerHandle | undefined;

  constructor(instanceId: string) {
    this.state = new InstanceState(instanceId);
  }

  serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

interface HeldResult {
  event: dt.IHistoryEvent;
  message: JsMsg;
  heartbeat: Repeating;
}

interface PendingRun {
  resolve(response: dt.IOrchestratorResponse): void;
  reject(error: Error): void;
  worker: string;
}

interface PendingActivity {
  message: JsMsg;
  /** The activity's registered name, for the failures the sidecar records on its behalf. */
  name: string;
  worker: string;
  executionId: string;
  heartbeat: Repeating;
}

/**
 * The workflow engine of one app's sidecar. Instances are actors of the type `dapr.internal.<ns>.<app>.workflow`
 * placed by placement; the owner keeps the instance's history (event-sourced in JetStream), runs each step by
 * sending the history to a connected worker and recording its answer, and carries out the answer's actions:
 * activities on the app's work queue, timers as reminders, child workflows and events as actor calls.
 */
export class WorkflowEngine implements WorkflowClients, ActorHost {
  private readonly options: WorkflowEngineOptions;
  private readonly clock: Clock;
  private readonly orchestrationTimeoutMs: number;
  readonly store: WorkflowStore;
  readonly actorType: string;
  private context: InternalTypeContext | undefined;
  private readonly workers = new Map<string, WorkerSlot>();
  private nextWorker = 0;
  /** Work items waiting for a worker with room (each worker takes at most WORKER_WINDOW at a time). */
  private backlog: Array<{ item: dt.IWorkItem; sent(worker: string): void }> = [];
  private readonly activations = new Map<string, Activation>();
  private readonly runs = new Map<string, PendingRun>();
  private readonly activities = new Map<string, PendingActivity>();
  /** The sidecar's own worker (MCPServer workflows), when it has one. */
  private internal: InternalWorker | undefined;
  private activityLoop: Promise<void> | undefined;
  private readonly stopping = new AbortController();
  /** The client side of this app's instances; `otherApps` holds the clients of other apps' (see `forApp`). */
  private readonly client: WorkflowClient;
  private readonly otherApps = new Map<string, WorkflowClient>();

  constructor(options: WorkflowEngineOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.orchestrationTimeoutMs = options.orchestrationTimeoutMs ?? DEFAULT_ORCHESTRATION_TIMEOUT_MS;
    this.client = this.clientOf(options.appId, new WorkflowStore(options.nc, options.namespace, options.appId));
    this.store = this.client.store;
    this.actorType = this.client.actorType;
  }

  private get actors(): InternalTypeContext {
    if (!this.context) throw new SkeinError('ERR_WORKFLOW_NO_WORKER', `no workflow worker has connected to the sidecar of ${this.options.appId} yet: start the app's workflow runtime first`);
    return this.context;
  }

  // ---------------------------------------------------------------- workers

  /** A worker opened `GetWorkItems`: register the actor type (first time), start taking activities. */
  /**
   * Adds the sidecar's own worker: the instance actor type is placed here and activities are taken even when the
   * app runs no workflow worker, and the items it handles never go to the app's.
   */
  attachInternalWorker(worker: InternalWorker): void {
    this.internal = worker;
    worker.attach({ completeOrchestration: (response) => this.completeOrchestration(response), completeActivity: (response) => this.completeActivity(response) });
    if (!this.context) this.context = this.options.registerActorType(this.actorType, this);
    this.activityLoop ??= this.takeActivities().finally(() => (this.activityLoop = undefined));
  }

  addWorker(sink: WorkItemSink): void {
    this.workers.set(sink.id, { sink, outstanding: 0 });
    log.info('workflow worker connected', { appId: this.options.appId, worker: sink.id, workers: this.workers.size });
    if (!this.context) this.context = this.options.registerActorType(this.actorType, this);
    this.activityLoop ??= this.takeActivities().finally(() => (this.activityLoop = undefined));
    this.drain();
  }

  /** Sends a work item to the next worker with room, or keeps it until one has room. */
  private dispatch(item: dt.IWorkItem, sent: (worker: string) => void): void {
    if (this.internal?.handles(item)) {
      sent(this.internal.id);
      this.internal.send(item);
      return;
    }
    const slot = this.slotWithRoom();
    if (!slot) {
      this.backlog.push({ item, sent });
      return;
    }
    slot.outstanding++;
    sent(slot.sink.id);
    slot.sink.send(item);
  }

  /** A worker answered (or lost) one of its items: it has room for the next one. */
  private answered(worker: string): void {
    const slot = this.workers.get(worker);
    if (slot && slot.outstanding > 0) slot.outstanding--;
    this.drain();
  }

  private drain(): void {
    while (this.backlog.length > 0) {
      const slot = this.slotWithRoom();
      if (!slot) return;
      const next = this.backlog.shift();
      if (!next) return;
      slot.outstanding++;
      next.sent(slot.sink.id);
      slot.sink.send(next.item);
    }
  }

  private slotWithRoom(): WorkerSlot | undefined {
    const all = [...this.workers.values()];
    for (let i = 0; i < all.length; i++) {
      this.nextWorker = (this.nextWorker + 1) % all.length;
      const slot = all[this.nextWorker];
      if (slot && slot.outstanding < WORKER_WINDOW) return slot;
    }
    return undefined;
  }

  /** A worker's stream ended: its unanswered work goes to another worker (or waits for one). */
  removeWorker(id: string): void {
    if (!this.workers.delete(id)) return;
    log.info('workflow worker disconnected', { appId: this.options.appId, worker: id, workers: this.workers.size });
    for (const [instanceId, run] of this.runs) {
      if (run.worker !== id) continue;
      this.runs.delete(instanceId);
      run.reject(new Error('the worker disconnected'));
    }
    for (const [key, pending] of this.activities) {
      if (pending.worker !== id) continue;
      this.activities.delete(key);
      pending.heartbeat.cancel();
      pending.message.nak();
    }
    this.drain();
  }

  /** `CompleteOrchestratorTask` / `CompleteWorkflowTask`. */
  completeOrchestration(response: dt.IOrchestratorResponse): void {
    const instanceId = response.instanceId ?? '';
    const run = this.runs.get(instanceId);
    if (!run) throw new SkeinError('ERR_INSTANCE_ID_NOT_FOUND', `no orchestration work item of instance '${instanceId}' is waiting for an answer on this sidecar`);
    this.runs.delete(instanceId);
    this.answered(run.worker);
    run.resolve(response);
  }

  /** `CompleteActivityTask`: records the result in the instance's history, then acknowledges the work. */
  async completeActivity(response: dt.IActivityResponse): Promise<void> {
    const instanceId = response.instanceId ?? '';
    const taskId = response.taskId ?? 0;
    const key = `${instanceId}|${taskId}`;
    const pending = this.activities.get(key);
    if (!pending) throw new SkeinError('ERR_INSTANCE_ID_NOT_FOUND', `no activity ${taskId} of instance '${instanceId}' is waiting for an answer on this sidecar`);
    this.activities.delete(key);
    this.answered(pending.worker);
    const now = this.clock.now();
    const result = text(response.result);
    let event: dt.IHistoryEvent;
    if (response.failureDetails) {
      event = { eventId: -1, timestamp: timestamp(now), taskFailed: { taskScheduledId: taskId, failureDetails: response.failureDetails } };
    } else if (result !== undefined && Buffer.byteLength(result) > MAX_PAYLOAD_BYTES) {
      event = { eventId: -1, timestamp: timestamp(now), taskFailed: { taskScheduledId: taskId, failureDetails: { errorType: 'ERR_WORKFLOW_PAYLOAD_TOO_LARGE', errorMessage: `the output of activity '${pending.name}' (task ${taskId}) is ${Buffer.byteLength(result)} bytes, over the limit of ${MAX_PAYLOAD_BYTES} bytes`, isNonRetriable: true } } };
    } else {
      event = { eventId: -1, timestamp: timestamp(now), taskCompleted: { taskScheduledId: taskId, result: response.result } };
    }
    const activation = this.activations.get(instanceId);
    if (activation && this.mayHold(activation, pending.executionId, taskId)) {
      this.hold(activation, { event, message: pending.message, heartbeat: pending.heartbeat });
      return;
    }
    pending.heartbeat.cancel();
    try {
      await this.deliver(instanceId, event, pending.executionId);
      pending.message.ack();
    } catch (error) {
      pending.message.nak(1000);
      // Not the worker's fault: the activity runs again once its step is recorded.
      if (asSkeinError(error).code === 'ERR_WORKFLOW_TASK_NOT_SCHEDULED') return;
      throw error;
    }
  }

  /**
   * True when a result can wait for the instance's next step here instead of being recorded on its own: this
   * sidecar has the instance loaded, running, in the result's execution, with the task in its history.
   */
  private mayHold(activation: Activation, executionId: string, taskId: number): boolean {
    const { state } = activation;
    return activation.ready && !activation.closed && state.exists && !state.terminal && state.executionId === executionId && state.hasScheduled(taskId);
  }

  private hold(activation: Activation, result: HeldResult): void {
    const key = deliveryKey(result.event);
    if (activation.state.delivered(result.event) || activation.held.some((held) => deliveryKey(held.event) === key)) {
      // A redelivered activity whose result is already here or recorded.
      result.heartbeat.cancel();
      result.message.ack();
      return;
    }
    activation.held.push(result);
    this.kick(activation);
  }

  /** Gives held results back to the work queue: the activities run again wherever the instance is next. */
  private release(activation: Activation): void {
    for (const held of activation.held.splice(0)) {
      held.heartbeat.cancel();
      held.message.nak();
    }
  }

  /** Takes this app's activities off its work queue while workers are connected, and hands each to one. */
  private async takeActivities(): Promise<void> {
    while ((this.workers.size > 0 || this.internal) && !this.stopping.signal.aborted) {
      try {
        const consumer = await this.store.activities();
        const messages = await consumer.consume({ max_messages: 256 });
        const stop = (): void => void messages.close();
        this.stopping.signal.addEventListener('abort', stop, { once: true });
        for await (const message of messages) {
          if (this.workers.size === 0 && !this.internal) {
            message.nak();
            break;
          }
          this.dispatchActivity(message);
        }
        this.stopping.signal.removeEventListener('abort', stop);
        await messages.close();
      } catch (error) {
        if (this.stopping.signal.aborted) return;
        log.warn('the activity queue is unavailable; retrying', { appId: this.options.appId, reason: (error as Error).message });
        await sleep(this.clock, 1000);
      }
    }
  }

  private dispatchActivity(message: JsMsg): void {
    let request: dt.ActivityRequest;
    try {
      request = dt.ActivityRequest.decode(message.data);
    } catch (error) {
      log.error('dropping an undecodable activity', { reason: (error as Error).message });
      message.term();
      return;
    }
    if (this.workers.size === 0 && !this.internal?.handles({ activityRequest: request })) {
      // Only the sidecar's own worker is here: the app's activities wait for a worker of the app.
      message.nak(5000);
      return;
    }
    const instanceId = request.orchestrationInstance?.instanceId ?? '';
    const key = `${instanceId}|${request.taskId}`;
    const previous = this.activities.get(key);
    previous?.heartbeat.cancel();
    const heartbeat = repeat(this.clock, ACTIVITY_ACK_WAIT_MS / 3, () => message.working());
    const pending: PendingActivity = { message, name: request.name ?? '', worker: '', executionId: request.orchestrationInstance?.executionId?.value ?? '', heartbeat };
    this.activities.set(key, pending);
    this.dispatch({ activityRequest: request }, (worker) => (pending.worker = worker));
  }

  // ---------------------------------------------------------------- the instance actor

  /**
   * An event as this app's instance may take it from its caller. The app's own sidecars send any event; another
   * app (already judged by the access policy) only starts, raises, terminates, suspends or resumes, and a start it
   * sends is rebuilt from its name, input, scheduled time and trace context alone — no parent to report to, a fresh
   * execution id — and may not reuse the id of an existing instance.
   */
  private fromCaller(call: ActorMethodCall, event: dt.HistoryEvent, activation: Activation): dt.IHistoryEvent {
    const own = call.caller.appId === this.options.appId && call.caller.namespace === this.options.namespace;
    const started = event.executionStarted;
    if (own || !started) return event;
    if (activation.state.exists) {
      throw new SkeinError('ERR_WORKFLOW_ACCESS_DENIED', `workflow access denied: ${call.caller.appId} may not start over workflow instance '${activation.state.instanceId}' of ${this.options.appId}: only ${this.options.appId} may reuse an instance id`);
    }
    checkPayload('input', text(started.input));
    return {
      eventId: -1,
      timestamp: event.timestamp,
      executionStarted: {
        name: started.name,
        input: started.input,
        orchestrationInstance: { instanceId: activation.state.instanceId, executionId: wrap(createExecutionId()) },
        ...(started.scheduledStartTimestamp ? { scheduledStartTimestamp: started.scheduledStartTimestamp } : {}),
        ...(started.parentTraceContext ? { parentTraceContext: started.parentTraceContext } : {}),
      },
    };
  }

  async invoke(actor: ActorRef, call: ActorMethodCall): Promise<ActorReply> {
    try {
      const activation = await this.activate(actor.actorId);
      this.options.access?.check(call, () => activation.state.started?.name ?? undefined);
      switch (call.method) {
        case 'event': {
          const event = HistoryEvent.decode(call.body);
          return await this.receive(activation, this.fromCaller(call, event, activation), headerOf(call, EXECUTION_HEADER));
        }
        case 'state':
          return reply(200, activation.state.exists ? JSON.stringify(stateJson(activation.state.view())) : 'null');
        case 'history':
          if (!activation.state.exists) throw new SkeinError('ERR_INSTANCE_ID_NOT_FOUND', `unable to find workflow with ID '${actor.actorId}'`);
          return reply(200, JSON.stringify(activation.state.entries()));
        case 'events':
          if (!activation.state.exists) throw new SkeinError('ERR_INSTANCE_ID_NOT_FOUND', `unable to find workflow with ID '${actor.actorId}'`);
          return { status: 200, headers: [], body: Buffer.from(dt.GetInstanceHistoryResponse.encode({ events: activation.state.history }).finish()) };
        case 'purge':
          return await this.purgeHere(activation, (JSON.parse(call.body.toString('utf8') || '{}') as { recursive?: boolean }).recursive === true);
        default:
          throw new SkeinError('ERR_NOT_FOUND', `the workflow actor has no method ${call.method}`);
      }
    } catch (error) {
      const skeinError = asSkeinError(error);
      return reply(skeinError.httpStatus, JSON.stringify({ errorCode: skeinError.code, message: skeinError.message }));
    }
  }

  async remind(actor: ActorRef, reminder: ReminderFire): Promise<ReminderOutcome> {
    const activation = await this.activate(actor.actorId);
    const { state } = activation;
    if (reminder.name.startsWith(TIMER_REMINDER_PREFIX)) {
      const data = reminder.data as { timerId?: number; fireAtMs?: number; executionId?: string } | undefined;
      const timerId = data?.timerId ?? Number(reminder.name.slice(TIMER_REMINDER_PREFIX.length));
      const event: dt.IHistoryEvent = { eventId: -1, timestamp: timestamp(this.clock.now()), timerFired: { timerId, fireAt: timestamp(data?.fireAtMs ?? this.clock.now()) } };
      await this.receiveEvent(activation, event, data?.executionId);
      return { status: 200, cancel: true };
    }
    if (reminder.name === WAKE_REMINDER) {
      if (!state.exists) return { status: 200, cancel: true };
      if (state.terminal) {
        await this.carryOut(activation, state.pendingEffects().filter((effect) => effect.kind === 'completed'));
        return { status: 200, cancel: true };
      }
      this.kick(activation);
    }
    return { status: 200, cancel: false };
  }

  async timer(): Promise<void> {
    // The engine uses reminders only.
  }

  async deactivate(actor: ActorRef): Promise<void> {
    const activation = this.activations.get(actor.actorId);
    if (!activation) return;
    activation.closed = true;
    this.release(activation);
    if (activation.startTimer) this.clock.clearTimeout(activation.startTimer);
    this.activations.delete(actor.actorId);
  }

  /** The instance's activation here, its history loaded and its unfinished effects re-issued once. */
  private async activate(instanceId: string): Promise<Activation> {
    let activation = this.activations.get(instanceId);
    if (!activation) {
      activation = new Activation(instanceId);
      this.activations.set(instanceId, activation);
    }
    const current = activation;
    current.loaded ??= (async () => {
      const { records } = await this.store.load(instanceId);
      for (const { record, sequence } of records) current.state.apply(record, sequence);
      if (current.state.exists && !current.state.terminal) {
        // One effect that cannot be re-issued must not make the instance unreadable (state, terminate, purge).
        await this.carryOut(current, current.state.pendingEffects()).catch((error: unknown) =>
          log.warn('an unfinished effect of a workflow instance could not be re-issued', { instanceId, reason: (error as Error).message }),
        );
        this.kick(current);
      }
      current.ready = true;
    })().catch((error: unknown) => {
      current.loaded = undefined;
      throw error;
    });
    await current.loaded;
    return current;
  }

  /** An event for the instance, from a client, an activity, a timer, a child or another instance. */
  private async receive(activation: Activation, event: dt.IHistoryEvent, executionId: string | undefined): Promise<ActorReply> {
    const { state } = activation;
    if (event.executionStarted) {
      if (state.exists && !state.terminal) throw new SkeinError('ERR_START_WORKFLOW', `an active workflow with ID '${state.instanceId}' already exists`);
      await this.receiveEvent(activation, event, undefined);
      await this.options.nc.flush();
      return reply(202, '');
    }
    if (!state.exists) throw new SkeinError('ERR_INSTANCE_ID_NOT_FOUND', `unable to find workflow with ID '${state.instanceId}'`);
    await this.receiveEvent(activation, event, executionId);
    return reply(202, '');
  }

  private async receiveEvent(activation: Activation, event: dt.IHistoryEvent, executionId: string | undefined): Promise<void> {
    const { state } = activation;
    await activation.serially(async () => {
      if (!event.executionStarted) {
        if (!state.exists || state.terminal) return;
        if (executionId && executionId !== state.executionId) return;
        if (state.delivered(event)) return;
        const task = event.taskCompleted?.taskScheduledId ?? event.taskFailed?.taskScheduledId;
        // An activity is queued while its step is being recorded; if that record never landed, its result waits.
        if (task !== undefined && task !== null && !state.hasScheduled(task)) {
          throw new SkeinError('ERR_WORKFLOW_TASK_NOT_SCHEDULED', `workflow instance '${state.instanceId}' has no activity ${task} scheduled in execution ${state.executionId}`);
        }
      }
      const record = { received: { events: [event] } };
      const sequence = await this.appendOrReload(activation, record);
      this.recorded(state, record);
      state.apply(record, sequence);
    });
    if (event.executionStarted) {
      // The first step need not wait for these: a crash before the reminder exists leaves a history no owner wakes,
      // so the start is only answered once both are written.
      this.kick(activation);
      await Promise.all([this.actors.createReminder(state.instanceId, WAKE_REMINDER, { dueTime: WAKE_PERIOD, period: WAKE_PERIOD }), this.writeSummary(state)]);
      return;
    } else if (event.executionTerminated?.recurse) {
      for (const child of state.children) await this.deliver(child, { eventId: -1, timestamp: timestamp(this.clock.now()), executionTerminated: { input: event.executionTerminated.input, recurse: true } }, undefined).catch(() => undefined);
    }
    this.kick(activation);
  }

  /** Publishes the telemetry of a record just appended (before `state` applies it); never throws, never waits. */
  private recorded(state: InstanceState, record: skein.workflow.v1.IHistoryRecord): void {
    const { telemetry } = this.options;
    if (!telemetry) return;
    try {
      telemetry.publish(recordTelemetry(state, record, this.options));
    } catch (error) {
      log.warn('the telemetry of a workflow record was not published', { instanceId: state.instanceId, reason: (error as Error).message });
    }
  }

  /** Appends; on a conflict (another writer), reloads the instance and fails this append. */
  private async appendOrReload(activation: Activation, record: skein.workflow.v1.IHistoryRecord): Promise<number> {
    try {
      return await this.store.append(activation.state.instanceId, record, activation.state.lastSequence);
    } catch (error) {
      if (error instanceof HistoryConflict) {
        log.warn('another sidecar extended this workflow instance; reloading it', { instanceId: activation.state.instanceId });
        activation.closed = true;
        this.release(activation);
        this.activations.delete(activation.state.instanceId);
      }
      throw error;
    }
  }

  /** Runs the next step when there is work and no step in flight. */
  private kick(activation: Activation): void {
    const { state } = activation;
    if (activation.stepping || activation.closed) return;
    const now = this.clock.now();
    if (!state.hasWork(now) && (activation.held.length === 0 || state.terminal)) {
      const due = state.startDueAt();
      if (due !== undefined && due > now && !activation.startTimer && state.inbox.length > 0) {
        activation.startTimer = this.clock.setTimeout(() => {
          activation.startTimer = undefined;
          this.kick(activation);
        }, due - now);
      }
      return;
    }
    activation.stepping = true;
    this.step(activation)
      .catch((error: unknown) => {
        if (!activation.closed && !this.stopping.signal.aborted) log.warn('a workflow step failed; it runs again', { instanceId: state.instanceId, reason: (error as Error).message });
        return sleep(this.clock, activation.closed ? 0 : 500);
      })
      .finally(() => {
        activation.stepping = false;
        if (!activation.closed && !this.stopping.signal.aborted) this.kick(activation);
      });
  }

  /** One orchestration step: send the history to a worker, record its answer, carry out the actions. */
  private async step(activation: Activation): Promise<void> {
    const { state } = activation;
    const before = state.status;
    // Results recorded meanwhile by another path (a redelivery delivered the old way) are done.
    for (const held of activation.held.filter((candidate) => state.delivered(candidate.event))) {
      activation.held.splice(activation.held.indexOf(held), 1);
      held.heartbeat.cancel();
      held.message.ack();
    }
    // What one step consumes is bounded by size (its record repeats it): the rest waits for the next step.
    const inboxCount = fitting(state.inbox, STEP_INPUT_BUDGET);
    const inboxBytes = activation.held.length === 0 ? 0 : state.inbox.slice(0, inboxCount).reduce((total, event) => total + HistoryEvent.encode(event).finish().length, 0);
    const holding = activation.held.slice(0, inboxCount < state.inbox.length ? 0 : fitting(activation.held.map((held) => held.event), STEP_INPUT_BUDGET - inboxBytes, inboxCount === 0));
    const { request, newEvents } = state.request(this.clock.now(), holding.map((held) => held.event), inboxCount);
    const response = await this.runOnWorker(state.instanceId, request);
    if (activation.closed) return;
    const { record: stepped, effects } = state.planStep(newEvents, response, this.clock.now(), holding.length);
    this.checkLimits(state, stepped, effects, newEvents.length);
    const record = { stepped };
    // Activities are queued while the step is recorded (one round trip instead of two). Their results are applied
    // after the record (one serial queue per instance); if the record does not land, the step runs again and queues
    // the same activities under the same ids (deduplicated), and a result that arrives first waits for it.
    const queued = this.carryOut(activation, effects.filter((effect) => effect.kind === 'activity'));
    queued.catch(() => undefined);
    await activation.serially(async () => {
      const sequence = await this.appendOrReload(activation, record);
      this.recorded(state, record);
      state.apply(record, sequence);
    });
    // The held results are in the history now: their activities are done.
    for (const held of holding) {
      const index = activation.held.indexOf(held);
      if (index >= 0) activation.held.splice(index, 1);
      held.heartbeat.cancel();
      held.message.ack();
    }
    await queued;
    await this.carryOut(activation, effects.filter((effect) => effect.kind !== 'activity'));
    if (state.status !== before || stepped.customStatus || stepped.newExecutionId) await this.writeSummary(state);
  }

  /** Replaces the step's answer by a failure when it would break a limit (payload size, history length). */
  private checkLimits(state: InstanceState, stepped: skein.workflow.v1.IStepped, effects: Effect[], given: number): void {
    const events = stepped.events ?? [];
    let problem: string | undefined;
    if (state.history.length + events.length > MAX_HISTORY_EVENTS) problem = `the history would hold ${state.history.length + events.length} events, over the limit of ${MAX_HISTORY_EVENTS}`;
    for (const event of events) {
      const payload = text(event.taskScheduled?.input ?? event.subOrchestrationInstanceCreated?.input ?? event.executionCompleted?.result ?? event.eventSent?.input);
      if (payload !== undefined && Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) problem = `a ${Object.keys(event).find((k) => k !== 'eventId' && k !== 'timestamp') ?? 'step'} payload is ${Buffer.byteLength(payload)} bytes, over the limit of ${MAX_PAYLOAD_BYTES} bytes`;
    }
    const recordBytes = skein.workflow.v1.HistoryRecord.encode({ stepped }).finish().length;
    if (!problem && recordBytes > MAX_RECORD_BYTES) problem = `one step would record ${recordBytes} bytes (for example a fan-out whose inputs add up), over the limit of ${MAX_RECORD_BYTES} bytes per step`;
    if (!problem) return;
    const at = timestamp(this.clock.now());
    const failure = { errorType: 'ERR_WORKFLOW_PAYLOAD_TOO_LARGE', errorMessage: `workflow instance '${state.instanceId}': ${problem}`, isNonRetriable: true };
    // What the orchestrator was given stays in the history (held results are recorded nowhere else).
    stepped.events = [...events.slice(0, given), { eventId: -1, timestamp: at, executionCompleted: { orchestrationStatus: WorkflowStatus.FAILED, failureDetails: failure } }];
    delete stepped.newExecutionId;
    delete stepped.restartEvents;
    effects.splice(0, effects.length, { kind: 'completed', status: WorkflowStatus.FAILED, result: undefined, failure });
  }

  /** Sends the work item to a worker here and waits for its answer; re-sends when the worker goes away or stalls. */
  private async runOnWorker(instanceId: string, request: dt.IOrchestratorRequest): Promise<dt.IOrchestratorResponse> {
    for (;;) {
      if (this.stopping.signal.aborted) throw new Error('the sidecar is stopping');
      try {
        return await new Promise<dt.IOrchestratorResponse>((resolve, reject) => {
          const run: PendingRun = { worker: '', resolve, reject };
          const item: dt.IWorkItem = { orchestratorRequest: request };
          const timer = this.clock.setTimeout(() => {
            if (this.runs.get(instanceId) === run) this.runs.delete(instanceId);
            if (run.worker) this.answered(run.worker);
            // Still waiting for a worker with room: it goes once, from the next attempt.
            else this.backlog = this.backlog.filter((entry) => entry.item !== item);
            reject(new Error(`no worker answered within ${this.orchestrationTimeoutMs} ms`));
          }, this.orchestrationTimeoutMs);
          run.resolve = (response) => {
            this.clock.clearTimeout(timer);
            resolve(response);
          };
          run.reject = (error) => {
            this.clock.clearTimeout(timer);
            reject(error);
          };
          this.runs.set(instanceId, run);
          this.dispatch(item, (worker) => (run.worker = worker));
        });
      } catch (error) {
        if (this.stopping.signal.aborted) throw error;
        log.warn('re-sending an orchestration work item', { instanceId, reason: (error as Error).message });
      }
    }
  }

  /** Carries out a recorded step's effects. Each is idempotent or at-least-once, so re-issuing after a failover is safe. */
  private async carryOut(activation: Activation, effects: readonly Effect[]): Promise<void> {
    const { state } = activation;
    const executionId = state.executionId;
    for (const effect of effects) {
      switch (effect.kind) {
        case 'activity': {
          const request: dt.IActivityRequest = { name: effect.name, input: wrap(effect.input), orchestrationInstance: { instanceId: state.instanceId, executionId: wrap(executionId) }, taskId: effect.taskId };
          await this.store.enqueueActivity(dt.ActivityRequest.encode(request).finish(), `${state.instanceId}|${executionId}|${effect.taskId}`);
          break;
        }
        case 'timer':
          await this.actors.createReminder(state.instanceId, `${TIMER_REMINDER_PREFIX}${effect.timerId}`, {
            dueTime: `${Math.max(0, effect.fireAtMs - this.clock.now())}ms`,
            data: { timerId: effect.timerId, fireAtMs: effect.fireAtMs, executionId },
          });
          break;
        case 'child': {
          const started = state.started;
          const event: dt.IHistoryEvent = {
            eventId: -1,
            timestamp: timestamp(this.clock.now()),
            executionStarted: {
              name: effect.name,
              input: wrap(effect.input),
              orchestrationInstance: { instanceId: effect.instanceId, executionId: wrap(createExecutionId()) },
              parentInstance: { taskScheduledId: effect.taskId, name: wrap(started?.name ?? ''), orchestrationInstance: { instanceId: state.instanceId, executionId: wrap(executionId) } },
              // The child's run is a span of the parent's trace, under the parent's workflow span.
              parentTraceContext: { traceParent: traceParentOf(runTrace(state.instanceId, executionId, started?.parentTraceContext)) },
            },
          };
          await this.deliver(effect.instanceId, event, undefined).catch((error: unknown) => {
            // Re-issued after a failover: the child already runs.
            if (asSkeinError(error).code !== 'ERR_START_WORKFLOW') throw error;
          });
          break;
        }
        case 'send':
          await this.deliver(effect.instanceId, { eventId: -1, timestamp: timestamp(this.clock.now()), eventRaised: { name: effect.name, input: wrap(effect.input) } }, undefined).catch((error: unknown) =>
            log.warn('an event sent by a workflow was not delivered', { instanceId: state.instanceId, target: effect.instanceId, reason: (error as Error).message }),
          );
          break;
        case 'terminate':
          await this.deliver(effect.instanceId, { eventId: -1, timestamp: timestamp(this.clock.now()), executionTerminated: { input: wrap(effect.reason), recurse: effect.recursive } }, undefined).catch(() => undefined);
          break;
        case 'completed': {
          const parent = state.started?.parentInstance;
          const parentId = parent?.orchestrationInstance?.instanceId;
          if (parentId) {
            const taskScheduledId = parent.taskScheduledId ?? 0;
            const at = timestamp(this.clock.now());
            const event: dt.IHistoryEvent =
              effect.status === WorkflowStatus.COMPLETED
                ? { eventId: -1, timestamp: at, subOrchestrationInstanceCompleted: { taskScheduledId, result: wrap(effect.result) } }
                : { eventId: -1, timestamp: at, subOrchestrationInstanceFailed: { taskScheduledId, failureDetails: effect.failure ?? { errorType: 'Terminated', errorMessage: `child workflow '${state.instanceId}' ended ${String(effect.status)}` } } };
            await this.deliver(parentId, event, parent.orchestrationInstance?.executionId?.value ?? undefined);
          }
          await this.actors.deleteReminder(state.instanceId, WAKE_REMINDER).catch(() => undefined);
          log.info('workflow instance finished', { instanceId: state.instanceId, name: state.started?.name, status: effect.status });
          break;
        }
      }
    }
  }

  /** Delivers an event to an instance of this app, wherever its owner is; `executionId` drops it if that execution ended. */
  private deliver(instanceId: string, event: dt.IHistoryEvent, executionId: string | undefined): Promise<void> {
    return this.client.deliver(instanceId, event, executionId);
  }

  private callInstance(instanceId: string, call: ActorCall): Promise<ActorReply> {
    return this.client.callInstance(instanceId, call);
  }

  private async writeSummary(state: InstanceState): Promise<void> {
    const view = state.view();
    await this.store
      .writeSummary({
        instanceId: view.instanceId,
        executionId: state.executionId,
        name: view.name,
        status: view.status,
        createdAtMs: view.createdAt.getTime(),
        lastUpdatedAtMs: view.lastUpdatedAt.getTime(),
        input: wrap(view.input),
        output: wrap(view.output),
        customStatus: wrap(view.customStatus),
        failureDetails: state.completion?.failureDetails ?? null,
        parentInstanceId: view.parentInstanceId ?? '',
        children: [...state.children],
        historyEvents: view.historyLength,
      })
      .catch((error: unknown) => log.warn('a workflow summary could not be written', { instanceId: state.instanceId, reason: (error as Error).message }));
  }

  private async purgeHere(activation: Activation, recursive: boolean): Promise<ActorReply> {
    const { state } = activation;
    if (!state.exists) throw new SkeinError('ERR_INSTANCE_ID_NOT_FOUND', `unable to find workflow with ID '${state.instanceId}'`);
    if (!state.terminal) throw new SkeinError('ERR_PURGE_WORKFLOW', `workflow instance '${state.instanceId}' is ${WorkflowStatus.RUNNING === state.status ? 'running' : 'not finished'}: only completed, failed or terminated instances can be purged`);
    if (recursive) {
      for (const child of state.children) {
        await this.callInstance(child, { method: 'purge', verb: 'PUT', headers: [], body: Buffer.from('{"recursive":true}') }).catch((error: unknown) => {
          if (asSkeinError(error).code !== 'ERR_INSTANCE_ID_NOT_FOUND') throw error;
        });
      }
    }
    await this.store.purge(state.instanceId);
    await this.actors.deleteReminder(state.instanceId, WAKE_REMINDER).catch(() => undefined);
    activation.closed = true;
    this.activations.delete(state.instanceId);
    return reply(200, '');
  }

  // ---------------------------------------------------------------- the client side (Workflows)

  start(request: StartRequest): Promise<string> {
    return this.client.start(request);
  }

  get(instanceId: string): Promise<WorkflowState | undefined> {
    return this.client.get(instanceId);
  }

  wait(instanceId: string, until: 'start' | 'completion', signal: AbortSignal): Promise<WorkflowState | undefined> {
    return this.client.wait(instanceId, until, signal);
  }

  raiseEvent(instanceId: string, eventName: string, input?: string): Promise<void> {
    return this.client.raiseEvent(instanceId, eventName, input);
  }

  terminate(instanceId: string, options: { output?: string | undefined; recursive: boolean }): Promise<void> {
    return this.client.terminate(instanceId, options);
  }

  suspend(instanceId: string, reason?: string): Promise<void> {
    return this.client.suspend(instanceId, reason);
  }

  resume(instanceId: string, reason?: string): Promise<void> {
    return this.client.resume(instanceId, reason);
  }

  purge(instanceId: string, options: { recursive: boolean }): Promise<boolean> {
    return this.client.purge(instanceId, options);
  }

  list(query: ListQuery): Promise<ListPage> {
    return this.client.list(query);
  }

  history(instanceId: string): Promise<HistoryEntry[]> {
    return this.client.history(instanceId);
  }

  /** The events of the instance's current execution as durabletask has them (GetInstanceHistory). */
  historyEvents(instanceId: string): Promise<dt.IHistoryEvent[]> {
    return this.client.historyEvents(instanceId);
  }

  /**
   * A client of another app's instances in this namespace, without hosting them: its calls reach the instances'
   * owners as this sidecar's app, and that app's WorkflowAccessPolicies judge them there. One per app, kept.
   */
  forApp(appId: string): Workflows {
    if (appId === this.options.appId) return this;
    let client = this.otherApps.get(appId);
    if (!client) {
      client = this.clientOf(appId);
      // Names come from API callers: past a bound, a client is made per call instead of kept.
      if (this.otherApps.size < MAX_OTHER_APP_CLIENTS) this.otherApps.set(appId, client);
    }
    return client;
  }

  private clientOf(appId: string, store?: WorkflowStore): WorkflowClient {
    const { options } = this;
    return new WorkflowClient({ appId, namespace: options.namespace, nc: options.nc, invokeActor: (...call) => options.invokeActor(...call), clock: this.clock, signal: this.stopping.signal, ...(store ? { store } : {}) });
  }

  /** Stops taking work; instances stay in JetStream for the next owner. */
  stop(): void {
    this.stopping.abort();
    for (const pending of this.activities.values()) {
      pending.heartbeat.cancel();
      pending.message.nak();
    }
    this.activities.clear();
    this.backlog = [];
    for (const run of this.runs.values()) run.reject(new Error('the sidecar is stopping'));
    this.runs.clear();
    for (const activation of this.activations.values()) {
      activation.closed = true;
      this.release(activation);
      if (activation.startTimer) this.clock.clearTimeout(activation.startTimer);
    }
  }
}

/** Of the inbox and held results, what one step may consume: half a record, the other half for what it produces. */
const STEP_INPUT_BUDGET = Math.floor(MAX_RECORD_BYTES / 2);

/**
 * How many of `events`, from the front, fit in `budget` encoded bytes; at least one when `atLeastOne` (a step
 * must make progress even on one large event, which its payload limit keeps under the budget).
 */
function fitting(events: readonly dt.IHistoryEvent[], budget: number, atLeastOne = true): number {
  // The common step takes one event, whose payload limit keeps it well under the budget: nothing to measure.
  if (events.length <= 1 && (atLeastOne || budget >= STEP_INPUT_BUDGET / 2)) return events.length;
  let used = 0;
  for (let i = 0; i < events.length; i++) {
    used += HistoryEvent.encode(events[i] as dt.IHistoryEvent).finish().length;
    if (used > budget) return i === 0 && atLeastOne ? 1 : i;
  }
  return events.length;
}

/** A callback run every `ms` until cancelled. */
interface Repeating {
  cancel(): void;
}

function repeat(clock: Clock, ms: number, callback: () => void): Repeating {
  let handle: TimerHandle | undefined;
  let cancelled = false;
  const arm = (): void => {
    handle = clock.setTimeout(() => {
      if (cancelled) return;
      callback();
      arm();
    }, ms);
  };
  arm();
  return {
    cancel() {
      cancelled = true;
      clock.clearTimeout(handle);
    },
  };
}

function reply(status: number, body: string): ActorReply {
  return { status, headers: [['content-type', 'application/json']], body: Buffer.from(body) };
}

function headerOf(call: ActorMethodCall, name: string): string | undefined {
  for (const [key, value] of call.headers) if (key.toLowerCase() === name) return value;
  return undefined;
}

function stateJson(state: WorkflowState): StateJson {
  return { ...state, createdAt: state.createdAt.toISOString(), lastUpdatedAt: state.lastUpdatedAt.toISOString() };
}
