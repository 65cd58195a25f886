import { Client, credentials, Metadata, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { placementService, skein } from '@skein/proto';
import { createCsr, generateKeyPem, signSvid, spiffeIdOfCertificate, type KeyPair } from '@skein/core';

const Operation = skein.placement.v1.Operation;
type Order = skein.placement.v1.IPlacementOrder;
type Table = skein.placement.v1.IPlacementTable;

/** An order as a host received it, with the number of the connection it came on. */
export interface ReceivedOrder {
  connection: number;
  order: Order;
}

/** A table a host completed a round for (LOCK, UPDATE, UNLOCK on one connection). */
export interface AppliedTable {
  connection: number;
  version: string;
  lockedTypes: string[];
  table: Table;
}

/** How a stream ended. */
export interface StreamEnd {
  connection: number;
  code: number;
  details: string;
  errorCode: string | undefined;
  leader: string | undefined;
}

/** Options of a simulated actor host. */
export interface TestHostOptions {
  /** Placement replicas, tried in turn; a refusal naming the leader is followed. */
  placements: string[];
  ca: KeyPair;
  trustDomain: string;
  appId: string;
  namespace: string;
  address: string;
  actorTypes: string[];
  /** What the report claims, when it must differ from the certificate (to test refusals). */
  claim?: { appId?: string; namespace?: string };
  heartbeatMs?: number;
  /** Reconnect after the stream ends (default true). */
  reconnect?: boolean;
  /** The client certificate; by default one signed by `ca` for `appId` in `namespace`. */
  svid?: { certPem: string; keyPem: string };
}

type Waiter<T> = { test: (value: T) => boolean; resolve: (value: T) => void };

/** Signs an SVID for `appId` in `namespace` with the CA, as sentry would. */
export function issueSvid(ca: KeyPair, trustDomain: string, namespace: string, appId: string): { certPem: string; keyPem: string } {
  const { privateKeyPem } = generateKeyPem();
  const certPem = signSvid(ca, createCsr(privateKeyPem, appId), { trustDomain, namespace, appId }, 3_600_000);
  return { certPem, keyPem: privateKeyPem };
}

/**
 * A sidecar as placement sees it: a real gRPC client with an SVID that keeps a ReportHost stream open, reports
 * periodically, acks LOCK and UPDATE, and reconnects (following a follower's pointer to the leader). It records
 * everything it receives so tests can wait on messages instead of sleeping.
 */
export class TestHost {
  readonly options: TestHostOptions;
  readonly orders: ReceivedOrder[] = [];
  readonly applied: AppliedTable[] = [];
  readonly ends: StreamEnd[] = [];
  private readonly svid: { certPem: string; keyPem: string };
  private readonly instanceId = `instance-${Math.random().toString(36).slice(2, 10)}`;
  private clients = new Map<string, Client>();
  private call: ClientDuplexStream<skein.placement.v1.IHostMessage, Order> | undefined;
  private connection = 0;
  private target: string;
  private cursor = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private silent = false;
  private stopped = false;
  private readonly appliedWaiters = new Set<Waiter<AppliedTable>>();
  private readonly endWaiters = new Set<Waiter<StreamEnd>>();

  constructor(options: TestHostOptions) {
    this.options = options;
    this.svid = options.svid ?? issueSvid(options.ca, options.trustDomain, options.namespace, options.appId);
    this.target = options.placements[0] as string;
  }

  get address(): string {
    return this.options.address;
  }

  /** Number of the current connection (1 for the first). */
  get connections(): number {
    return this.connection;
  }

  /** The last table this host completed a round for. */
  get table(): AppliedTable | undefined {
    return this.applied.at(-1);
  }

  /** Completes the TLS handshake with the first placement ahead of `connect()`, so that a burst of joins is tight. */
  prepare(timeoutMs = 10_000): Promise<void> {
    const client = this.client(this.target);
    return new Promise((resolve, reject) => client.waitForReady(Date.now() + timeoutMs, (error) => (error ? reject(error) : resolve())));
  }

  /** Opens the stream and sends the first report. */
  connect(): void {
    if (this.stopped) return;
    const connection = ++this.connection;
    const call = this.client(this.target).makeBidiStreamRequest(
      placementService.reportHost.path,
      placementService.reportHost.requestSerialize,
      placementService.reportHost.responseDeserialize,
      new Metadata(),
    );
    this.call = call;
    let pending: { version: string; lockedTypes: string[]; table?: Table } | undefined;
    call.on('data', (order: Order) => {
      this.orders.push({ connection, order });
      const version = order.version ?? '';
      switch (order.operation) {
        case Operation.LOCK:
          pending = { version, lockedTypes: [...(order.lockedTypes ?? [])] };
          this.ack(call, Operation.LOCK, version);
          break;
        case Operation.UPDATE:
          if (pending && pending.version !== version) pending = { version, lockedTypes: [] };
          if (pending) pending.table = order.table ?? {};
          this.ack(call, Operation.UPDATE, version);
          break;
        case Operation.UNLOCK:
          if (pending?.table && pending.version === version) this.record({ connection, version, lockedTypes: pending.lockedTypes, table: pending.table });
          pending = undefined;
          break;
        default:
          break;
      }
    });
    let ended = false;
    const end = (code: number, details: string, metadata: Metadata | undefined): void => {
      if (ended) return;
      ended = true;
      const errorCode = metadata?.get('skein-error-code')[0]?.toString();
      const leader = metadata?.get('skein-placement-leader')[0]?.toString();
      const record: StreamEnd = { connection, code, details, errorCode, leader };
      this.ends.push(record);
      for (const waiter of [...this.endWaiters]) {
        if (waiter.test(record)) {
          this.endWaiters.delete(waiter);
          waiter.resolve(record);
        }
      }
      if (this.call === call) this.call = undefined;
      if (this.stopped || this.options.reconnect === false) return;
      if (leader) {
        this.target = leader;
      } else {
        this.cursor = (this.cursor + 1) % this.options.placements.length;
        this.target = this.options.placements[this.cursor] as string;
      }
      this.retry = setTimeout(() => this.connect(), 100);
    };
    call.on('error', (error: ServiceError) => end(error.code, error.details, error.metadata));
    call.on('status', (status: { code: number; details: string; metadata: Metadata }) => end(status.code, status.details, status.metadata));
    this.report();
    if (!this.heartbeat) {
      this.heartbeat = setInterval(() => this.report(), this.options.heartbeatMs ?? 300);
    }
  }

  /** Stops reporting and acking but keeps the connection open: a host that hangs. */
  silence(): void {
    this.silent = true;
  }

  /** Half-closes the stream: the host leaves on purpose. */
  leave(): void {
    this.stopped = true;
    this.stopTimers();
    this.call?.end();
  }

  /** Tears everything down. */
  close(): void {
    this.stopped = true;
    this.stopTimers();
    this.call?.cancel();
    for (const client of this.clients.values()) client.close();
  }

  /** Resolves with the first applied table (already seen or future) that passes `test`. */
  waitForTable(test: (applied: AppliedTable) => boolean, timeoutMs = 20_000): Promise<AppliedTable> {
    return this.wait(this.applied, this.appliedWaiters, test, timeoutMs, 'table');
  }

  /** Resolves with the first stream end (already seen or future) that passes `test`. */
  waitForEnd(test: (end: StreamEnd) => boolean = () => true, timeoutMs = 20_000): Promise<StreamEnd> {
    return this.wait(this.ends, this.endWaiters, test, timeoutMs, 'stream end');
  }

  private wait<T>(seen: T[], waiters: Set<Waiter<T>>, test: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
    const found = seen.find(test);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`${this.address}: no matching ${what} within ${timeoutMs} ms; orders: ${JSON.stringify(this.orders.map(({ connection, order }) => [connection, order.operation, order.version, order.lockedTypes]))}; ends: ${JSON.stringify(this.ends)}`));
      }, timeoutMs);
      const waiter: Waiter<T> = {
        test,
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
      };
      waiters.add(waiter);
    });
  }

  private record(applied: AppliedTable): void {
    this.applied.push(applied);
    for (const waiter of [...this.appliedWaiters]) {
      if (waiter.test(applied)) {
        this.appliedWaiters.delete(waiter);
        waiter.resolve(applied);
      }
    }
  }

  private report(): void {
    if (this.silent || !this.call) return;
    const { appId, namespace, address, actorTypes, claim } = this.options;
    this.call.write({ report: { appId: claim?.appId ?? appId, namespace: claim?.namespace ?? namespace, address, actorTypes, instanceId: this.instanceId } });
  }

  private ack(call: ClientDuplexStream<skein.placement.v1.IHostMessage, Order>, operation: skein.placement.v1.Operation, version: string): void {
    if (!this.silent) call.write({ ack: { operation, version } });
  }

  private stopTimers(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.retry) clearTimeout(this.retry);
  }

  private client(address: string): Client {
    let client = this.clients.get(address);
    if (!client) {
      const creds = credentials.createSsl(Buffer.from(this.options.ca.certPem), Buffer.from(this.svid.keyPem), Buffer.from(this.svid.certPem), {
        checkServerIdentity: (_host, cert) => {
          const id = spiffeIdOfCertificate(cert);
          return id?.namespace === 'skein-system' && id.appId === 'placement' ? undefined : new Error(`not a placement server: ${cert.subjectaltname ?? 'no SAN'}`);
        },
      });
      // SNI carries a name, not the dialled address; placement is verified by its SPIFFE ID above.
      client = new Client(address, creds, { 'grpc.ssl_target_name_override': 'placement.skein.internal', 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 500 });
      this.clients.set(address, client);
    }
    return client;
  }
}

/** The members of `actorType`'s ring in an applied table, as addresses. */
export function ringOf(applied: AppliedTable | undefined, actorType: string): string[] {
  const ring = applied?.table.rings?.find((entry) => entry.actorType === actorType);
  return (ring?.members ?? []).map((member) => member.address ?? '');
}

/** The actor types of an applied table. */
export function typesOf(applied: AppliedTable | undefined): string[] {
  return (applied?.table.rings ?? []).map((ring) => ring.actorType ?? '');
}
