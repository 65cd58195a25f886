import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { skein } from '@skein/proto';
import { type TableSpec, SkeinError, logger, IDENTITY_HEADERS, type HeaderList, KvBucket, clockTimeout, sleep, systemClock, type Clock, type TimerHandle, type SpiffeId } from '@skein/core';
import type { WorkloadIdentity } from '../identity/workload.js';
import { compose, type Call, type Middleware } from '../pipeline/pipeline.js';
import { ACTOR_DEFAULTS, NO_ACTORS, type ActorAppConfig, type ActorTypeSettings } from './app-config.js';
import {
  REENTRANCY_HEADER,
  type ActorCall,
  type ActorCaller,
  type ActorHost,
  type ActorRef,
  type ActorReply,
  type ActorTurn,
  type InternalTypeContext,
  type InternalTypeSettings,
  type ReminderOutcome,
  type ScheduleRequest,
} from './actor-host.js';
import type { AppActorHost } from './actor-host-app.js';
import { actorKey, validateActorName } from './names.js';
import { ActorPeers, classifyPeerFailure } from './peers.js';
import { PlacementClient } from './placement-client.js';
import { PlacementView } from './placement-view.js';
import { ReminderService, type StoredReminder } from './reminders.js';
import { checkMethod, parseReminderRequest, parseTimerRequest, type StateOperation } from './requests.js';
import { ActorStateStore } from './state-store.js';
import { ActivationTimers, type ActorTimer } from './timers.js';
import { StackDepthError, TurnLock } from './turn-lock.js';

export { REENTRANCY_HEADER, type ActorCall, type ActorCaller, type ActorReply } from './actor-host.js';

const log = logger('actors');

/** How many times a call may be passed on between sidecars whose tables disagree. */
const MAX_HOPS = 3;
/** How long a call for an actor type with no host waits for one to join before failing. */
const NO_HOST_GRACE_MS = 3000;
/** A leaving sidecar keeps answering until no call has come for this long (other sidecars have the new table)... */
const LEAVE_QUIET_MS = 500;
/** ...but no longer than this. */
const LEAVE_LINGER_MAX_MS = 3000;
/** How often a call whose owner is unreachable looks again (placement drops a dead host within its TTL). */
const UNREACHABLE_RETRY_MS = 250;
/** The idle scan never waits longer than Node's timers can. */
const MAX_SCAN_INTERVAL_MS = 2_000_000_000;
/** Actor types of this prefix are the sidecar's own (Dapr reserves it); an app cannot declare them. */
export const INTERNAL_TYPE_PREFIX = 'dapr.internal.';

/** One operation on an actor, routed to its owner. */
export type ActorOperation = { kind: 'call'; call: ActorCall; caller: ActorCaller } | { kind: 'createTimer'; name: string; spec: Buffer } | { kind: 'deleteTimer'; name: string };

/** Options of the actor runtime of one sidecar. */
export interface ActorRuntimeOptions {
  appId: string;
  namespace: string;
  instanceId: string;
  /** Placement replicas, `host:port`. */
  placementAddresses: readonly string[];
  identity: WorkloadIdentity;
  /** The app behind the sidecar as an actor host; undefined for a sidecar without an app port. */
  appHost: AppActorHost | undefined;
  /** How long a call may wait for a table, an UNLOCK and its turn before it fails. */
  callTimeoutMs?: number;
  /** Where every deadline, timer and timestamp of the runtime comes from; the system clock by default. */
  clock?: Clock;
}

/** Returned by a local run when the actor turned out to be owned elsewhere: route the operation again. */
const MOVED = Symbol('moved');

/** One activation: an actor this sidecar owns and has called, with its turn lock and timers. */
class Activation implements ActorRef {
  readonly actorType: string;
  readonly actorId: string;
  readonly host: ActorHost;
  readonly lock: TurnLock;
  readonly timers: ActivationTimers;
  lastUsed: number;
  turns = 0;
  deactivated = false;

  constructor(actor: ActorRef, host: ActorHost, maxStackDepth: number, clock: Clock, fireTimer: (activation: Activation, timer: ActorTimer) => Promise<'keep' | 'drop'>) {
    this.actorType = actor.actorType;
    this.actorId = actor.actorId;
    this.host = host;
    this.lock = new TurnLock(maxStackDepth);
    this.timers = new ActivationTimers((timer) => fireTimer(this, timer), clock);
    this.lastUsed = clock.now();
  }
}

/** What `/v1.0/metadata` reports as `actorRuntime`. */
export interface ActorRuntimeStatus {
  runtimeStatus: string;
  activeActors: Array<{ type: string; count: number }>;
  hostReady: boolean;
  placement: string;
}

/** An actor type of the sidecar itself, run in-process. */
interface InternalType {
  host: ActorHost;
  settings: ActorTypeSettings;
}

/**
 * Headers a caller may never pass to an actor: the identity only the owner's sidecar stamps, the credentials meant
 * for the caller's own sidecar (`authorization` included), and the sidecar's own headers. They are dropped where
 * a call enters the runtime, locally or from another sidecar, so they are neither sent on nor seen by the app.
 */
const CALLER_FORBIDDEN_HEADERS: ReadonlySet<string> = new Set([...IDENTITY_HEADERS, 'authorization', 'dapr-api-token', 'dapr-app-id']);

function callerHeaders(headers: HeaderList): HeaderList {
  return headers.filter(([name]) => !CALLER_FORBIDDEN_HEADERS.has(name));
}

/**
 * The actor runtime of one sidecar. It follows placement (through `PlacementClient` into a `PlacementView`),
 * routes every actor operation to the owner on the ring — itself, or another sidecar over mTLS gRPC — and, for the
 * actors it owns, keeps activations: one turn at a time, reentrancy by id, idle deactivation, in-memory timers, and
 * reminders it fires from JetStream. A call waits (bounded) while its type is locked or the table is missing, and
 * then reaches whichever sidecar owns the actor under the new table. What runs inside a turn is an `ActorHost`:
 * the app for the types its `/dapr/config` declares, an in-process host for each internal type.
 */
export class ActorRuntime {
  private readonly options: ActorRuntimeOptions;
  private readonly clock: Clock;
  private readonly view = new PlacementView();
  private readonly peers: ActorPeers;
  private readonly activations = new Map<string, Activation>();
  private readonly internalTypes = new Map<string, InternalType>();
  private config: ActorAppConfig = NO_ACTORS;
  /** Every type this sidecar hosts, the app's and its own: what it reports to placement. */
  private hostedTypes: readonly string[] = [];
  private address = '';
  private placement: PlacementClient | undefined;
  private stateStore: ActorStateStore | undefined;
  private reminderService: ReminderService | undefined;
  private scanner: TimerHandle | undefined;
  /** Stages a call from another app passes before it runs (the callee's App-ID access control). */
  private inboundStages: readonly Middleware[] = [];
  private leaving = false;
  private started = false;
  /** Calls from other sidecars still being answered; a leaving sidecar answers them all before it closes. */
  private remoteInFlight = 0;
  private lastRemoteAt = 0;
  private remoteSettled: Array<() => void> = [];

  constructor(options: ActorRuntimeOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.peers = new ActorPeers(options.identity, options.namespace);
  }

  private get callTimeoutMs(): number {
    return this.options.callTimeoutMs ?? 30_000;
  }

  /** Opens the state and reminder buckets on the sidecar's NATS connection; internal types start being hosted. */
  start(nc: NatsConnection, address: string): void {
    this.address = address;
    this.stateStore = new ActorStateStore(new KvBucket(nc, 'actorState'), this.clock);
    this.reminderService = new ReminderService(
      new KvBucket(nc, 'actorReminders'),
      this.options.namespace,
      {
        owns: (actorType, actorId) => !this.leaving && this.view.ownerOf(actorType, actorId)?.address === this.address,
        fire: (reminder) => this.fireReminder(reminder),
      },
      this.clock,
    );
    this.started = true;
    if (this.internalTypes.size > 0) this.hostInternal([...this.internalTypes.keys()]);
  }

  /**
   * Reads the app's `GET /dapr/config` (the app listens by now) and, when it hosts actor types, joins placement
   * with them and starts watching their reminders. An app that hosts nothing joins placement on its first actor call.
   */
  async hostApp(): Promise<void> {
    const config = (await this.options.appHost?.readConfig()) ?? NO_ACTORS;
    const reserved = config.entities.filter((type) => type.startsWith(INTERNAL_TYPE_PREFIX));
    if (reserved.length > 0) log.error(`actor types starting with "${INTERNAL_TYPE_PREFIX}" are the sidecar's own; the app's are ignored`, { actorTypes: reserved });
    const entities = config.entities.filter((type) => !type.startsWith(INTERNAL_TYPE_PREFIX));
    this.config = reserved.length === 0 ? config : { ...config, entities, settingsOf: (type: string) => config.settingsOf(type) };
    this.updateHostedTypes();
    if (entities.length === 0) return;
    log.info('hosting actor types', { actorTypes: entities, idleTimeoutMs: this.config.settingsOf(entities[0] as string).idleTimeoutMs });
    await this.beginHosting(entities);
  }

  /**
   * Hosts `actorType` in-process: placement places its actors like any other type this sidecar hosts, and each of
   * their turns, reminders, timers and deactivations runs on `host`. Internal types are named
   * `dapr.internal.<...>` (e.g. `dapr.internal.<namespace>.<appId>.workflow`). May be called before or after `start`.
   */
  registerInternalType(actorType: string, host: ActorHost, settings: InternalTypeSettings = {}): InternalTypeContext {
    const problem = validateActorName(actorType);
    if (problem) throw new SkeinError('ERR_BAD_REQUEST', `invalid request: invalid actorType "${actorType}": ${problem}`);
    if (!actorType.startsWith(INTERNAL_TYPE_PREFIX)) throw new SkeinError('ERR_BAD_REQUEST', `invalid request: an internal actor type must start with "${INTERNAL_TYPE_PREFIX}", not "${actorType}"`);
    if (this.internalTypes.has(actorType)) throw new SkeinError('ERR_BAD_REQUEST', `invalid request: actor type "${actorType}" is already registered`);
    if (this.leaving) throw new SkeinError('ERR_ACTOR_HOST_LEAVING', `${this.options.appId} is shutting down`);
    this.internalTypes.set(actorType, {
      host,
      settings: Object.freeze({
        idleTimeoutMs: settings.idleTimeoutMs ?? ACTOR_DEFAULTS.idleTimeoutMs,
        reentrancy: Object.freeze({ ...{ enabled: false, maxStackDepth: ACTOR_DEFAULTS.maxStackDepth }, ...settings.reentrancy }),
      }),
    });
    this.updateHostedTypes();
    log.info('hosting internal actor type', { actorType });
    if (this.started) this.hostInternal([actorType]);
    const json = (request: unknown): Buffer => Buffer.from(JSON.stringify(request));
    return Object.freeze({
      actorType,
      getState: (actorId: string, key: string) => this.getState(actorType, actorId, key),
      transactState: (actorId: string, operations: readonly StateOperation[]) => this.transactState(actorType, actorId, operations),
      createReminder: (actorId: string, name: string, request: ScheduleRequest) => this.createReminder(actorType, actorId, name, json(request)),
      deleteReminder: (actorId: string, name: string) => this.deleteReminder(actorType, actorId, name),
      createTimer: (actorId: string, name: string, request: ScheduleRequest, signal: AbortSignal) => this.createTimer(actorType, actorId, name, json(request), signal),
      deleteTimer: (actorId: string, name: string, signal: AbortSignal) => this.deleteTimer(actorType, actorId, name, signal),
      invoke: (type: string, actorId: string, call: ActorCall, signal: AbortSignal) => this.invoke(type, actorId, call, signal),
    });
  }

  private updateHostedTypes(): void {
    this.hostedTypes = Object.freeze([...this.config.entities, ...this.internalTypes.keys()]);
  }

  /** Joins placement (or tells it about new types), watches the types' reminders and starts the idle scan. */
  /** Begins hosting internal types in the background; a failure is logged (placement retries on its own). */
  private hostInternal(actorTypes: readonly string[]): void {
    this.beginHosting(actorTypes).catch((error: unknown) => log.error('an internal actor type could not be hosted', { actorTypes, reason: (error as Error).message }));
  }

  private async beginHosting(actorTypes: readonly string[]): Promise<void> {
    this.joinPlacement();
    this.placement?.reportNow();
    if (!this.scanner && !this.leaving) this.scheduleScan();
    await this.reminderService?.watch(actorTypes);
  }

  private scheduleScan(): void {
    this.scanner = this.clock.setTimeout(() => {
      this.deactivateIdle();
      this.scheduleScan();
    }, Math.min(this.config.scanIntervalMs, MAX_SCAN_INTERVAL_MS));
  }

  /**
   * Sets the stages a call from another app's sidecar passes before it runs: the callee's App-ID access control,
   * with each decision recorded. Called again whenever the inbound policies are reloaded.
   */
  useInboundStages(stages: readonly Middleware[]): void {
    this.inboundStages = stages;
  }

  private joinPlacement(): void {
    if (this.placement || this.leaving) return;
    const { options } = this;
    if (options.placementAddresses.length === 0) throw new SkeinError('ERR_ACTOR_RUNTIME_NOT_FOUND', 'the actor runtime is not enabled: no placement address');
    this.placement = new PlacementClient({
      addresses: options.placementAddresses,
      identity: options.identity,
      clock: this.clock,
      report: () => ({ appId: options.appId, namespace: options.namespace, address: this.address, actorTypes: this.leaving ? [] : this.hostedTypes, instanceId: options.instanceId }),
      orders: {
        lock: (actorTypes) => this.view.lock(actorTypes),
        update: (table, version) => this.install(table, version),
        unlock: () => this.view.unlock(),
      },
    });
    this.placement.start();
  }

  /** UPDATE: the new table, then every local actor that moved away is deactivated (after its running turn). */
  private async install(table: TableSpec, version: string): Promise<void> {
    this.view.update(table, version);
    const moved = [...this.activations.values()].filter((activation) => this.view.ownerOf(activation.actorType, activation.actorId)?.address !== this.address);
    if (moved.length > 0) log.info('deactivating actors that moved to other hosts', { count: moved.length, version });
    await Promise.all(moved.map((activation) => this.deactivate(activation, 'rebalanced', this.config.drainOngoingCallTimeoutMs)));
    this.reminderService?.reschedule();
  }

  /** True when this sidecar hosts `actorType`: its app declared it, or it is one of the sidecar's internal types. */
  hosts(actorType: string): boolean {
    return this.hostOf(actorType) !== undefined;
  }

  private hostOf(actorType: string): ActorHost | undefined {
    const internal = this.internalTypes.get(actorType);
    if (internal) return internal.host;
    return this.config.entities.includes(actorType) ? this.options.appHost : undefined;
  }

  private settingsOf(actorType: string): ActorTypeSettings {
    return this.internalTypes.get(actorType)?.settings ?? this.config.settingsOf(actorType);
  }

  /** Invokes an actor method wherever the actor lives, on behalf of this sidecar's app. */
  invoke(actorType: string, actorId: string, call: ActorCall, signal: AbortSignal): Promise<ActorReply> {
    checkMethod(call.method);
    return this.dispatch(actorType, actorId, { kind: 'call', call: { ...call, headers: callerHeaders(call.headers) }, caller: this.ownApp() }, 0, signal);
  }

  /** This sidecar's app: the caller of calls made through its API, and of its reminders and timers. */
  private ownApp(): ActorCaller {
    return { appId: this.options.appId, namespace: this.options.namespace };
  }

  /** Creates (or replaces) a timer on the actor's owner; the body is validated here and again by the owner. */
  async createTimer(actorType: string, actorId: string, name: string, spec: Buffer, signal: AbortSignal): Promise<void> {
    parseTimerRequest(spec, this.clock.now());
    await this.dispatch(actorType, actorId, { kind: 'createTimer', name, spec }, 0, signal);
  }

  /** Deletes a timer on the actor's owner. */
  async deleteTimer(actorType: string, actorId: string, name: string, signal: AbortSignal): Promise<void> {
    await this.dispatch(actorType, actorId, { kind: 'deleteTimer', name }, 0, signal);
  }

  /** One key of an actor's state, as JSON. */
  getState(actorType: string, actorId: string, key: string): Promise<string | undefined> {
    return this.store().get(this.options.namespace, actorType, actorId, key);
  }

  /** Applies a state transaction atomically. */
  transactState(actorType: string, actorId: string, operations: readonly StateOperation[]): Promise<void> {
    return this.store().transact(this.options.namespace, actorType, actorId, operations);
  }

  /** Creates or replaces a reminder. */
  async createReminder(actorType: string, actorId: string, name: string, body: Buffer): Promise<void> {
    const now = this.clock.now();
    const { request, schedule } = parseReminderRequest(body, now);
    await this.reminders().create(actorType, actorId, name, request, schedule, now);
  }

  /** A reminder as Dapr's GET returns it, or undefined. */
  async getReminder(actorType: string, actorId: string, name: string): Promise<Record<string, unknown> | undefined> {
    const reminder = await this.reminders().get(actorType, actorId, name);
    if (!reminder) return undefined;
    return {
      actorID: reminder.actorId,
      actorType: reminder.actorType,
      ...(reminder.data === undefined ? {} : { data: reminder.data }),
      ...(reminder.dueTime ? { dueTime: reminder.dueTime } : {}),
      ...(reminder.period ? { period: reminder.period } : {}),
      ...(reminder.ttl ? { ttl: reminder.ttl } : {}),
    };
  }

  /** Deletes a reminder. */
  deleteReminder(actorType: string, actorId: string, name: string): Promise<void> {
    return this.reminders().delete(actorType, actorId, name);
  }

  private store(): ActorStateStore {
    if (!this.stateStore) throw new SkeinError('ERR_ACTOR_RUNTIME_NOT_FOUND', 'the actor runtime is still starting');
    return this.stateStore;
  }

  private reminders(): ReminderService {
    if (!this.reminderService) throw new SkeinError('ERR_ACTOR_RUNTIME_NOT_FOUND', 'the actor runtime is still starting');
    return this.reminderService;
  }

  /**
   * An operation another sidecar sent here because its table says this sidecar owns the actor. `caller` is that
   * sidecar's verified mTLS identity: nothing in the request itself says who is calling. A call from another app
   * passes the callee's inbound stages (App-ID access control) first; one from a sidecar of this same app is that
   * app's own call, passed on because the tables disagreed, and is not checked again.
   */
  async handleRemote(request: skein.internal.v1.IActorRequest, caller: SpiffeId, signal: AbortSignal): Promise<skein.internal.v1.IActorResponse> {
    const actorType = request.actorType ?? '';
    const actorId = request.actorId ?? '';
    this.lastRemoteAt = this.clock.now();
    if (request.namespace !== this.options.namespace) throw new SkeinError('ERR_BAD_REQUEST', `invalid request: this sidecar serves namespace ${this.options.namespace}, not ${request.namespace ?? ''}`);
    for (const [kind, name] of [['actorType', actorType], ['actorId', actorId]] as const) {
      const problem = validateActorName(name);
      if (problem) throw new SkeinError('ERR_BAD_REQUEST', `invalid request: invalid ${kind} "${name}": ${problem}`);
    }
    if (this.leaving) throw new SkeinError('ERR_ACTOR_HOST_LEAVING', `${this.options.appId} at ${this.address} is shutting down`);
    let operation: ActorOperation;
    if (request.call) {
      // The sending sidecar validated the method too, but this one does not rely on it: the method reaches its app's path.
      const method = checkMethod(request.call.method ?? '');
      operation = {
        kind: 'call',
        call: {
          method,
          verb: request.call.verb ?? 'PUT',
          headers: callerHeaders((request.call.headers ?? []).map((header) => [String(header.name).toLowerCase(), String(header.value)])),
          body: Buffer.from(request.call.body ?? []),
        },
        caller: { appId: caller.appId, namespace: caller.namespace },
      };
    } else if (request.createTimer) {
      operation = { kind: 'createTimer', name: request.createTimer.name ?? '', spec: Buffer.from(request.createTimer.spec ?? []) };
    } else if (typeof request.deleteTimer === 'string') {
      operation = { kind: 'deleteTimer', name: request.deleteTimer };
    } else {
      throw new SkeinError('ERR_BAD_REQUEST', 'invalid request: an actor request without an operation');
    }
    this.remoteInFlight++;
    try {
      const run = (): Promise<ActorReply> => this.dispatch(actorType, actorId, operation, request.hops ?? 0, signal);
      const fromOtherApp = caller.appId !== this.options.appId;
      const reply = fromOtherApp && this.inboundStages.length > 0 ? await this.admit(actorType, actorId, operation, caller, signal, run) : await run();
      return { status: reply.status, headers: reply.headers.map(([name, value]) => ({ name, value })), body: reply.body };
    } finally {
      if (--this.remoteInFlight === 0) for (const settled of this.remoteSettled.splice(0)) settled();
    }
  }

  /**
   * Runs `run` behind the inbound stages, as the callee's pipeline runs a service invocation. The operation the
   * stages see is the path the app serves the call on, `actors/<type>/<id>/method/<method>` (timers:
   * `actors/<type>/<id>/timers/<name>`), with the verb the client used, so one access-control rule covers an actor
   * method however it is reached.
   */
  private async admit(actorType: string, actorId: string, operation: ActorOperation, caller: SpiffeId, signal: AbortSignal, run: () => Promise<ActorReply>): Promise<ActorReply> {
    const actor = `actors/${encodeURIComponent(actorType)}/${encodeURIComponent(actorId)}`;
    const [method, verb, headers, body] =
      operation.kind === 'call'
        ? [`${actor}/method/${operation.call.method.split('/').map(encodeURIComponent).join('/')}`, operation.call.verb, operation.call.headers, operation.call.body]
        : operation.kind === 'createTimer'
          ? [`${actor}/timers/${encodeURIComponent(operation.name)}`, 'PUT', [] as HeaderList, operation.spec]
          : [`${actor}/timers/${encodeURIComponent(operation.name)}`, 'DELETE', [] as HeaderList, Buffer.alloc(0)];
    const request: Call = { caller, target: { appId: this.options.appId, namespace: this.options.namespace }, verb, method, query: '', headers, body, decisions: [], signal };
    // The reply stays a buffer: the stream handed to the stages is only read back if a stage replaced it.
    let reply: ActorReply | undefined;
    let replyBody: Readable | undefined;
    const response = await compose(this.inboundStages, async () => {
      reply = await run();
      replyBody = Readable.from([reply.body]);
      return { status: reply.status, headers: reply.headers, body: replyBody };
    })(request);
    if (reply && response.body === replyBody && response.status === reply.status && response.headers === reply.headers) return reply;
    const chunks: Buffer[] = [];
    for await (const chunk of response.body) chunks.push(Buffer.from(chunk as Uint8Array));
    return { status: response.status, headers: response.headers, body: Buffer.concat(chunks) };
  }

  /**
   * Routes an operation: waits for a table and for the type to be unlocked, then runs it here when this sidecar
   * owns the actor, or sends it to the owner. A call whose owner could not be reached at all, or is leaving, waits
   * for the next table and tries again until the call times out.
   */
  private async dispatch(actorType: string, actorId: string, operation: ActorOperation, hops: number, callerSignal: AbortSignal): Promise<ActorReply> {
    if (!this.started) throw new SkeinError('ERR_ACTOR_RUNTIME_NOT_FOUND', 'the actor runtime is still starting');
    this.joinPlacement();
    const deadline = this.clock.now() + this.callTimeoutMs;
    const timeout = clockTimeout(this.clock, this.callTimeoutMs);
    try {
      return await this.route(actorType, actorId, operation, hops, callerSignal, AbortSignal.any([callerSignal, timeout.signal]), deadline);
    } finally {
      timeout.cancel();
    }
  }

  private async route(actorType: string, actorId: string, operation: ActorOperation, hops: number, callerSignal: AbortSignal, signal: AbortSignal, deadline: number): Promise<ActorReply> {
    let lastRetryReason: string | undefined;
    for (;;) {
      const owner = await this.awaitOwner(actorType, actorId, deadline, signal, lastRetryReason);
      if (owner.address === this.address) {
        const reply = await this.runLocal(actorType, actorId, operation, signal);
        if (reply !== MOVED) return reply;
        continue;
      }
      if (hops >= MAX_HOPS) {
        throw new SkeinError('ERR_ACTOR_INVOKE_METHOD', `error invoke actor method: passed on ${hops} times between sidecars whose placement tables disagree; try again`);
      }
      try {
        const response = await this.peers.call(owner, toActorRequest(this.options.namespace, actorType, actorId, operation, hops + 1), deadline, signal);
        return { status: response.status ?? 500, headers: (response.headers ?? []).map((header) => [String(header.name), String(header.value)]), body: Buffer.from(response.body ?? []) };
      } catch (error) {
        const failure = classifyPeerFailure(error, owner);
        if (failure.kind === 'error') {
          if (callerSignal.aborted || !signal.aborted) throw failure.error;
          throw timedOut(actorType, actorId, this.callTimeoutMs, `the call to ${owner.address} did not finish`);
        }
        lastRetryReason = failure.reason;
        log.debug('actor host not reachable; waiting for the next table', { actorType, address: owner.address, reason: failure.reason });
        await this.waitForChange(deadline, signal, UNREACHABLE_RETRY_MS);
      }
    }
  }

  /** The owner of an actor once the table allows a call to it; waits for a table and for UNLOCK. */
  private async awaitOwner(actorType: string, actorId: string, deadline: number, signal: AbortSignal, retryReason: string | undefined): Promise<{ address: string; appId: string }> {
    const started = this.clock.now();
    for (;;) {
      // A leaving sidecar gets no more tables: a call waiting here goes back to its caller, which retries elsewhere.
      if (this.leaving) throw new SkeinError('ERR_ACTOR_HOST_LEAVING', `${this.options.appId} at ${this.address} is shutting down`);
      if (signal.aborted || this.clock.now() >= deadline) {
        const route = this.view.route(actorType, actorId);
        const why = retryReason ?? (route.kind === 'wait' ? route.reason : 'the owner could not be reached');
        throw timedOut(actorType, actorId, this.callTimeoutMs, why);
      }
      const route = this.view.route(actorType, actorId);
      if (route.kind === 'owner') return route.member;
      if (route.kind === 'no-host' && this.clock.now() - started >= NO_HOST_GRACE_MS) {
        throw new SkeinError('ERR_ACTOR_INVOKE_METHOD', `error invoke actor method: no host serves actor type "${actorType}" in namespace "${this.options.namespace}"`);
      }
      await this.waitForChange(deadline, signal, route.kind === 'no-host' ? NO_HOST_GRACE_MS : Number.POSITIVE_INFINITY);
    }
  }

  private waitForChange(deadline: number, signal: AbortSignal, capMs: number): Promise<void> {
    const remaining = Math.min(deadline - this.clock.now(), capMs);
    if (remaining <= 0 || signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.clock.clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = this.clock.setTimeout(done, remaining);
      signal.addEventListener('abort', done, { once: true });
      void this.view.changed().then(done);
    });
  }

  /** Runs an operation on an actor this sidecar owns; MOVED when it turns out not to (any more). */
  private async runLocal(actorType: string, actorId: string, operation: ActorOperation, signal: AbortSignal): Promise<ActorReply | typeof MOVED> {
    switch (operation.kind) {
      case 'createTimer': {
        const { request, schedule } = parseTimerRequest(operation.spec, this.clock.now());
        this.activate(actorType, actorId).timers.set(operation.name, request, schedule);
        return { status: 204, headers: [], body: Buffer.alloc(0) };
      }
      case 'deleteTimer':
        this.activate(actorType, actorId).timers.delete(operation.name);
        return { status: 204, headers: [], body: Buffer.alloc(0) };
      case 'call': {
        const given = operation.call.headers.find(([name]) => name === REENTRANCY_HEADER)?.[1];
        const call = { ...operation.call, headers: callerHeaders(operation.call.headers), caller: operation.caller };
        return this.runTurn(actorType, actorId, given, signal, (activation, turn) => activation.host.invoke(activation, call, turn));
      }
    }
  }

  /**
   * Runs `body` as one turn of the actor (joining the running turn when `givenReentrancyId` is its call chain's),
   * while this sidecar owns it under the current, unlocked table; MOVED when it does not.
   */
  private async runTurn<T>(actorType: string, actorId: string, givenReentrancyId: string | undefined, signal: AbortSignal, body: (activation: Activation, turn: ActorTurn) => Promise<T>): Promise<T | typeof MOVED> {
    for (;;) {
      const activation = this.activate(actorType, actorId);
      const settings = this.settingsOf(actorType);
      const reentrancyId = settings.reentrancy.enabled ? (givenReentrancyId ?? randomUUID()) : undefined;
      let turn;
      try {
        turn = await activation.lock.acquire(reentrancyId, signal);
      } catch (error) {
        if (error instanceof StackDepthError) throw new SkeinError('ERR_ACTOR_STACK_DEPTH', `error invoke actor method: ${error.message}`, { cause: error });
        throw timedOut(actorType, actorId, this.callTimeoutMs, 'waiting for the actor\'s turn');
      }
      try {
        if (activation.deactivated) continue;
        // A turn that starts must start under the current table, with the type unlocked; a reentrant call joins
        // a turn that already passed that check.
        if (!turn.reentrant && (this.view.isLocked(actorType) || this.view.ownerOf(actorType, actorId)?.address !== this.address)) {
          this.forgetIfUnused(activation);
          return MOVED;
        }
        activation.turns++;
        activation.lastUsed = this.clock.now();
        return await body(activation, { reentrancyId, signal });
      } finally {
        activation.lastUsed = this.clock.now();
        turn.release();
      }
    }
  }

  /** The activation of an actor this sidecar hosts, created when there is none. */
  private activate(actorType: string, actorId: string): Activation {
    if (this.leaving) throw new SkeinError('ERR_ACTOR_HOST_LEAVING', `${this.options.appId} at ${this.address} is shutting down`);
    const host = this.hostOf(actorType);
    if (!host) {
      throw new SkeinError('ERR_ACTOR_INVOKE_METHOD', `error invoke actor method: the placement table names this sidecar (${this.options.appId}) for actor type "${actorType}", which it does not host`);
    }
    const key = actorKey(actorType, actorId);
    let activation = this.activations.get(key);
    if (!activation || activation.deactivated) {
      activation = new Activation({ actorType, actorId }, host, this.settingsOf(actorType).reentrancy.maxStackDepth, this.clock, (owner, timer) => this.fireTimer(owner, timer));
      this.activations.set(key, activation);
    }
    return activation;
  }

  /** Drops an activation created for a call that then found the actor elsewhere, so it is not counted as active. */
  private forgetIfUnused(activation: Activation): void {
    if (activation.turns > 0 || activation.timers.size > 0 || activation.lock.queued > 0) return;
    const key = actorKey(activation.actorType, activation.actorId);
    if (this.activations.get(key) === activation) this.activations.delete(key);
    activation.deactivated = true;
  }

  /** Runs a reminder on this host, if it owns the actor: waits for an UNLOCK like any call. */
  private async fireReminder(reminder: StoredReminder): Promise<'moved' | ReminderOutcome> {
    const fire = { name: reminder.name, data: reminder.data, dueTime: reminder.dueTime, period: reminder.period, ttl: reminder.ttl };
    const outcome = await this.runIfOwner(reminder.actorType, reminder.actorId, (activation, turn) => activation.host.remind(activation, fire, turn));
    return outcome === MOVED ? 'moved' : outcome;
  }

  /** Runs a timer's callback as a turn of its activation; a timer of an actor that moved is dropped. */
  private async fireTimer(activation: Activation, timer: ActorTimer): Promise<'keep' | 'drop'> {
    if (activation.deactivated) return 'drop';
    const { request } = timer;
    const fire = { name: timer.name, data: request.data, callback: request.callback, dueTime: request.dueTime, period: request.period };
    try {
      const outcome = await this.runIfOwner(activation.actorType, activation.actorId, (owner, turn) => owner.host.timer(owner, fire, turn));
      return outcome === MOVED ? 'drop' : 'keep';
    } catch (error) {
      log.warn('actor timer failed', { actorType: activation.actorType, actorId: activation.actorId, timer: timer.name, reason: (error as Error).message });
      return 'keep';
    }
  }

  /** Runs a turn here while this sidecar owns the actor (waiting out a lock); MOVED once another one does. */
  private async runIfOwner<T>(actorType: string, actorId: string, body: (activation: Activation, turn: ActorTurn) => Promise<T>): Promise<T | typeof MOVED> {
    const deadline = this.clock.now() + this.callTimeoutMs;
    const timeout = clockTimeout(this.clock, this.callTimeoutMs);
    const { signal } = timeout;
    try {
      for (;;) {
        if (this.leaving) return MOVED;
        const route = this.view.route(actorType, actorId);
        if (route.kind === 'wait') {
          if (this.clock.now() >= deadline) return MOVED;
          await this.waitForChange(deadline, signal, Number.POSITIVE_INFINITY);
          continue;
        }
        if (route.kind === 'no-host' || route.member.address !== this.address) return MOVED;
        const outcome = await this.runTurn(actorType, actorId, undefined, signal, body);
        if (outcome !== MOVED) return outcome;
      }
    } finally {
      timeout.cancel();
    }
  }

  /**
   * Ends an activation: waits for its running turn (up to `drainMs`, then goes ahead), stops its timers and tells
   * its host (the app: `DELETE /actors/<type>/<id>`). Calls queued behind it find the activation gone and route again.
   */
  private async deactivate(activation: Activation, why: string, drainMs: number): Promise<void> {
    if (activation.deactivated) return;
    const drain = clockTimeout(this.clock, Math.max(1, drainMs));
    let turn;
    try {
      turn = await activation.lock.acquire(undefined, drain.signal);
    } catch {
      log.warn('an actor turn outlasted the drain timeout; deactivating anyway', { actorType: activation.actorType, actorId: activation.actorId, drainMs });
    } finally {
      drain.cancel();
    }
    try {
      if (activation.deactivated) return;
      activation.deactivated = true;
      activation.timers.close();
      await activation.host.deactivate({ actorType: activation.actorType, actorId: activation.actorId }, why).catch((error: unknown) => {
        log.debug('the actor host did not take the deactivation', { actorType: activation.actorType, actorId: activation.actorId, why, reason: (error as Error).message });
      });
      const key = actorKey(activation.actorType, activation.actorId);
      if (this.activations.get(key) === activation) this.activations.delete(key);
    } finally {
      turn?.release();
    }
  }

  private deactivateIdle(): void {
    const now = this.clock.now();
    for (const activation of this.activations.values()) {
      if (activation.lock.busy || activation.lock.queued > 0) continue;
      if (now - activation.lastUsed < this.settingsOf(activation.actorType).idleTimeoutMs) continue;
      void this.deactivate(activation, 'idle', 0).catch(() => undefined);
    }
  }

  /** What `/v1.0/metadata` reports. */
  status(): ActorRuntimeStatus {
    const counts = new Map<string, number>(this.hostedTypes.map((type) => [type, 0]));
    for (const activation of this.activations.values()) {
      if (!activation.deactivated) counts.set(activation.actorType, (counts.get(activation.actorType) ?? 0) + 1);
    }
    return {
      runtimeStatus: this.started ? 'RUNNING' : 'INITIALIZING',
      activeActors: [...counts].map(([type, count]) => ({ type, count })),
      hostReady: this.started && this.view.hasTable && !this.leaving,
      placement: this.placement?.connected ? 'placement: connected' : 'placement: disconnected',
    };
  }

  /**
   * Leaves gracefully: refuses new calls (callers retry on the next table), deactivates every actor after its
   * running turn, then leaves placement so the others take the actors over. Nothing is started twice: no other
   * host gets an actor before this one has deactivated it.
   */
  async drain(): Promise<void> {
    if (this.leaving) return;
    this.leaving = true;
    this.view.wake();
    this.clock.clearTimeout(this.scanner);
    this.reminderService?.reschedule();
    const started = this.clock.now();
    const count = this.activations.size;
    const drainMs = this.config.drainOngoingCallTimeoutMs || ACTOR_DEFAULTS.drainOngoingCallTimeoutMs;
    await Promise.all([...this.activations.values()].map((activation) => this.deactivate(activation, 'shutdown', drainMs)));
    await this.placement?.stop();
    const leftAt = this.clock.now();
    // Calls passed on from here to another owner are still out; their callers get the answers before we close.
    if (this.remoteInFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = this.clock.setTimeout(resolve, drainMs);
        this.remoteSettled.push(() => {
          this.clock.clearTimeout(timer);
          resolve();
        });
      });
    }
    // Until placement's next round reaches them, other sidecars still send calls here: answer them (with "leaving",
    // so they retry elsewhere) rather than drop their connections, until they have been quiet for a moment.
    const lingerUntil = this.hostedTypes.length > 0 && this.placement ? leftAt + LEAVE_LINGER_MAX_MS : leftAt;
    while (this.clock.now() < lingerUntil && this.clock.now() - Math.max(this.lastRemoteAt, leftAt) < LEAVE_QUIET_MS) {
      await sleep(this.clock, 50);
    }
    log.info('actors handed over; left placement', { deactivated: count, durationMs: this.clock.now() - started });
  }

  /** Drains, then closes every connection. */
  async stop(): Promise<void> {
    await this.drain();
    this.reminderService?.stop();
    this.peers.close();
  }
}

function timedOut(actorType: string, actorId: string, timeoutMs: number, why: string): SkeinError {
  return new SkeinError('ERR_ACTOR_INVOKE_METHOD', `error invoke actor method: actor ${actorType}/${actorId} could not be reached within ${Math.round(timeoutMs / 1000)} s (${why})`);
}

function toActorRequest(namespace: string, actorType: string, actorId: string, operation: ActorOperation, hops: number): skein.internal.v1.IActorRequest {
  const base = { namespace, actorType, actorId, hops };
  switch (operation.kind) {
    case 'call':
      return { ...base, call: { method: operation.call.method, verb: operation.call.verb, headers: operation.call.headers.map(([name, value]) => ({ name, value })), body: operation.call.body } };
    case 'createTimer':
      return { ...base, createTimer: { name: operation.name, spec: operation.spec } };
    case 'deleteTimer':
      return { ...base, deleteTimer: operation.name };
  }
}
