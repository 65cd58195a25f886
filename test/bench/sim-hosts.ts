/**
 * Simulated actor hosts for the placement benchmark: real gRPC clients of a real placement process, each on its own
 * TLS connection with a CA-signed SVID, that keep a ReportHost stream open, report periodically and ack LOCK and
 * UPDATE like a sidecar. A fleet records, per table version, when each host received the round's UNLOCK, so the
 * time from a membership change to the last host's UNLOCK can be read off.
 */
import { Client, credentials, Metadata, type ChannelCredentials, type ClientDuplexStream } from '@grpc/grpc-js';
import { performance } from 'node:perf_hooks';
import { placementService, skein } from '@skein/proto';
import { createCsr, generateKeyPem, signSvid, spiffeIdOfCertificate } from '@skein/core';

const Operation = skein.placement.v1.Operation;
type Order = skein.placement.v1.IPlacementOrder;
type HostMessage = skein.placement.v1.IHostMessage;

/** What every host of a fleet shares. */
export interface FleetOptions {
  placement: string;
  ca: { certPem: string; keyPem: string };
  trustDomain: string;
  namespace: string;
  actorTypes: string[];
  /** Hosts are spread over this many App IDs (one SVID each); each host still has its own connection. */
  appIds: number;
  heartbeatMs: number;
}

/** A version as the fleet saw it: which hosts completed its round, and when the last UNLOCK arrived. */
interface VersionSeen {
  hosts: Set<number>;
  /** Members of the first actor type's ring in the table, or -1 before an UPDATE was seen. */
  members: number;
  lastAt: number;
}

type Waiter = { test: (version: VersionSeen) => boolean; resolve: (version: VersionSeen) => void };

/** One simulated host. */
class SimHost {
  private call: ClientDuplexStream<HostMessage, Order> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly instanceId: string;

  constructor(
    private readonly fleet: Fleet,
    readonly index: number,
    readonly client: Client,
    private readonly report: skein.placement.v1.IHostReport,
  ) {
    this.instanceId = `sim-${index}-${Math.random().toString(36).slice(2, 8)}`;
  }

  connect(): void {
    const call = this.client.makeBidiStreamRequest(placementService.reportHost.path, placementService.reportHost.requestSerialize, placementService.reportHost.responseDeserialize, new Metadata());
    this.call = call;
    let pending: { version: string; members: number } | undefined;
    call.on('data', (order: Order) => {
      const version = order.version ?? '';
      switch (order.operation) {
        case Operation.LOCK:
          pending = { version, members: -1 };
          call.write({ ack: { operation: Operation.LOCK, version } });
          break;
        case Operation.UPDATE:
          if (!pending || pending.version !== version) pending = { version, members: -1 };
          pending.members = order.table?.rings?.[0]?.members?.length ?? 0;
          call.write({ ack: { operation: Operation.UPDATE, version } });
          break;
        case Operation.UNLOCK:
          if (pending && pending.version === version && pending.members >= 0) this.fleet.applied(this.index, version, pending.members);
          pending = undefined;
          break;
        default:
          break;
      }
    });
    // A stream end is expected only on close; errors are counted, not retried (a benchmark host does not reconnect).
    call.on('error', () => this.fleet.streamEnded());
    this.send();
    this.heartbeat = setInterval(() => this.send(), this.fleet.options.heartbeatMs);
  }

  private send(): void {
    this.call?.write({ report: { ...this.report, instanceId: this.instanceId } });
  }

  /** Half-closes the stream: the host leaves on purpose. */
  leave(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.call?.end();
  }

  close(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.call?.cancel();
    this.client.close();
  }
}

/** Many simulated hosts of one namespace against one placement process. */
export class Fleet {
  readonly options: FleetOptions;
  private readonly hosts = new Map<number, SimHost>();
  private readonly credentials: ChannelCredentials[];
  private readonly versions = new Map<string, VersionSeen>();
  private readonly waiters = new Set<Waiter>();
  private nextIndex = 0;
  /** Streams that ended with an error while the fleet was running. */
  errors = 0;
  private closing = false;

  constructor(options: FleetOptions) {
    this.options = options;
    this.credentials = Array.from({ length: options.appIds }, (_, i) => {
      const { privateKeyPem } = generateKeyPem();
      const appId = `sim-app-${i}`;
      const certPem = signSvid({ certPem: options.ca.certPem, keyPem: options.ca.keyPem }, createCsr(privateKeyPem, appId), { trustDomain: options.trustDomain, namespace: options.namespace, appId }, 3_600_000);
      return credentials.createSsl(Buffer.from(options.ca.certPem), Buffer.from(privateKeyPem), Buffer.from(certPem), {
        checkServerIdentity: (_host, cert) => {
          const id = spiffeIdOfCertificate(cert);
          return id?.namespace === 'skein-system' && id.appId === 'placement' ? undefined : new Error('not a placement server');
        },
      });
    });
  }

  get size(): number {
    return this.hosts.size;
  }

  /** Creates `count` hosts and completes their TLS handshakes, `parallel` at a time; nothing is reported yet. */
  async prepare(count: number, parallel = 50, timeoutMs = 30_000): Promise<SimHost[]> {
    const created: SimHost[] = [];
    for (let i = 0; i < count; i++) created.push(this.create());
    for (let from = 0; from < created.length; from += parallel) {
      await Promise.all(created.slice(from, from + parallel).map((host) => new Promise<void>((resolve, reject) => host.client.waitForReady(Date.now() + timeoutMs, (error) => (error ? reject(error) : resolve())))));
    }
    return created;
  }

  private create(): SimHost {
    const index = this.nextIndex++;
    const appId = index % this.options.appIds;
    // A local subchannel pool gives every host its own TCP and TLS connection, as separate sidecars would have.
    const client = new Client(this.options.placement, this.credentials[appId] as ChannelCredentials, { 'grpc.ssl_target_name_override': 'placement.skein.internal', 'grpc.use_local_subchannel_pool': 1 });
    const address = `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}:50002`;
    const host = new SimHost(this, index, client, { appId: `sim-app-${appId}`, namespace: this.options.namespace, address, actorTypes: this.options.actorTypes });
    this.hosts.set(index, host);
    return host;
  }

  /** Called by a host when it received the UNLOCK of a round it had the table of. */
  applied(index: number, version: string, members: number): void {
    let seen = this.versions.get(version);
    if (!seen) this.versions.set(version, (seen = { hosts: new Set(), members, lastAt: 0 }));
    seen.hosts.add(index);
    seen.lastAt = performance.now();
    for (const waiter of [...this.waiters]) {
      if (waiter.test(seen)) {
        this.waiters.delete(waiter);
        waiter.resolve(seen);
      }
    }
  }

  streamEnded(): void {
    if (!this.closing) this.errors++;
  }

  /**
   * Resolves with the time (performance.now()) at which the last current host received the UNLOCK of a table whose
   * first ring has exactly the current hosts (a version not yet seen when called); rejects after `timeoutMs`.
   */
  settled(timeoutMs: number): Promise<number> {
    const expected = new Set(this.hosts.keys());
    // Only versions first seen after the call count: after a leave, an older table has the same members again.
    const older = new Set(this.versions.values());
    const test = (seen: VersionSeen): boolean => !older.has(seen) && seen.members === expected.size && seen.hosts.size >= expected.size && [...expected].every((index) => seen.hosts.has(index));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        const best = Math.max(0, ...[...this.versions.values()].map((seen) => seen.hosts.size));
        reject(new Error(`no table reached all ${expected.size} hosts within ${timeoutMs} ms (best: ${best} hosts)`));
      }, timeoutMs);
      const waiter: Waiter = {
        test,
        resolve: (seen) => {
          clearTimeout(timer);
          resolve(seen.lastAt);
        },
      };
      this.waiters.add(waiter);
    });
  }

  /** Removes a host from the fleet and half-closes its stream (a host leaving). */
  leave(host: SimHost): void {
    this.hosts.delete(host.index);
    host.leave();
    setTimeout(() => host.client.close(), 1000).unref();
  }

  close(): void {
    this.closing = true;
    for (const host of this.hosts.values()) host.close();
    this.hosts.clear();
  }
}
