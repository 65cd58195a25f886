import { PassThrough } from 'node:stream';
import { Client, experimental, Metadata, status, type ClientReadableStream, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { invocationService, type skein } from '@skein/proto';
import { SkeinError, type ErrorCode, ERROR_CATALOGUE, logger, spiffeIdOfCertificate, formatSpiffeId } from '@skein/core';
import type { Discovery, InstanceRecord } from '../bus/discovery.js';
import type { WorkloadIdentity } from '../identity/workload.js';
import { ERROR_CODE_METADATA, ERROR_STATUS_METADATA } from './server.js';
import type { Call, CallResponse } from '../pipeline/pipeline.js';
import type { Tracing } from '../telemetry/tracing.js';
import type { McpSessionRegistry } from '../bus/mcp-sessions.js';

const log = logger('invoke');

/** One gRPC client per peer address, each verifying that the peer's SVID is the identity discovery promised. */
class PeerPool {
  private readonly clients = new Map<string, Client>();
  private readonly identity: WorkloadIdentity;

  constructor(identity: WorkloadIdentity) {
    this.identity = identity;
  }

  /**
   * A client for `peer` that accepts only `expected` — the identity the caller derives from the app it wants,
   * never the one a discovery record claims: a record is written by whoever holds a bus certificate, so trusting
   * its `spiffeId` would let any workload redirect another app's traffic to itself.
   */
  get(peer: InstanceRecord, expected: string): Client {
    const key = `${peer.address}|${expected}`;
    let client = this.clients.get(key);
    if (!client) {
      const channelCredentials = experimental.createCertificateProviderChannelCredentials(this.identity.caProvider, this.identity.identityProvider, {
        checkServerIdentity: (_host, cert) => {
          const id = spiffeIdOfCertificate(cert);
          if (!id || formatSpiffeId(id) !== expected) {
            log.warn('peer presented an unexpected identity', { address: peer.address, expected, got: id ? formatSpiffeId(id) : cert.subjectaltname });
            return new Error(`peer at ${peer.address} is not ${expected}`);
          }
          return undefined;
        },
      });
      client = new Client(peer.address, channelCredentials, {
        // SNI carries a name, not the dialled IP; the peer is verified by its SPIFFE ID above.
        'grpc.ssl_target_name_override': `${peer.appId}.skein.internal`,
        'grpc.keepalive_time_ms': 10_000,
        'grpc.enable_channelz': 0,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.max_receive_message_length': 8 * 1024 * 1024,
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 2_000,
      });
      this.clients.set(key, client);
    }
    return client;
  }

  drop(peer: InstanceRecord, expected: string): void {
    const key = `${peer.address}|${expected}`;
    this.clients.get(key)?.close();
    this.clients.delete(key);
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}

/** Errors that prove the request never reached the peer, so another instance may be tried. */
function neverReachedPeer(error: ServiceError): boolean {
  return error.code === status.UNAVAILABLE && !error.metadata?.get(ERROR_CODE_METADATA).length;
}

/** How long a call waits for a restarting app's replacement instance before failing. */
const REPLACEMENT_WAIT_MS = 3000;

/** Largest body sent in the single-message form; bigger or unknown-length bodies stream. */
export const UNARY_BODY_LIMIT = 64 * 1024;

/** The caller side of service invocation: resolve the App ID, pick an instance, call its sidecar over mTLS gRPC. */
export class Invoker {
  private readonly discovery: Discovery;
  private readonly pool: PeerPool;

  private readonly tracing: Tracing | undefined;

  private readonly sessions: McpSessionRegistry | undefined;

  private readonly identity: WorkloadIdentity;

  constructor(discovery: Discovery, identity: WorkloadIdentity, tracing?: Tracing, sessions?: McpSessionRegistry) {
    this.identity = identity;
    this.tracing = tracing;
    this.sessions = sessions;
    this.discovery = discovery;
    this.pool = new PeerPool(identity);
  }

  async invoke(request: Call): Promise<CallResponse> {
    const { signal } = request;
    const tried = new Set<string>();
    // A buffered body can be re-sent to another instance when the first one was unreachable.
    for (;;) {
      // Never seen: the watch may simply lag a fresh registration, so ask the store itself once.
      if (tried.size === 0 && !this.discovery.knows(request.target.namespace, request.target.appId)) await this.discovery.refresh(request.target.namespace, request.target.appId);
      // An app that had instances may be restarting: give a replacement a moment to register.
      const wait = this.discovery.knows(request.target.namespace, request.target.appId) ? REPLACEMENT_WAIT_MS : 0;
      const peer = (tried.size === 0 ? await this.sessionOwner(request) : undefined) ?? (await this.discovery.pickOrWait(request.target.namespace, request.target.appId, tried, wait));
      if (!peer) {
        if (tried.size === 0) {
          throw new SkeinError('ERR_DIRECT_INVOKE_NOT_FOUND', `failed to invoke, id: ${request.target.appId}, err: no instance of app "${request.target.appId}" is registered in namespace "${request.target.namespace}"`);
        }
        throw new SkeinError('ERR_DIRECT_INVOKE_PEER_UNAVAILABLE', `failed to invoke, id: ${request.target.appId}, err: none of its ${tried.size} instance(s) could be reached`);
      }
      tried.add(peer.instanceId);
      try {
        return await this.callPeer(peer, request, signal);
      } catch (error) {
        const serviceError = error as ServiceError;
        if (serviceError.code !== undefined && neverReachedPeer(serviceError) && Buffer.isBuffer(request.body)) {
          log.warn('instance unreachable; trying another', { appId: request.target.appId, address: peer.address, reason: serviceError.details });
          this.discovery.markUnhealthy(peer.instanceId);
          this.pool.drop(peer, this.expectedIdentity(request));
          continue;
        }
        throw toSkeinError(error, request.target.appId);
      }
    }
  }

  private callPeer(peer: InstanceRecord, request: Call, signal: AbortSignal): Promise<CallResponse> {
    const client = this.pool.get(peer, this.expectedIdentity(request));
    const head: skein.internal.v1.IRequestHead = {
      appId: request.target.appId,
      namespace: request.target.namespace,
      verb: request.verb,
      method: request.method,
      query: request.query,
      headers: request.headers.map(([name, value]) => ({ name, value })),
    };
    let call: ClientReadableStream<skein.internal.v1.IResponseFrame> | ClientDuplexStream<skein.internal.v1.IRequestFrame, skein.internal.v1.IResponseFrame>;
    if (Buffer.isBuffer(request.body)) {
      const method = invocationService.invoke;
      call = client.makeServerStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, { head, body: request.body }, this.metadataFor(request));
    } else {
      const method = invocationService.invokeStream;
      const duplex = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, this.metadataFor(request));
      duplex.write({ head });
      const source = request.body;
      source.on('data', (chunk: Buffer) => {
        if (!duplex.write({ data: chunk })) {
          source.pause();
          duplex.once('drain', () => source.resume());
        }
      });
      source.once('end', () => duplex.end());
      source.once('error', () => duplex.cancel());
      call = duplex;
    }
    const onAbort = (): void => call.cancel();
    signal.addEventListener('abort', onAbort, { once: true });
    return new Promise<CallResponse>((resolve, reject) => {
      let body: PassThrough | undefined;
      call.on('data', (frame: skein.internal.v1.IResponseFrame) => {
        if (!body) {
          const responseHead = frame.head;
          body = new PassThrough();
          resolve({
            status: responseHead?.status ?? 502,
            headers: (responseHead?.headers ?? []).map((header) => [String(header.name), String(header.value)]),
            body,
          });
        }
        if (frame.data && frame.data.length > 0 && !body.write(frame.data)) {
          call.pause();
          body.once('drain', () => call.resume());
        }
      });
      call.on('end', () => {
        signal.removeEventListener('abort', onAbort);
        body?.end();
      });
      call.on('error', (error: ServiceError) => {
        signal.removeEventListener('abort', onAbort);
        if (body) body.destroy(toSkeinError(error, request.target.appId));
        else reject(error);
      });
    });
  }

  /**
   * The instance holding the MCP session a request belongs to: a scaled MCP server keeps each session on the
   * replica that created it, so requests of that session must not be spread round-robin.
   */
  private async sessionOwner(request: Call): Promise<InstanceRecord | undefined> {
    const session = request.headers.find(([name]) => name === 'mcp-session-id')?.[1];
    if (!session || !this.sessions) return undefined;
    const owner = await this.sessions.ownerOf(request.target.namespace, request.target.appId, session);
    return owner ? this.discovery.instance(request.target.namespace, request.target.appId, owner) : undefined;
  }

  /** The only identity a peer serving `request`'s target may present: that app's, in our trust domain. */
  private expectedIdentity(request: Call): string {
    return formatSpiffeId({ trustDomain: this.identity.current.id.trustDomain, namespace: request.target.namespace, appId: request.target.appId });
  }

  /** gRPC metadata of a hop: the caller's trace context, when it traces. */
  private metadataFor(request: Call): Metadata {
    const metadata = new Metadata();
    if (request.trace && this.tracing) for (const [key, value] of Object.entries(this.tracing.inject(request.trace.context))) metadata.set(key, value);
    return metadata;
  }

  close(): void {
    this.pool.close();
  }
}

function toSkeinError(error: unknown, appId: string): SkeinError {
  if (error instanceof SkeinError) return error;
  const serviceError = error as ServiceError;
  const code = serviceError.metadata?.get(ERROR_CODE_METADATA)[0];
  if (typeof code === 'string' && code in ERROR_CATALOGUE) {
    const status = Number(serviceError.metadata?.get(ERROR_STATUS_METADATA)[0]);
    return new SkeinError(code as ErrorCode, serviceError.details, { cause: error, ...(Number.isInteger(status) && status > 0 ? { httpStatus: status } : {}) });
  }
  if (serviceError.code === status.CANCELLED) return new SkeinError('ERR_DIRECT_INVOKE', `call to ${appId} was cancelled`, { cause: error });
  if (serviceError.code === status.UNAVAILABLE) {
    return new SkeinError('ERR_DIRECT_INVOKE_PEER_UNAVAILABLE', `failed to invoke, id: ${appId}, err: its sidecar is unreachable: ${serviceError.details}`, { cause: error });
  }
  return new SkeinError('ERR_DIRECT_INVOKE', `failed to invoke, id: ${appId}, err: ${serviceError.details ?? String(error)}`, { cause: error });
}
