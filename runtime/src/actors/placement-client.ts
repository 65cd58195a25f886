import { Client, experimental, Metadata, status, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { placementService, skein } from '@skein/proto';
import { type TableSpec, logger, spiffeIdOfCertificate, systemClock, type Clock, type TimerHandle } from '@skein/core';
import type { WorkloadIdentity } from '../identity/workload.js';

const log = logger('actors');
const Operation = skein.placement.v1.Operation;

/** The namespace and App ID placement's certificate carries (`spiffe://<td>/ns/skein-system/placement`). */
const PLACEMENT_IDENTITY = { namespace: 'skein-system', appId: 'placement' } as const;
/** Trailer naming the leader when a follower refuses the stream. */
const LEADER_METADATA = 'skein-placement-leader';
const ERROR_CODE_METADATA = 'skein-error-code';

/** What this sidecar reports about itself. */
export interface HostReport {
  appId: string;
  namespace: string;
  /** The internal gRPC address other sidecars dial: this host's key on every ring. */
  address: string;
  actorTypes: readonly string[];
  instanceId: string;
}

/** What the sidecar does with placement's orders (step 2 of the protocol in placement.proto). */
export interface PlacementOrders {
  /** Stop starting turns of these types. */
  lock(actorTypes: readonly string[], version: string): void;
  /** Install the table and deactivate every local actor this host no longer owns; resolve when done. */
  update(table: TableSpec, version: string): Promise<void>;
  /** Release every lock. */
  unlock(version: string): void;
}

/** Options of the placement client. */
export interface PlacementClientOptions {
  /** Placement replicas, `host:port`, tried in turn. */
  addresses: readonly string[];
  identity: WorkloadIdentity;
  report: () => HostReport;
  orders: PlacementOrders;
  /** How often the report is repeated (placement drops a host it has not heard from for its host TTL). */
  heartbeatMs?: number;
  /** Longest pause between reconnection attempts. */
  maxBackoffMs?: number;
  /** Heartbeats, reconnection pauses and the leave timeout run on it; the system clock by default. */
  clock?: Clock;
}

/** The table of an UPDATE in the hashing module's shape. */
export function tableSpecOf(table: skein.placement.v1.IPlacementTable | null | undefined): TableSpec {
  return {
    virtualNodes: table?.virtualNodes || 100,
    rings: (table?.rings ?? []).map((ring) => ({
      actorType: ring.actorType ?? '',
      members: (ring.members ?? []).map((member) => ({ address: member.address ?? '', appId: member.appId ?? '' })),
    })),
  };
}

type HostCall = ClientDuplexStream<skein.placement.v1.IHostMessage, skein.placement.v1.IPlacementOrder>;

/**
 * A sidecar's side of placement: one ReportHost stream to the leader, over mTLS with the sidecar's SVID, verifying
 * that the server is placement by its SPIFFE ID. It reports every second, follows LOCK → UPDATE → UNLOCK (acking
 * LOCK at once and UPDATE once the orders are carried out), follows a follower's pointer to the leader, and
 * otherwise reconnects with backoff across every known replica. Losing the stream changes nothing in the sidecar:
 * the last table and any locks stay as they are until the next orders arrive.
 */
export class PlacementClient {
  private readonly options: PlacementClientOptions;
  private readonly clients = new Map<string, Client>();
  private call: HostCall | undefined;
  private target: string;
  private cursor = 0;
  private backoffMs = 0;
  private readonly clock: Clock;
  private heartbeat: TimerHandle | undefined;
  private retry: TimerHandle | undefined;
  private stopped = false;
  private streaming = false;
  /** One warning per outage; the attempts that follow are logged at debug level. */
  private outageLogged = false;
  private orderChain: Promise<void> = Promise.resolve();

  constructor(options: PlacementClientOptions) {
    if (options.addresses.length === 0) throw new Error('at least one placement address is needed');
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.target = options.addresses[0] as string;
  }

  /** True while a stream to the leader is open and has delivered orders. */
  get connected(): boolean {
    return this.streaming;
  }

  /** The address the client talks to (or will try next). */
  get address(): string {
    return this.target;
  }

  /** Opens the stream and starts reporting. */
  start(): void {
    this.connect();
    this.beat();
  }

  private beat(): void {
    if (this.stopped) return;
    this.heartbeat = this.clock.setTimeout(() => {
      this.sendReport();
      this.beat();
    }, this.options.heartbeatMs ?? 1000);
  }

  /** Sends the report now (the hosted actor types changed). */
  reportNow(): void {
    this.sendReport();
  }

  /**
   * Leaves: half-closes the stream so placement drops this host at once, waits (up to `timeoutMs`) for placement to
   * end it, then closes every connection.
   */
  async stop(timeoutMs = 2000): Promise<void> {
    this.stopped = true;
    this.clock.clearTimeout(this.heartbeat);
    this.clock.clearTimeout(this.retry);
    const call = this.call;
    if (call) {
      const ended = new Promise<void>((resolve) => {
        call.once('status', () => resolve());
        call.once('error', () => resolve());
        this.clock.setTimeout(resolve, timeoutMs);
      });
      call.end();
      await ended;
      call.cancel();
    }
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private connect(): void {
    if (this.stopped) return;
    const address = this.target;
    const method = placementService.reportHost;
    const call = this.client(address).makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, new Metadata());
    this.call = call;
    let ended = false;
    call.on('data', (order: skein.placement.v1.IPlacementOrder) => {
      if (!this.streaming) log.info('placement connected', { address });
      this.streaming = true;
      this.outageLogged = false;
      this.backoffMs = 0;
      this.orderChain = this.orderChain.then(() => this.carryOut(call, order)).catch((error: unknown) => {
        log.error('placement order failed', { operation: order.operation, version: order.version, reason: (error as Error).message });
      });
    });
    const end = (code: status, details: string, metadata: Metadata | undefined): void => {
      if (ended) return;
      ended = true;
      if (this.call === call) this.call = undefined;
      this.streaming = false;
      if (this.stopped) return;
      const leader = metadata?.get(LEADER_METADATA)[0]?.toString();
      const errorCode = metadata?.get(ERROR_CODE_METADATA)[0]?.toString();
      if (code === status.FAILED_PRECONDITION && leader && leader !== address) {
        log.debug('placement follower named the leader', { address, leader });
        this.target = leader;
        this.schedule(50);
        return;
      }
      const fields = { address, code, errorCode, details };
      if (this.outageLogged) log.debug('placement still unreachable', fields);
      else log.warn('placement stream ended; keeping the last table and reconnecting', fields);
      this.outageLogged = true;
      this.cursor = (this.cursor + 1) % this.options.addresses.length;
      this.target = this.options.addresses[this.cursor] as string;
      this.backoffMs = Math.min(this.options.maxBackoffMs ?? 3000, Math.max(100, this.backoffMs * 2));
      this.schedule(this.backoffMs * (0.75 + Math.random() * 0.5));
    };
    call.on('error', (error: ServiceError) => end(error.code, error.details, error.metadata));
    call.on('status', (callStatus: { code: number; details: string; metadata: Metadata }) => end(callStatus.code, callStatus.details, callStatus.metadata));
    this.sendReport();
  }

  private schedule(delayMs: number): void {
    this.clock.clearTimeout(this.retry);
    this.retry = this.clock.setTimeout(() => this.connect(), delayMs);
  }

  private sendReport(): void {
    const call = this.call;
    if (!call || this.stopped) return;
    const report = this.options.report();
    call.write({ report: { ...report, actorTypes: [...report.actorTypes] } });
  }

  private async carryOut(call: HostCall, order: skein.placement.v1.IPlacementOrder): Promise<void> {
    const version = order.version ?? '';
    const { orders } = this.options;
    switch (order.operation) {
      case Operation.LOCK:
        orders.lock(order.lockedTypes ?? [], version);
        this.ack(call, Operation.LOCK, version);
        return;
      case Operation.UPDATE: {
        const table = tableSpecOf(order.table);
        await orders.update(table, version);
        log.debug('placement table installed', { version, actorTypes: table.rings.map((ring) => ring.actorType) });
        this.ack(call, Operation.UPDATE, version);
        return;
      }
      case Operation.UNLOCK:
        orders.unlock(version);
        return;
      default:
        log.warn('ignored an unknown placement order', { operation: order.operation });
    }
  }

  private ack(call: HostCall, operation: skein.placement.v1.Operation, version: string): void {
    // An ack for a stream that ended would reach nobody; the next leader starts its own round.
    if (this.call !== call) return;
    call.write({ ack: { operation, version } });
  }

  private client(address: string): Client {
    let client = this.clients.get(address);
    if (!client) {
      const { identity } = this.options;
      const channelCredentials = experimental.createCertificateProviderChannelCredentials(identity.caProvider, identity.identityProvider, {
        checkServerIdentity: (_host, cert) => {
          const id = spiffeIdOfCertificate(cert);
          const trustDomain = identity.current.id.trustDomain;
          if (id?.trustDomain === trustDomain && id.namespace === PLACEMENT_IDENTITY.namespace && id.appId === PLACEMENT_IDENTITY.appId) return undefined;
          return new Error(`the server at ${address} is not placement of trust domain ${trustDomain} (certificate SAN: ${cert.subjectaltname ?? 'none'})`);
        },
      });
      client = new Client(address, channelCredentials, {
        // SNI carries a name, not the dialled address; placement is verified by its SPIFFE ID above.
        'grpc.ssl_target_name_override': 'placement.skein.internal',
        // Placement sends nothing between rounds: pings notice a leader that vanished without closing the connection.
        'grpc.keepalive_time_ms': 2000,
        'grpc.keepalive_timeout_ms': 2000,
        'grpc.keepalive_permit_without_calls': 1,
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1000,
        'grpc.max_receive_message_length': 64 * 1024 * 1024,
      });
      this.clients.set(address, client);
    }
    return client;
  }
}

/** `host:port[,host:port...]` as `--placement-address` takes it; throws with the offending entry. */
export function parsePlacementAddresses(text: string): string[] {
  const addresses = text.split(',').map((entry) => entry.trim()).filter((entry) => entry.length > 0);
  for (const address of addresses) {
    const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(address);
    if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535) throw new Error(`"${address}" is not host:port`);
  }
  if (addresses.length === 0) throw new Error('no address given');
  return addresses;
}
