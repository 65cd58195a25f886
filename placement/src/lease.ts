import type { KV } from '@nats-io/kv';
import { logger } from '@skein/core';

const log = logger('placement');

/** The key of the leader lease in the placement bucket. */
export const LEASE_KEY = 'leader';

/** What the lease names: the replica holding it and where sidecars reach it. */
export interface LeaseRecord {
  id: string;
  address: string;
}

/** Timing of the lease. */
export interface LeaseTiming {
  /** A lease not renewed for this long (by the follower's own clock) may be taken over. */
  ttlMs: number;
  /** How often the leader renews. */
  renewMs: number;
  /** How often a follower looks at the lease. */
  pollMs: number;
}

/** What the election tells the service. */
export interface LeaseEvents {
  /** This replica now leads; `epoch` is the lease revision, larger than any earlier leader's. */
  elected(epoch: number): void;
  /** This replica no longer leads (lost the lease, or cannot renew it in time). */
  deposed(reason: string): void;
  /** A lease operation failed (NATS unreachable, bucket gone): the bucket handle should be reopened. */
  failed?(error: Error): void;
}

interface Observation {
  revision: number;
  record: LeaseRecord | undefined;
  seenAt: number;
}

/**
 * Leader election through one compare-and-set key in NATS KV. The leader rewrites the key every `renewMs` against
 * the revision it last wrote; followers take the key over (again by compare-and-set) once its revision has not
 * moved for `ttlMs` by their own clock, so clock skew between replicas does not matter. The leader stops leading
 * when it has not renewed for `ttlMs - renewMs`, before any follower can take over.
 */
export class LeaderLease {
  private readonly kv: () => Promise<KV>;
  private readonly self: LeaseRecord;
  private readonly timing: LeaseTiming;
  private readonly events: LeaseEvents;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private stopped = false;
  private observed: Observation | undefined;
  /** Revision of our own lease while we lead. */
  private ownRevision: number | undefined;
  /** When the last successful renewal was sent (conservative: the send time, not the reply time). */
  private renewedAt = 0;

  constructor(kv: () => Promise<KV>, self: LeaseRecord, timing: LeaseTiming, events: LeaseEvents) {
    if (timing.renewMs * 2 > timing.ttlMs) throw new RangeError('the lease must be renewed at least twice per TTL');
    this.kv = kv;
    this.self = self;
    this.timing = timing;
    this.events = events;
  }

  /** True while this replica leads. */
  get leading(): boolean {
    return this.ownRevision !== undefined;
  }

  /** The leader as last seen: this replica, another one, or undefined when there is none. */
  get leader(): LeaseRecord | undefined {
    return this.leading ? this.self : this.observed?.record;
  }

  /** Starts taking part in the election. */
  start(): void {
    this.timer = setInterval(() => void this.tick(), Math.min(this.timing.pollMs, this.timing.renewMs));
    void this.tick();
  }

  /** Leaves the election; a leader deletes its lease so a follower takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    const revision = this.ownRevision;
    if (revision === undefined) return;
    this.ownRevision = undefined;
    try {
      const kv = await this.kv();
      await kv.delete(LEASE_KEY, { previousSeq: revision });
      log.info('released the leader lease', { id: this.self.id });
    } catch (error) {
      log.warn('could not release the leader lease; followers take over when it expires', { reason: (error as Error).message });
    }
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const now = Date.now();
    if (this.leading && now - this.renewedAt > this.timing.ttlMs - this.timing.renewMs) {
      this.depose(`the lease was not renewed for ${now - this.renewedAt} ms`);
    }
    if (this.busy) return;
    this.busy = true;
    try {
      if (this.leading) {
        if (now - this.renewedAt >= this.timing.renewMs - this.timing.pollMs / 2) await this.renew();
      } else {
        await this.contend();
      }
    } catch (error) {
      const message = (error as Error).message;
      log.debug('lease operation failed', { reason: message });
      // Losing a compare-and-set race is the election working; anything else may mean the bucket handle is stale.
      if (!/wrong last sequence/i.test(message)) this.events.failed?.(error as Error);
    } finally {
      this.busy = false;
    }
  }

  private async renew(): Promise<void> {
    const revision = this.ownRevision;
    if (revision === undefined) return;
    const sentAt = Date.now();
    const kv = await this.kv();
    try {
      const renewed = await kv.update(LEASE_KEY, JSON.stringify(this.self), revision, this.timing.renewMs);
      // Deposed while the renewal was in flight: stay deposed; the lease lapses and a follower takes over.
      if (this.ownRevision !== revision || this.stopped) return;
      this.ownRevision = renewed;
      this.renewedAt = sentAt;
    } catch (error) {
      const message = (error as Error).message;
      // A sequence mismatch means another replica holds the key now; anything else may pass, until the TTL says no.
      if (/wrong last sequence/i.test(message)) this.depose('another replica took the lease');
      else throw error;
    }
  }

  private async contend(): Promise<void> {
    const kv = await this.kv();
    const entry = await kv.get(LEASE_KEY);
    const now = Date.now();
    if (!entry || entry.operation !== 'PUT') {
      this.observed = undefined;
      const revision = await kv.create(LEASE_KEY, JSON.stringify(this.self));
      this.elect(revision, now);
      return;
    }
    if (this.observed?.revision !== entry.revision) {
      let record: LeaseRecord | undefined;
      try {
        record = entry.json<LeaseRecord>();
      } catch {
        record = undefined;
      }
      this.observed = { revision: entry.revision, record, seenAt: now };
      return;
    }
    if (now - this.observed.seenAt <= this.timing.ttlMs) return;
    log.info('the leader lease expired; taking over', { previous: this.observed.record?.id, silentMs: now - this.observed.seenAt });
    const revision = await kv.update(LEASE_KEY, JSON.stringify(this.self), entry.revision, this.timing.renewMs);
    this.elect(revision, now);
  }

  private elect(revision: number, sentAt: number): void {
    if (this.stopped) return;
    this.ownRevision = revision;
    this.renewedAt = sentAt;
    this.observed = undefined;
    this.events.elected(revision);
  }

  private depose(reason: string): void {
    if (!this.leading) return;
    this.ownRevision = undefined;
    this.observed = undefined;
    this.events.deposed(reason);
  }
}
