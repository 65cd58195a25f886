import { skein } from '@skein/proto';
import { SkeinError, logger } from '@skein/core';
import { changedActorTypes, computeTable, sameList, type HostRecord, type PlacementTable } from './table.js';

const log = logger('placement');
const Operation = skein.placement.v1.Operation;

/** One order of a round, as it goes on the wire. */
export type PlacementOrder = skein.placement.v1.IPlacementOrder;

/**
 * A connected host as the disseminator sees it: somewhere to send orders, and a way to cut it off. Filled by the
 * gRPC adapter; the disseminator never touches a socket.
 */
export interface HostChannel {
  /** Unique per stream, for logs. */
  readonly id: number;
  send(order: PlacementOrder): void;
  /** Ends the stream with `error`. */
  drop(error: SkeinError): void;
}

/** A table every host of a round applied; the service persists it so a new leader can start from it. */
export interface CommittedTable {
  version: string;
  table: PlacementTable;
  hosts: HostRecord[];
}

/** Settings of one namespace's disseminator. */
export interface DisseminatorOptions {
  namespace: string;
  virtualNodes: number;
  /** How long a round waits for every host's ack of one step before dropping the laggards. */
  disseminationTimeoutMs: number;
  /** Changes arriving within this window after the first one share a round. */
  batchWindowMs: number;
  /** A fresh version, unique across leaders. */
  nextVersion: () => string;
  /** Records a table every host of a round has applied; the round's UNLOCK waits for it (failures are logged). */
  persist: (namespace: string, committed: CommittedTable) => Promise<void>;
  /** The table hosts last received from a previous leader, to diff against (so an unchanged table locks nothing). */
  previous?: CommittedTable;
  /** Hosts a previous leader had: the first round waits for them to reconnect, until `holdUntil` at the latest. */
  expected?: ReadonlySet<string>;
  holdUntil?: number;
}

interface Member {
  record: HostRecord;
  channel: HostChannel;
  lastSeen: number;
  /** Version of the last table this host completed a round for. */
  version: string | undefined;
}

interface Round {
  version: string;
  table: PlacementTable;
  lockedTypes: string[];
  /** The hosts the table was computed from. */
  hosts: HostRecord[];
  phase: 'lock' | 'update' | 'commit';
  participants: Set<HostChannel>;
  pending: Set<HostChannel>;
  timer: NodeJS.Timeout;
  startedAt: number;
}

/**
 * Membership and dissemination of one namespace. Rounds run one at a time: LOCK to every participant, wait for all
 * acks, UPDATE, wait for all acks, UNLOCK. Membership changes during a round are batched into the next one; a
 * participant that leaves or times out abandons the round, and the next round re-locks what it had locked.
 */
export class NamespaceDisseminator {
  private readonly options: DisseminatorOptions;
  private readonly members = new Map<string, Member>();
  private readonly byChannel = new Map<HostChannel, Member>();
  private committed: CommittedTable | undefined;
  private round: Round | undefined;
  /** Types locked by abandoned rounds: still locked on the hosts, so the next LOCK must name them too. */
  private carriedLocks = new Set<string>();
  private dirty = false;
  private scheduled: NodeJS.Timeout | undefined;
  private scheduledDue = 0;
  private expected: ReadonlySet<string>;
  private holdUntil: number;
  private closed = false;

  constructor(options: DisseminatorOptions) {
    this.options = options;
    this.committed = options.previous;
    this.expected = options.expected ?? new Set();
    this.holdUntil = options.holdUntil ?? 0;
  }

  /** Number of connected hosts. */
  get size(): number {
    return this.members.size;
  }

  /** The last completed table. */
  get current(): CommittedTable | undefined {
    return this.committed;
  }

  /**
   * A report from `channel`. The first one makes the host a member (replacing an older stream with the same
   * address); later ones refresh it and may change its actor types. Throws on a report that changes the host's
   * identity mid-stream.
   */
  report(channel: HostChannel, record: HostRecord, now: number): void {
    const known = this.byChannel.get(channel);
    if (known) {
      if (known.record.address !== record.address || known.record.instanceId !== record.instanceId || known.record.appId !== record.appId) {
        throw new SkeinError('ERR_MALFORMED_REQUEST', 'address, App ID and instance ID must not change on one stream');
      }
      known.lastSeen = now;
      if (!sameList(known.record.actorTypes, record.actorTypes)) {
        log.info('host changed its actor types', { namespace: this.options.namespace, address: record.address, actorTypes: record.actorTypes });
        known.record = record;
        this.changed();
      }
      return;
    }
    const previous = this.members.get(record.address);
    if (previous) {
      log.info('a newer stream replaces a host', { namespace: this.options.namespace, address: record.address, instanceId: record.instanceId });
      this.remove(previous);
      previous.channel.drop(new SkeinError('ERR_PLACEMENT_HOST_DROPPED', `a newer stream for ${record.address} replaced this one`));
    }
    const member: Member = { record, channel, lastSeen: now, version: undefined };
    this.members.set(record.address, member);
    this.byChannel.set(channel, member);
    log.info('host joined', { namespace: this.options.namespace, address: record.address, appId: record.appId, instanceId: record.instanceId, actorTypes: record.actorTypes });
    this.changed();
  }

  /** Any message proves the host alive. */
  touch(channel: HostChannel, now: number): void {
    const member = this.byChannel.get(channel);
    if (member) member.lastSeen = now;
  }

  /** True when `channel` has reported and is a member. */
  has(channel: HostChannel): boolean {
    return this.byChannel.has(channel);
  }

  /** An acknowledgement; stale or unexpected ones are ignored. */
  ack(channel: HostChannel, operation: skein.placement.v1.Operation, version: string): void {
    const round = this.round;
    if (!round || round.version !== version || !round.pending.has(channel)) return;
    const expected = round.phase === 'lock' ? Operation.LOCK : Operation.UPDATE;
    if (operation !== expected) return;
    round.pending.delete(channel);
    if (round.pending.size === 0) this.advance(round);
  }

  /** The host on `channel` is gone (stream ended, dropped, or replaced). */
  leave(channel: HostChannel): void {
    const member = this.byChannel.get(channel);
    if (!member) return;
    this.remove(member);
    log.info('host left', { namespace: this.options.namespace, address: member.record.address, instanceId: member.record.instanceId });
    this.changed();
  }

  /** Drops hosts not heard from for `ttlMs`. */
  sweep(now: number, ttlMs: number): void {
    for (const member of [...this.members.values()]) {
      const silentMs = now - member.lastSeen;
      if (silentMs <= ttlMs) continue;
      log.warn('dropping a host that stopped reporting', { namespace: this.options.namespace, address: member.record.address, silentMs });
      member.channel.drop(new SkeinError('ERR_PLACEMENT_HOST_DROPPED', `no report from ${member.record.address} for ${silentMs} ms`));
      this.leave(member.channel);
    }
  }

  /** Stops timers; hosts are ended by the caller. */
  close(): void {
    this.closed = true;
    if (this.scheduled) clearTimeout(this.scheduled);
    if (this.round) clearTimeout(this.round.timer);
    this.round = undefined;
  }

  private remove(member: Member): void {
    this.members.delete(member.record.address);
    this.byChannel.delete(member.channel);
    const round = this.round;
    if (round && round.participants.has(member.channel)) this.abandon(round, `${member.record.address} left`);
  }

  private changed(): void {
    this.dirty = true;
    this.schedule(this.options.batchWindowMs);
  }

  /** Starts a round `delayMs` from now, or sooner if one is already due sooner; never before the takeover hold ends. */
  private schedule(delayMs: number): void {
    if (this.closed || this.round) return;
    const now = Date.now();
    const due = this.holding(now) ? Math.max(now + delayMs, this.holdUntil) : now + delayMs;
    if (this.scheduled && this.scheduledDue <= due) return;
    if (this.scheduled) clearTimeout(this.scheduled);
    this.scheduledDue = due;
    this.scheduled = setTimeout(() => {
      this.scheduled = undefined;
      this.startRound();
    }, due - now);
  }

  /** After a takeover, rounds wait until every host of the previous leader's table is back, or the hold expires. */
  private holding(now: number): boolean {
    if (this.holdUntil === 0) return false;
    if (now >= this.holdUntil || [...this.expected].every((address) => this.members.has(address))) {
      this.holdUntil = 0;
      return false;
    }
    return true;
  }

  private startRound(): void {
    if (this.closed || this.round) return;
    if (this.holding(Date.now())) {
      this.schedule(0);
      return;
    }
    this.dirty = false;
    const hosts = [...this.members.values()];
    const table = computeTable(hosts.map((member) => member.record), this.options.virtualNodes);
    const lockedTypes = [...new Set([...changedActorTypes(this.committed?.table, table), ...this.carriedLocks])].sort();
    const structural = lockedTypes.length > 0 || !this.committed;
    const participants = structural ? hosts : hosts.filter((member) => member.version !== this.committed?.version);
    const version = structural || !this.committed ? this.options.nextVersion() : this.committed.version;
    if (participants.length === 0) {
      if (!structural) return;
      const empty: CommittedTable = { version, table, hosts: [] };
      this.commit(empty, []);
      void this.options.persist(this.options.namespace, empty).catch(() => undefined);
      return;
    }
    const channels = new Set(participants.map((member) => member.channel));
    const round: Round = {
      version,
      table,
      lockedTypes,
      hosts: hosts.map((member) => member.record),
      phase: 'lock',
      participants: channels,
      pending: new Set(channels),
      timer: this.startTimer(version),
      startedAt: Date.now(),
    };
    this.round = round;
    log.debug('round started', { namespace: this.options.namespace, version, lockedTypes, hosts: channels.size });
    const lock: PlacementOrder = { operation: Operation.LOCK, version, lockedTypes };
    for (const channel of channels) channel.send(lock);
  }

  private startTimer(version: string): NodeJS.Timeout {
    return setTimeout(() => {
      const round = this.round;
      if (!round || round.version !== version) return;
      const laggards = [...round.pending];
      log.warn('dissemination timed out; dropping hosts that did not ack', {
        namespace: this.options.namespace,
        version,
        phase: round.phase,
        hosts: laggards.map((channel) => this.byChannel.get(channel)?.record.address),
      });
      for (const channel of laggards) {
        channel.drop(new SkeinError('ERR_PLACEMENT_HOST_DROPPED', `no ${round.phase} ack within ${this.options.disseminationTimeoutMs} ms for version ${version}`));
        this.leave(channel);
      }
    }, this.options.disseminationTimeoutMs);
  }

  private advance(round: Round): void {
    clearTimeout(round.timer);
    if (round.phase === 'lock') {
      round.phase = 'update';
      round.pending = new Set(round.participants);
      round.timer = this.startTimer(round.version);
      const update: PlacementOrder = { operation: Operation.UPDATE, version: round.version, table: wireTable(round.table) };
      for (const channel of round.participants) channel.send(update);
      return;
    }
    // Every host has the table: record it before anyone unlocks, so a leader that takes over after any UNLOCK
    // starts from this table (and its diff locks what this round moved).
    round.phase = 'commit';
    const committed: CommittedTable = { version: round.version, table: round.table, hosts: round.hosts };
    void this.options
      .persist(this.options.namespace, committed)
      .catch((error: unknown) => log.warn('could not persist the membership', { namespace: this.options.namespace, reason: (error as Error).message }))
      .then(() => {
        if (this.round === round && !this.closed) this.unlock(round, committed);
      });
  }

  private unlock(round: Round, committed: CommittedTable): void {
    this.round = undefined;
    const unlock: PlacementOrder = { operation: Operation.UNLOCK, version: round.version };
    for (const channel of round.participants) {
      const member = this.byChannel.get(channel);
      if (member) member.version = round.version;
      channel.send(unlock);
    }
    this.carriedLocks.clear();
    this.commit(committed, round.lockedTypes, Date.now() - round.startedAt, round.participants.size);
    if (this.dirty) this.schedule(this.options.batchWindowMs);
  }

  private commit(committed: CommittedTable, lockedTypes: string[], durationMs = 0, participants = 0): void {
    this.committed = committed;
    log.info('round complete', {
      namespace: this.options.namespace,
      version: committed.version,
      lockedTypes,
      hosts: participants,
      members: this.members.size,
      actorTypes: committed.table.rings.length,
      durationMs,
    });
  }

  private abandon(round: Round, reason: string): void {
    clearTimeout(round.timer);
    this.round = undefined;
    for (const actorType of round.lockedTypes) this.carriedLocks.add(actorType);
    log.info('round abandoned', { namespace: this.options.namespace, version: round.version, reason });
    this.dirty = true;
  }
}

/** The wire form of a table (protobuf types are mutable; ours are not). */
function wireTable(table: PlacementTable): skein.placement.v1.IPlacementTable {
  return { virtualNodes: table.virtualNodes, rings: table.rings.map((ring) => ({ actorType: ring.actorType, members: [...ring.members] })) };
}
