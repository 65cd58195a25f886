import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { type skein } from '@skein/proto';
import { type TableSpec, SkeinError, asSkeinError, logger, forwardableHeaders, IDENTITY_HEADERS, stampIdentity, type HeaderList, KvBucket } from '@skein/core';
import type { AppChannel } from '../app/channel.js';
import type { WorkloadIdentity } from '../identity/workload.js';
import { ACTOR_DEFAULTS, AppConfigError, appConfigFrom, NO_ACTORS, type ActorAppConfig } from './app-config.js';
import { actorKey, validateActorName } from './names.js';
import { ActorPeers, classifyPeerFailure } from './peers.js';
import { PlacementClient } from './placement-client.js';
import { PlacementView } from './placement-view.js';
import { ReminderService, type StoredReminder } from './reminders.js';
import { checkMethod, parseReminderRequest, parseTimerRequest, type StateOperation } from './requests.js';
import { ActorStateStore } from './state-store.js';
import { ActivationTimers, type ActorTimer } from './timers.js';
import { StackDepthError, TurnLock } from './turn-lock.js';

const log = logger('actors');

/** The header that carries a call chain's reentrancy id (Dapr's name). */
export const REENTRANCY_HEADER = 'dapr-reentrancy-id';
/** The header with which an app cancels a reminder from its callback. */
const REMINDER_CANCEL_HEADER = 'x-daprremindercancel';
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

/** A method call as the API hands it over. */
export interface ActorCall {
  method: string;
  /** The verb the client used; the app is always called with PUT, as Dapr does. */
  verb: string;
  headers: HeaderList;
  body: Buffer;
}

/** The verified caller of an actor method, stamped on the call to the app as `dapr-caller-app-id`/`-namespace`. */
export interface ActorCaller {
  appId: string;
  namespace: string;
}

/** What the app answered: passed back to the client unchanged. */
export interface ActorReply {
  status: number;
  headers: HeaderList;
  body: Buffer;
}

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
  appChannel: AppChannel | undefined;
  appApiToken: string | undefined;
  /** Largest app response read into memory. */
  maxBodyBytes: number;
  /** How long a call may wait for a table, an UNLOCK and its turn before it fails. */
  callTimeoutMs?: number;
}

/** Returned by a local run when the actor turned out to be owned elsewhere: route the operation again. */
const MOVED = Symbol('moved');

/** One activation: an actor this sidecar owns and has called, with its turn lock and timers. */
class Activation {
  readonly actorType: string;
  readonly actorId: string;
  readonly lock: TurnLock;
  readonly timers: ActivationTimers;
  lastUsed = Date.now();
  turns = 0;
  deactivated = false;

  constructor(actorType: string, actorId: string, maxStackDepth: number, fireTimer: (activation: Activation, timer: ActorTimer) => Promise<'keep' | 'drop'>) {
    this.actorType = actorType;
    this.actorId = actorId;
    this.lock = new TurnLock(maxStackDepth);
    this.timers = new ActivationTimers((timer) => fireTimer(this, timer));
  }
}

/** What `/v1.0/metadata` reports as `actorRuntime`. */
export interface ActorRuntimeStatus {
  runtimeStatus: string;
  activeActors: Array<{ type: string; count: number }>;
  hostReady: boolean;
  placement: string;
}

function encodeSegment(name: string): string {
  return encodeURIComponent(name);
}

/** Headers a client sent that must not reach the app as they are. */
const CLIENT_ONLY_HEADERS = new Set(['dapr-api-token', 'dapr-app-id', 'content-length', REENTRANCY_HEADER]);

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
 * then reaches whichever sidecar owns the actor under the new table.
 */
export class ActorRuntime {
  private readonly options: ActorRuntimeOptions;
  private readonly view = new PlacementView();
  private readonly peers: ActorPeers;
  private readonly activations = new Map<string, Activation>();
  private config: ActorAppConfig = NO_ACTORS;
  private address = '';
  private placement: PlacementClient | undefined;
  private stateStore: ActorStateStore | undefined;
  private reminderService: ReminderService | undefined;
  private scanner: NodeJS.Timeout | undefined;
  private leaving = false;
  private started = false;
  /** Calls from other sidecars still being answered; a leaving sidecar answers them all before it closes. */
  private remoteInFlight = 0;
  private lastRemoteAt = 0;
  private remoteSettled: Array<() => void> = [];

  constructor(options: ActorRuntimeOptions) {
    this.options = options;
    this.peers = new ActorPeers(options.identity, options.namespace);
  }

  private get callTimeoutMs(): number {
    return this.options.callTimeoutMs ?? 30_000;
  }

  /** Opens the state and reminder buckets on the sidecar's NATS connection. */
  start(nc: NatsConnection, address: string): void {
    this.address = address;
    this.stateStore = new ActorStateStore(new KvBucket(nc, 'actorState'));
    this.reminderService = new ReminderService(new KvBucket(nc, 'actorReminders'), this.options.namespace, {
      owns: (actorType, actorId) => !this.leaving && this.view.ownerOf(actorType, actorId)?.address === this.address,
      fire: (reminder) => this.fireReminder(reminder),
    });
    this.started = true;
  }

  /**
   * Reads the app's `GET /dapr/config` (the app listens by now) and, when it hosts actor types, joins placement
   * with them and starts watching their reminders. An app that hosts nothing joins placement on its first actor call.
   */
  async hostApp(): Promise<void> {
    this.config = await this.readAppConfig();
    const { entities } = this.config;
    if (entities.length === 0) return;
    log.info('hosting actor types', { actorTypes: entities, idleTimeoutMs: this.config.settingsOf(entities[0] as string).idleTimeoutMs });
    this.joinPlacement();
    await this.reminderService?.watch(entities);
    this.scanner = setInterval(() => this.deactivateIdle(), Math.min(this.config.scanIntervalMs, 2_000_000_000));
    this.scanner.unref();
  }

  private async readAppConfig(): Promise<ActorAppConfig> {
    const channel = this.options.appChannel;
    if (!channel) return NO_ACTORS;
    const headers: HeaderList = this.options.appApiToken ? [['dapr-api-token', this.options.appApiToken]] : [];
    for (let attempt = 1; ; attempt++) {
      try {
        const { request, response } = channel.send('GET', '/dapr/config', headers);
        request.end();
        const answer = await response;
        const body = await readAll(answer, 1024 * 1024);
        if (answer.statusCode === 404) return NO_ACTORS;
        if ((answer.statusCode ?? 500) >= 300) throw new Error(`GET /dapr/config answered ${answer.statusCode ?? 0}`);
        if (body.length === 0) return NO_ACTORS;
        return appConfigFrom(JSON.parse(body.toString('utf8')) as unknown);
      } catch (error) {
        if (error instanceof AppConfigError || error instanceof SyntaxError) {
          log.error('the app\'s /dapr/config is invalid; it hosts no actors', { appId: this.options.appId, reason: error.message });
          return NO_ACTORS;
        }
        if (attempt >= 5) {
          log.error('cannot read the app\'s /dapr/config; it hosts no actors', { appId: this.options.appId, reason: (error as Error).message });
          return NO_ACTORS;
        }
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
  }

  private joinPlacement(): void {
    if (this.placement || this.leaving) return;
    const { options } = this;
    if (options.placementAddresses.length === 0) throw new SkeinError('ERR_ACTOR_RUNTIME_NOT_FOUND', 'the actor runtime is not enabled: no placement address');
    this.placement = new PlacementClient({
      addresses: options.placementAddresses,
      identity: options.identity,
      report: () => ({ appId: options.appId, namespace: options.namespace, address: this.address, actorTypes: this.leaving ? [] : this.config.entities, instanceId: options.instanceId }),
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

  /** True when this sidecar's app hosts `actorType`. */
  hosts(actorType: string): boolean {
    return this.config.entities.includes(actorType);
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
    parseTimerRequest(spec, Date.now());
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
    const now = Date.now();
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
   * sidecar's verified mTLS identity: nothing in the request itself says who is calling.
   */
  async handleRemote(request: skein.internal.v1.IActorRequest, caller: ActorCaller, signal: AbortSignal): Promise<skein.internal.v1.IActorResponse> {
    const actorType = request.actorType ?? '';
    const actorId = request.actorId ?? '';
    this.lastRemoteAt = Date.now();
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
        caller,
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
      const reply = await this.dispatch(actorType, actorId, operation, request.hops ?? 0, signal);
      return { status: reply.status, headers: reply.headers.map(([name, value]) => ({ name, value })), body: reply.body };
    } finally {
      if (--this.remoteInFlight === 0) for (const settled of this.remoteSettled.splice(0)) settled();
    }
  }

  /**
   * Routes an operation: waits for a table and for the type to be unlocked, then runs it here when this sidecar
   * owns the actor, or sends it to the owner. A call whose owner could not be reached at all, or is leaving, waits
   * for the next table and tries again until the call times out.
   */
  private async dispatch(actorType: string, actorId: string, operation: ActorOperation, hops: number, callerSignal: AbortSignal): Promise<ActorReply> {
    if (!this.started) throw new SkeinError('ERR_ACTOR_RUNTIME_NOT_FOUND', 'the actor runtime is still starting');
    this.joinPlacement();
    const deadline = Date.now() + this.callTimeoutMs;
    const signal = AbortSignal.any([callerSignal, AbortSignal.timeout(this.callTimeoutMs)]);
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
    const started = Date.now();
    for (;;) {
      // A leaving sidecar gets no more tables: a call waiting here goes back to its caller, which retries elsewhere.
      if (this.leaving) throw new SkeinError('ERR_ACTOR_HOST_LEAVING', `${this.options.appId} at ${this.address} is shutting down`);
      if (signal.aborted || Date.now() >= deadline) {
        const route = this.view.route(actorType, actorId);
        const why = retryReason ?? (route.kind === 'wait' ? route.reason : 'the owner could not be reached');
        throw timedOut(actorType, actorId, this.callTimeoutMs, why);
      }
      const route = this.view.route(actorType, actorId);
      if (route.kind === 'owner') return route.member;
      if (route.kind === 'no-host' && Date.now() - started >= NO_HOST_GRACE_MS) {
        throw new SkeinError('ERR_ACTOR_INVOKE_METHOD', `error invoke actor method: no host serves actor type "${actorType}" in namespace "${this.options.namespace}"`);
      }
      await this.waitForChange(deadline, signal, route.kind === 'no-host' ? NO_HOST_GRACE_MS : Number.POSITIVE_INFINITY);
    }
  }

  private waitForChange(deadline: number, signal: AbortSignal, capMs: number): Promise<void> {
    const remaining = Math.min(deadline - Date.now(), capMs);
    if (remaining <= 0 || signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, remaining);
      signal.addEventListener('abort', done, { once: true });
      void this.view.changed().then(done);
    });
  }

  /** Runs an operation on an actor this sidecar owns; MOVED when it turns out not to (any more). */
  private async runLocal(actorType: string, actorId: string, operation: ActorOperation, signal: AbortSignal): Promise<ActorReply | typeof MOVED> {
    for (;;) {
      if (this.leaving) throw new SkeinError('ERR_ACTOR_HOST_LEAVING', `${this.options.appId} at ${this.address} is shutting down`);
      if (!this.hosts(actorType)) {
        throw new SkeinError('ERR_ACTOR_INVOKE_METHOD', `error invoke actor method: the placement table names this sidecar (${this.options.appId}) for actor type "${actorType}", which its app does not host`);
      }
      const activation = this.activate(actorType, actorId);
      if (operation.kind === 'createTimer') {
        const { request, schedule } = parseTimerRequest(operation.spec, Date.now());
        activation.timers.set(operation.name, request, schedule);
        return { status: 204, headers: [], body: Buffer.alloc(0) };
      }
      if (operation.kind === 'deleteTimer') {
        activation.timers.delete(operation.name);
        return { status: 204, headers: [], body: Buffer.alloc(0) };
      }
      const settings = this.config.settingsOf(actorType);
      const given = operation.call.headers.find(([name]) => name === REENTRANCY_HEADER)?.[1];
      const reentrancyId = settings.reentrancy.enabled ? (given ?? randomUUID()) : undefined;
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
        activation.lastUsed = Date.now();
        return await this.callApp(activation, operation.call, operation.caller, reentrancyId, signal);
      } finally {
        activation.lastUsed = Date.now();
        turn.release();
      }
    }
  }

  private activate(actorType: string, actorId: string): Activation {
    const key = actorKey(actorType, actorId);
    let activation = this.activations.get(key);
    if (!activation || activation.deactivated) {
      activation = new Activation(actorType, actorId, this.config.settingsOf(actorType).reentrancy.maxStackDepth, (owner, timer) => this.fireTimer(owner, timer));
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

  /**
   * `PUT /actors/<type>/<id>/method/<method>` on the app, the whole answer read. The app learns who called from
   * the stamped `dapr-caller-app-id`/`dapr-caller-namespace` alone, as it does for service invocation.
   */
  private async callApp(activation: Activation, call: ActorCall, caller: ActorCaller, reentrancyId: string | undefined, signal: AbortSignal): Promise<ActorReply> {
    const channel = this.options.appChannel;
    if (!channel) throw new SkeinError('ERR_ACTOR_NO_APP_CHANNEL', 'error invoke actor method: app channel is not initialized');
    checkMethod(call.method);
    const forwarded = callerHeaders(call.headers).filter(([name]) => !CLIENT_ONLY_HEADERS.has(name));
    const headers = stampIdentity(forwarded, { callerAppId: caller.appId, callerNamespace: caller.namespace, calleeAppId: this.options.appId }, this.options.appApiToken);
    if (reentrancyId) headers.push([REENTRANCY_HEADER, reentrancyId]);
    headers.push(['content-length', String(call.body.length)]);
    const path = `/actors/${encodeSegment(activation.actorType)}/${encodeSegment(activation.actorId)}/method/${call.method.split('/').map(encodeSegment).join('/')}`;
    const { request, response } = channel.send('PUT', path, headers);
    const onAbort = (): void => void request.destroy();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      request.end(call.body);
      const answer = await response;
      const body = await readAll(answer, this.options.maxBodyBytes);
      const replyHeaders = forwardableHeaders(answer.rawHeaders).filter(([name]) => name !== 'content-length');
      return { status: answer.statusCode ?? 500, headers: replyHeaders, body };
    } catch (error) {
      const reason = signal.aborted ? 'the call was cancelled or timed out' : asSkeinError(error).message;
      throw new SkeinError('ERR_ACTOR_INVOKE_METHOD', `error invoke actor method: ${reason}`, { cause: error });
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Runs a reminder on this host, if it owns the actor: waits for an UNLOCK like any call. */
  private async fireReminder(reminder: StoredReminder): Promise<'moved' | { status: number; cancel: boolean }> {
    const call: ActorCall = {
      method: `remind/${reminder.name}`,
      verb: 'PUT',
      headers: [['content-type', 'application/json']],
      body: Buffer.from(JSON.stringify({ data: reminder.data ?? null, dueTime: reminder.dueTime ?? '', period: reminder.period ?? '', ...(reminder.ttl ? { ttl: reminder.ttl } : {}) })),
    };
    const reply = await this.runIfOwner(reminder.actorType, reminder.actorId, call);
    if (reply === MOVED) return 'moved';
    const cancel = reply.headers.some(([name, value]) => name === REMINDER_CANCEL_HEADER && value.trim().toLowerCase() === 'true');
    return { status: reply.status, cancel };
  }

  /** Runs a timer's callback as a turn of its activation; a timer of an actor that moved is dropped. */
  private async fireTimer(activation: Activation, timer: ActorTimer): Promise<'keep' | 'drop'> {
    if (activation.deactivated) return 'drop';
    const call: ActorCall = {
      method: `timer/${timer.name}`,
      verb: 'PUT',
      headers: [['content-type', 'application/json']],
      body: Buffer.from(JSON.stringify({ data: timer.request.data ?? null, callback: timer.request.callback ?? '', dueTime: timer.request.dueTime ?? '', period: timer.request.period ?? '' })),
    };
    try {
      const reply = await this.runIfOwner(activation.actorType, activation.actorId, call);
      return reply === MOVED ? 'drop' : 'keep';
    } catch (error) {
      log.warn('actor timer failed', { actorType: activation.actorType, actorId: activation.actorId, timer: timer.name, reason: (error as Error).message });
      return 'keep';
    }
  }

  /** Runs a call here while this sidecar owns the actor (waiting out a lock); MOVED once another one does. */
  private async runIfOwner(actorType: string, actorId: string, call: ActorCall): Promise<ActorReply | typeof MOVED> {
    const deadline = Date.now() + this.callTimeoutMs;
    const signal = AbortSignal.timeout(this.callTimeoutMs);
    for (;;) {
      if (this.leaving) return MOVED;
      const route = this.view.route(actorType, actorId);
      if (route.kind === 'wait') {
        if (Date.now() >= deadline) return MOVED;
        await this.waitForChange(deadline, signal, Number.POSITIVE_INFINITY);
        continue;
      }
      if (route.kind === 'no-host' || route.member.address !== this.address) return MOVED;
      const reply = await this.runLocal(actorType, actorId, { kind: 'call', call, caller: this.ownApp() }, signal);
      if (reply !== MOVED) return reply;
    }
  }

  /**
   * Ends an activation: waits for its running turn (up to `drainMs`, then goes ahead), stops its timers and tells
   * the app with `DELETE /actors/<type>/<id>`. Calls queued behind it find the activation gone and route again.
   */
  private async deactivate(activation: Activation, why: string, drainMs: number): Promise<void> {
    if (activation.deactivated) return;
    const abort = AbortSignal.timeout(Math.max(1, drainMs));
    let turn;
    try {
      turn = await activation.lock.acquire(undefined, abort);
    } catch {
      log.warn('an actor turn outlasted the drain timeout; deactivating anyway', { actorType: activation.actorType, actorId: activation.actorId, drainMs });
    }
    try {
      if (activation.deactivated) return;
      activation.deactivated = true;
      activation.timers.close();
      await this.tellAppDeactivated(activation, why);
      const key = actorKey(activation.actorType, activation.actorId);
      if (this.activations.get(key) === activation) this.activations.delete(key);
    } finally {
      turn?.release();
    }
  }

  private async tellAppDeactivated(activation: Activation, why: string): Promise<void> {
    const channel = this.options.appChannel;
    if (!channel) return;
    const headers: HeaderList = this.options.appApiToken ? [['dapr-api-token', this.options.appApiToken]] : [];
    try {
      const { request, response } = channel.send('DELETE', `/actors/${encodeSegment(activation.actorType)}/${encodeSegment(activation.actorId)}`, headers);
      request.end();
      const answer = await response;
      answer.resume();
      log.debug('actor deactivated', { actorType: activation.actorType, actorId: activation.actorId, why, status: answer.statusCode });
    } catch (error) {
      log.debug('the app did not take the deactivation', { actorType: activation.actorType, actorId: activation.actorId, why, reason: (error as Error).message });
    }
  }

  private deactivateIdle(): void {
    const now = Date.now();
    for (const activation of this.activations.values()) {
      if (activation.lock.busy || activation.lock.queued > 0) continue;
      if (now - activation.lastUsed < this.config.settingsOf(activation.actorType).idleTimeoutMs) continue;
      void this.deactivate(activation, 'idle', 0).catch(() => undefined);
    }
  }

  /** What `/v1.0/metadata` reports. */
  status(): ActorRuntimeStatus {
    const counts = new Map<string, number>(this.config.entities.map((type) => [type, 0]));
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
    if (this.scanner) clearInterval(this.scanner);
    this.reminderService?.reschedule();
    const started = Date.now();
    const count = this.activations.size;
    const drainMs = this.config.drainOngoingCallTimeoutMs || ACTOR_DEFAULTS.drainOngoingCallTimeoutMs;
    await Promise.all([...this.activations.values()].map((activation) => this.deactivate(activation, 'shutdown', drainMs)));
    await this.placement?.stop();
    const leftAt = Date.now();
    // Calls passed on from here to another owner are still out; their callers get the answers before we close.
    if (this.remoteInFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainMs);
        this.remoteSettled.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    // Until placement's next round reaches them, other sidecars still send calls here: answer them (with "leaving",
    // so they retry elsewhere) rather than drop their connections, until they have been quiet for a moment.
    const lingerUntil = this.config.entities.length > 0 && this.placement ? leftAt + LEAVE_LINGER_MAX_MS : leftAt;
    while (Date.now() < lingerUntil && Date.now() - Math.max(this.lastRemoteAt, leftAt) < LEAVE_QUIET_MS) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    log.info('actors handed over; left placement', { deactivated: count, durationMs: Date.now() - started });
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

/** Reads a whole message body, failing past `limit` bytes. */
function readAll(stream: NodeJS.ReadableStream, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error(`the app's answer is larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    stream.once('end', () => resolve(Buffer.concat(chunks, size)));
    stream.once('error', reject);
  });
}
