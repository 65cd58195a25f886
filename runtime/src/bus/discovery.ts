import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/nats-core';
import type { NatsConnection } from '@nats-io/transport-node';
import { KvBucket, logger, discoveryKey, parseSpiffeId } from '@skein/core';

const log = logger('discovery');

/** Instances held at most; past this, new records are ignored rather than letting a flood exhaust memory. */
const MAX_INSTANCES = 50_000;

/** What one live app instance publishes about itself. */
export interface InstanceRecord {
  appId: string;
  namespace: string;
  instanceId: string;
  /** Internal gRPC address other sidecars dial, `host:port`. */
  address: string;
  /** SPIFFE ID its SVID carries; callers verify the peer certificate against it. */
  spiffeId: string;
  hostname: string;
  startedAt: string;
}

/** Timing of discovery. */
export interface DiscoveryOptions {
  /** How often an instance refreshes its record. */
  heartbeatMs: number;
  /** An instance not refreshed for this long is taken for dead. */
  ttlMs: number;
}

interface Seen {
  record: InstanceRecord;
  seenAt: number;
  unhealthyUntil: number;
}

/**
 * App-ID resolution over a JetStream KV bucket: each sidecar registers its instance with a heartbeat and
 * watches the bucket. Resolution is local (a map kept current by the watch), round-robin over live instances.
 */
export class Discovery {
  private readonly nc: NatsConnection;
  private readonly bucket: KvBucket;
  private readonly options: DiscoveryOptions;
  private readonly instances = new Map<string, Seen>();
  private readonly cursors = new Map<string, number>();
  private kv: KV | undefined;
  private own: InstanceRecord | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private stopped = false;
  private watchGeneration = 0;
  private watcher: QueuedIterator<KvWatchEntry> | undefined;
  private readonly arrivals = new Set<() => void>();
  /** When the connection to NATS was lost, while it is: no heartbeat can arrive, so freshness is judged at that time. */
  private busDownSince: number | undefined;

  constructor(nc: NatsConnection, options: DiscoveryOptions) {
    this.nc = nc;
    this.options = options;
    this.bucket = new KvBucket(nc, 'discovery', { ttlMs: Math.max(options.ttlMs * 4, 10_000) });
  }

  /** Opens (or creates) the bucket and starts watching it; resolves once the current contents are loaded. */
  async start(): Promise<void> {
    await this.openBucket();
    void this.resyncOnReconnect();
  }

  /**
   * After any reconnect the server may have lost its store (and with it our watch's consumer), so every
   * reconnect re-opens the bucket, re-registers and re-watches. Cheap, and it never relies on a dead consumer.
   */
  private async resyncOnReconnect(): Promise<void> {
    for await (const event of this.nc.status()) {
      if (this.stopped) return;
      if (event.type === 'disconnect' && this.busDownSince === undefined) {
        this.busDownSince = Date.now();
        log.warn('discovery bus unreachable; calls go to the instances known when it went away');
      }
      if (event.type !== 'reconnect') continue;
      this.busDownSince = undefined;
      try {
        await this.openBucket();
        await this.publishOwn();
        log.info('discovery resynchronised after reconnect');
      } catch (error) {
        log.warn('discovery resync failed; the next heartbeat retries', { reason: (error as Error).message });
      }
    }
  }

  private async openBucket(): Promise<void> {
    // Entries expire server-side a while after their last heartbeat, so a crashed instance leaves no residue. The
    // server may have lost the bucket (a restart without its store): open it afresh, re-creating it when missing.
    this.bucket.reset();
    this.kv = await this.bucket.open();
    await this.watch(this.kv);
  }

  private async watch(kv: KV): Promise<void> {
    const generation = ++this.watchGeneration;
    this.watcher?.stop();
    const iterator = await kv.watch({ key: '>' });
    this.watcher = iterator;
    let resolveInitial: () => void = () => undefined;
    const initial = new Promise<void>((resolve) => (resolveInitial = resolve));
    let pending = iterator.getPending?.() ?? 0;
    if (pending === 0) resolveInitial();
    void (async () => {
      try {
        for await (const entry of iterator) {
          if (generation !== this.watchGeneration) break;
          this.apply(entry);
          if (entry.delta === 0 || --pending <= 0) resolveInitial();
        }
      } catch (error) {
        log.warn('discovery watch ended', { reason: (error as Error).message });
      }
      resolveInitial();
    })();
    await initial;
  }

  private apply(entry: KvWatchEntry): void {
    if (entry.operation !== 'PUT') {
      this.instances.delete(entry.key);
      log.debug('instance left', { key: entry.key });
      return;
    }
    try {
      const record = entry.json<InstanceRecord>();
      // A record must describe the instance its key names; anything else is ignored (callers verify the peer's
      // certificate against the App ID they want, so a forged record can at worst fail calls, never receive them).
      const claimed = parseSpiffeId(String(record.spiffeId));
      if (entry.key !== discoveryKey(record.namespace, record.appId, record.instanceId) || !claimed || claimed.appId !== record.appId || claimed.namespace !== record.namespace) {
        log.warn('ignored a discovery record that does not match its key', { key: entry.key });
        return;
      }
      if (!this.instances.has(entry.key) && this.instances.size >= MAX_INSTANCES) {
        log.warn('ignored a discovery record: too many instances registered', { key: entry.key, limit: MAX_INSTANCES });
        return;
      }
      const known = this.instances.get(entry.key);
      if (!known) log.debug('instance joined', { appId: record.appId, address: record.address });
      this.instances.set(entry.key, { record, seenAt: Date.now(), unhealthyUntil: known?.unhealthyUntil ?? 0 });
      if (!known) for (const arrived of [...this.arrivals]) arrived();
    } catch {
      log.warn('ignored a malformed discovery record', { key: entry.key });
    }
  }

  /** Registers this sidecar's instance and keeps it alive until `stop()`. */
  async register(record: InstanceRecord): Promise<void> {
    this.own = record;
    await this.publishOwn();
    this.heartbeat = setInterval(() => void this.beat(), this.options.heartbeatMs);
    this.heartbeat.unref();
  }

  private async publishOwn(): Promise<void> {
    if (!this.kv || !this.own) return;
    await this.kv.put(discoveryKey(this.own.namespace, this.own.appId, this.own.instanceId), JSON.stringify(this.own));
  }

  private async beat(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.publishOwn();
    } catch (error) {
      // NATS may have restarted without its store: recreate the bucket, then watch and register again.
      log.warn('discovery heartbeat failed; reopening the bucket', { reason: (error as Error).message });
      try {
        await this.openBucket();
        await this.publishOwn();
      } catch (reopenError) {
        log.warn('discovery bucket not reachable yet', { reason: (reopenError as Error).message });
      }
    }
  }

  /**
   * Live instances of an app: refreshed within the TTL and not recently marked unhealthy (unless none is left).
   * While the bus is unreachable no heartbeat can arrive, so an instance counts as live if it was when the bus went
   * away: calls keep going to the last known instances (a dead one fails fast and is skipped) instead of the app
   * appearing not to exist.
   */
  live(namespace: string, appId: string): InstanceRecord[] {
    const now = Date.now();
    const asOf = this.busDownSince ?? now;
    const fresh: Seen[] = [];
    for (const seen of this.instances.values()) {
      if (seen.record.appId === appId && seen.record.namespace === namespace && asOf - seen.seenAt <= this.options.ttlMs) fresh.push(seen);
    }
    const healthy = fresh.filter((seen) => seen.unhealthyUntil <= now);
    return (healthy.length > 0 ? healthy : fresh).map((seen) => seen.record);
  }

  /** Picks the next live instance of an app round-robin, skipping `exclude`; undefined when there is none. */
  pick(namespace: string, appId: string, exclude: ReadonlySet<string> = new Set()): InstanceRecord | undefined {
    const candidates = this.live(namespace, appId)
      .filter((record) => !exclude.has(record.instanceId))
      .sort((a, b) => a.instanceId.localeCompare(b.instanceId));
    if (candidates.length === 0) return undefined;
    const cursorKey = `${namespace}/${appId}`;
    const cursor = (this.cursors.get(cursorKey) ?? -1) + 1;
    this.cursors.set(cursorKey, cursor % candidates.length);
    return candidates[cursor % candidates.length];
  }

  /**
   * Like `pick`, but when the app has no usable instance right now and `waitMs` is given, waits up to that long
   * for a new instance to register (a restarting sidecar), instead of failing the call at once.
   */
  async pickOrWait(namespace: string, appId: string, exclude: ReadonlySet<string>, waitMs: number): Promise<InstanceRecord | undefined> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const picked = this.pick(namespace, appId, exclude);
      const remaining = deadline - Date.now();
      if (picked || remaining <= 0 || this.stopped) return picked;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, remaining);
        function done(): void {
          clearTimeout(timer);
          arrivals.delete(done);
          resolve();
        }
        const arrivals = this.arrivals;
        arrivals.add(done);
      });
    }
  }

  /**
   * Reads the app's records straight from the bucket. The watch is an eventually consistent cache: an instance
   * that registered a moment ago may not have reached it yet, so a miss is checked against the store before a
   * caller is told the app does not exist.
   */
  async refresh(namespace: string, appId: string): Promise<void> {
    const kv = this.kv;
    if (!kv) return;
    try {
      const keys = await kv.keys(`${namespace}.${appId}.*`);
      for await (const key of keys) {
        const entry = await kv.get(key);
        if (entry && entry.operation === 'PUT' && !this.instances.has(key)) this.apply(entry as KvWatchEntry);
      }
    } catch (error) {
      log.debug('discovery read-through failed', { appId, reason: (error as Error).message });
    }
  }

  /** True when any record of the app is held, live or expired-but-not-yet-deleted. */
  knows(namespace: string, appId: string): boolean {
    for (const seen of this.instances.values()) if (seen.record.appId === appId && seen.record.namespace === namespace) return true;
    return false;
  }

  /** The live record of one instance of an app, if it is live. */
  instance(namespace: string, appId: string, instanceId: string): InstanceRecord | undefined {
    return this.live(namespace, appId).find((record) => record.instanceId === instanceId);
  }

  /** Stops sending calls to an instance for a while (it refused a connection). */
  markUnhealthy(instanceId: string, forMs = this.options.ttlMs): void {
    for (const seen of this.instances.values()) {
      if (seen.record.instanceId === instanceId) seen.unhealthyUntil = Date.now() + forMs;
    }
  }

  /** Deregisters this instance and stops watching. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.watchGeneration++;
    this.watcher?.stop();
    for (const arrived of [...this.arrivals]) arrived();
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.kv && this.own) {
      await this.kv.delete(discoveryKey(this.own.namespace, this.own.appId, this.own.instanceId)).catch(() => undefined);
    }
  }
}
