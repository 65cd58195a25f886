import type { KV } from '@nats-io/kv';
import { KvBucket, connectBus, SkeinError, asSkeinError, logger, type Bus } from '@skein/core';
import { DEFAULT_VIRTUAL_NODES } from './hashing.js';
import { NamespaceDisseminator, type CommittedTable } from './dissemination.js';
import { hostRecordOf } from './host-report.js';
import { LeaderLease, type LeaseRecord } from './lease.js';
import { PlacementServer, LEADER_METADATA, type HostStream, type ServingTls } from './server.js';
import { computeTable, type HostRecord } from './table.js';

const log = logger('placement');

/** Prefix of the keys holding each namespace's last disseminated membership. */
const MEMBERS_KEY_PREFIX = 'members.';

/** Defaults of the options that have one. */
export const PLACEMENT_DEFAULTS = {
  port: 50005,
  host: '127.0.0.1',
  virtualNodes: DEFAULT_VIRTUAL_NODES,
  hostTtlMs: 5000,
  disseminationTimeoutMs: 10_000,
  batchWindowMs: 100,
  leaseTtlMs: 3000,
} as const;

/** Validated options of a placement replica. */
export interface PlacementOptions {
  /** This replica's id in the election; unique among replicas. */
  id: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** `host:port` sidecars and followers use to reach this replica; defaults to the bound host and port. */
  advertiseAddress?: string;
  natsUrl: string;
  /** Serving certificate (also placement's NATS client certificate) and the bundle that verifies clients. */
  tls: ServingTls;
  virtualNodes: number;
  /** A host heard nothing from for this long is dropped. */
  hostTtlMs: number;
  /** A round step not acked by a host within this is abandoned and the host dropped. */
  disseminationTimeoutMs: number;
  /** Membership changes within this window share a round. */
  batchWindowMs: number;
  /** The leader lease; a follower takes over this long after the leader stopped renewing. */
  leaseTtlMs: number;
}

/** What a persisted membership record holds. */
interface StoredMembership {
  version: string;
  virtualNodes: number;
  hosts: HostRecord[];
}

interface Term {
  epoch: number;
  electedAt: number;
  /** Memberships of the previous leader, loaded once per term. */
  previous: Promise<Map<string, CommittedTable>>;
  namespaces: Map<string, NamespaceDisseminator>;
  versions: number;
}

function checkRange(name: string, value: number, min: number, max: number): void {
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new SkeinError('ERR_CONFIG_INVALID', `${name} must be from ${min} to ${max}, not ${value}`);
  }
}

/**
 * The placement service: membership of actor hosts per namespace, versioned hash-ring tables, and their
 * dissemination in lock → update → unlock rounds. Replicas elect a leader through a lease in NATS KV; only the
 * leader serves, followers refuse and name the leader. Create, then `start()` (or `run(signal)`), then `stop()`.
 */
export class Placement {
  private readonly options: PlacementOptions;
  private readonly server: PlacementServer;
  private readonly streams = new Set<HostStream>();
  private bus: Bus | undefined;
  private bucket: KvBucket | undefined;
  private lease: LeaderLease | undefined;
  private term: Term | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private persisting = new Map<string, Promise<void>>();
  private stopping: Promise<void> | undefined;
  private address = '';

  constructor(options: PlacementOptions) {
    checkRange('virtual nodes', options.virtualNodes, 1, 10_000);
    checkRange('host TTL (ms)', options.hostTtlMs, 500, 3_600_000);
    checkRange('dissemination timeout (ms)', options.disseminationTimeoutMs, 100, 3_600_000);
    checkRange('batch window (ms)', options.batchWindowMs, 0, 60_000);
    checkRange('lease TTL (ms)', options.leaseTtlMs, 600, 600_000);
    if (!options.id) throw new SkeinError('ERR_CONFIG_INVALID', 'a placement replica needs an id');
    this.options = options;
    this.server = new PlacementServer(options.tls, (stream) => this.accept(stream));
  }

  /** The bound port (after `start()`). */
  get port(): number {
    return this.server.port;
  }

  /** True while this replica leads. */
  get leading(): boolean {
    return this.term !== undefined;
  }

  /** Listens, connects to NATS and joins the election; resolves with the bound port once serving. */
  async start(): Promise<number> {
    const { host, port, natsUrl, tls, id } = this.options;
    const bound = await this.server.listen(host, port);
    this.address = this.options.advertiseAddress ?? `${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${bound}`;
    try {
      this.bus = await connectBus(natsUrl, { certPem: tls.certPem, keyPem: tls.keyPem, caPem: tls.trustBundlePem }, `skein-placement ${id}`);
    } catch (error) {
      await this.server.close();
      throw error;
    }
    this.bucket = new KvBucket(this.bus.nc, 'placement');
    const self: LeaseRecord = { id, address: this.address };
    const ttl = this.options.leaseTtlMs;
    this.lease = new LeaderLease(() => this.kv(), self, { ttlMs: ttl, renewMs: Math.round(ttl / 3), pollMs: Math.min(250, Math.round(ttl / 6)) }, {
      elected: (epoch) => this.elected(epoch),
      deposed: (reason) => this.deposed(reason),
      failed: () => this.bucket?.reset(),
    });
    this.lease.start();
    const sweepMs = Math.max(100, Math.min(1000, Math.round(this.options.hostTtlMs / 4)));
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const namespace of this.term?.namespaces.values() ?? []) namespace.sweep(now, this.options.hostTtlMs);
    }, sweepMs);
    log.info('ready', { what: 'placement', id, address: this.address, port: bound, trustDomain: tls.trustDomain });
    return bound;
  }

  /** Starts, then serves until `signal` aborts, then stops. */
  async run(signal: AbortSignal): Promise<void> {
    await this.start();
    if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    await this.stop();
  }

  /** Ends every stream, releases the lease (so a follower takes over at once), and disconnects. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.sweeper) clearInterval(this.sweeper);
      // Stop serving before releasing the lease, so two replicas never serve at once.
      if (this.term) this.endTerm('this replica is shutting down');
      await this.lease?.stop();
      await this.server.close();
      await Promise.allSettled(this.persisting.values());
      await this.bus?.nc.drain().catch(() => undefined);
      log.info('stopped', { id: this.options.id });
    })();
    return this.stopping;
  }

  private kv(): Promise<KV> {
    if (!this.bucket) return Promise.reject(new SkeinError('ERR_INTERNAL', 'placement is not connected to NATS'));
    return this.bucket.open();
  }


  private elected(epoch: number): void {
    if (this.stopping) return;
    const previous = this.loadMemberships();
    this.term = { epoch, electedAt: Date.now(), previous, namespaces: new Map(), versions: 0 };
    log.info('became leader', { id: this.options.id, address: this.address, epoch });
  }

  private deposed(reason: string): void {
    log.warn('lost leadership', { id: this.options.id, reason });
    this.endTerm(reason);
  }

  private endTerm(reason: string): void {
    const term = this.term;
    if (!term) return;
    this.term = undefined;
    for (const namespace of term.namespaces.values()) namespace.close();
    for (const stream of [...this.streams]) this.refuseNotLeader(stream, reason);
  }

  private refuseNotLeader(stream: HostStream, reason?: string): void {
    const leader = this.lease?.leader;
    const elsewhere = leader && leader.id !== this.options.id ? leader : undefined;
    const message = elsewhere
      ? `placement ${this.options.id} is a follower; the leader is ${elsewhere.id} at ${elsewhere.address}`
      : `placement ${this.options.id} is not the leader${reason ? ` (${reason})` : ''} and knows of no other yet`;
    stream.refuse(new SkeinError('ERR_PLACEMENT_NOT_LEADER', message), elsewhere ? { [LEADER_METADATA]: elsewhere.address } : {});
  }

  private accept(stream: HostStream): void {
    const term = this.term;
    if (!term || this.stopping) {
      this.refuseNotLeader(stream);
      return;
    }
    this.streams.add(stream);
    let namespace: NamespaceDisseminator | undefined;
    let closed = false;
    // A stream that never reports is no member, so the sweep would never see it; it gets one TTL to say who it is.
    const firstReport = setTimeout(() => {
      if (!namespace) stream.refuse(new SkeinError('ERR_PLACEMENT_HOST_DROPPED', `no report within ${this.options.hostTtlMs} ms of opening the stream`));
    }, this.options.hostTtlMs);
    // Messages are handled in order, after the previous leader's memberships are loaded.
    let queue: Promise<unknown> = term.previous;
    stream.onMessage((message) => {
      queue = queue.then(async () => {
        if (this.term !== term || closed) return;
        try {
          if (message.report) {
            const { namespace: name, record } = hostRecordOf(message.report, stream.peer);
            namespace ??= await this.namespace(term, name);
            if (closed || this.term !== term) return;
            namespace.report(stream, record, Date.now());
          } else if (message.ack) {
            if (!namespace?.has(stream)) throw new SkeinError('ERR_MALFORMED_REQUEST', 'the first message of a stream must be a report');
            namespace.touch(stream, Date.now());
            namespace.ack(stream, message.ack.operation ?? 0, message.ack.version ?? '');
          } else {
            throw new SkeinError('ERR_MALFORMED_REQUEST', 'a host message must carry a report or an ack');
          }
        } catch (error) {
          const skeinError = asSkeinError(error);
          log.warn('refused a host stream', { code: skeinError.code, reason: skeinError.message, peer: `${stream.peer.namespace}/${stream.peer.appId}` });
          stream.refuse(skeinError);
        }
      });
    });
    stream.onClose(() => {
      closed = true;
      clearTimeout(firstReport);
      this.streams.delete(stream);
      namespace?.leave(stream);
    });
  }

  private async namespace(term: Term, name: string): Promise<NamespaceDisseminator> {
    const existing = term.namespaces.get(name);
    if (existing) return existing;
    const previous = (await term.previous).get(name);
    // Another stream of the namespace may have created it while this one waited.
    const raced = term.namespaces.get(name);
    if (raced) return raced;
    const created = new NamespaceDisseminator({
      namespace: name,
      virtualNodes: this.options.virtualNodes,
      disseminationTimeoutMs: this.options.disseminationTimeoutMs,
      batchWindowMs: this.options.batchWindowMs,
      nextVersion: () => `${term.epoch}.${++term.versions}`,
      persist: (namespace, committed) => this.persist(namespace, committed),
      ...(previous
        ? { previous, expected: new Set(previous.hosts.map((host) => host.address)), holdUntil: term.electedAt + this.options.hostTtlMs }
        : {}),
    });
    term.namespaces.set(name, created);
    return created;
  }

  /** Memberships the previous leader disseminated last; a failed read only costs the warm start. */
  private async loadMemberships(): Promise<Map<string, CommittedTable>> {
    const result = new Map<string, CommittedTable>();
    try {
      const kv = await this.kv();
      const keys: string[] = [];
      for await (const key of await kv.keys(`${MEMBERS_KEY_PREFIX}>`)) keys.push(key);
      for (const key of keys) {
        const entry = await kv.get(key);
        if (!entry || entry.operation !== 'PUT') continue;
        const stored = entry.json<StoredMembership>();
        if (stored.virtualNodes !== this.options.virtualNodes) continue;
        result.set(key.slice(MEMBERS_KEY_PREFIX.length), { version: stored.version, hosts: stored.hosts, table: computeTable(stored.hosts, stored.virtualNodes) });
      }
      log.info('loaded the previous memberships', { namespaces: [...result.keys()] });
    } catch (error) {
      log.warn('could not load the previous memberships; starting empty', { reason: (error as Error).message });
    }
    return result;
  }

  /** Writes a namespace's committed membership; writes of one namespace are kept in order. */
  private persist(namespace: string, committed: CommittedTable): Promise<void> {
    const stored: StoredMembership = { version: committed.version, virtualNodes: committed.table.virtualNodes, hosts: committed.hosts };
    const previous = this.persisting.get(namespace) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(async () => {
      await (await this.kv()).put(`${MEMBERS_KEY_PREFIX}${namespace}`, JSON.stringify(stored));
    });
    this.persisting.set(namespace, next);
    void next.then(
      () => this.forget(namespace, next),
      () => this.forget(namespace, next),
    );
    return next;
  }

  private forget(namespace: string, write: Promise<void>): void {
    if (this.persisting.get(namespace) === write) this.persisting.delete(namespace);
  }
}
