import { PassThrough } from 'node:stream';
import { skein } from '@skein/proto';
import { SkeinError, type ErrorCode, ERROR_CATALOGUE, GrpcStatus, logger, type Logger, spiffeIdOfCertificate, formatSpiffeId } from '@skein/core';
import { ChannelOverloadedError, ClientCall, GrpcCallError, GrpcChannel, type CallListener } from '../transport/grpc-channel.js';
import type { Discovery, InstanceRecord } from '../bus/discovery.js';
import type { WorkloadIdentity } from '../identity/workload.js';
import { ERROR_CODE_METADATA, ERROR_STATUS_METADATA, INVOKE_PATH, INVOKE_STREAM_PATH } from './server.js';
import type { Call, CallResponse } from '../pipeline/pipeline.js';
import type { Tracing } from '../telemetry/tracing.js';
import type { McpSessionRegistry } from '../bus/mcp-sessions.js';

const log = logger('invoke');
/** The generated codecs of `skein.internal.v1` (invocation.proto). */
const messages = skein.internal.v1;

/** Limits of the connections to one peer sidecar: what may be in flight, and what may wait. */
export const PEER_LIMITS = {
  /** Calls one HTTP/2 connection carries at once (the peer announces 1,000; fewer keeps each session's memory small). */
  maxStreamsPerConnection: 256,
  /** Connections to one peer; together they bound the calls in flight to it. */
  maxConnections: 4,
  /** Calls that may wait for a free stream when all are busy, and for how long, before they are answered 503. */
  maxQueued: 2048,
  queueTimeoutMs: 2000,
  maxMessageBytes: 8 * 1024 * 1024,
} as const;

/** Seconds a caller refused for overload is told to wait (`Retry-After`). */
export const OVERLOAD_RETRY_AFTER_SECONDS = 1;

/**
 * Channels to peer sidecars, one per address and expected identity, each verifying that the peer's SVID is the
 * identity the caller derives from the app it wants — never the one a discovery record claims: a record is written
 * by whoever holds a bus certificate, so trusting its `spiffeId` would let any workload redirect another app's
 * traffic to itself. New connections use the current SVID, so a rotation needs no reconnect.
 */
export class PeerChannels {
  private readonly channels = new Map<string, GrpcChannel>();
  private readonly identity: WorkloadIdentity;
  private readonly log: Logger;
  private readonly what: string;

  constructor(identity: WorkloadIdentity, log: Logger, what = 'peer') {
    this.identity = identity;
    this.log = log;
    this.what = what;
  }

  get(address: string, appId: string, expected: string): GrpcChannel {
    const key = `${address}|${expected}`;
    let channel = this.channels.get(key);
    if (!channel) {
      channel = new GrpcChannel({
        address,
        // SNI carries a name, not the dialled IP; the peer is verified by its SPIFFE ID.
        servername: `${appId}.skein.internal`,
        credentials: () => {
          const svid = this.identity.current;
          return { key: svid.keyPem, cert: svid.certPem, ca: svid.bundlePem };
        },
        verifyPeer: (cert) => {
          const id = spiffeIdOfCertificate(cert);
          if (id && formatSpiffeId(id) === expected) return undefined;
          this.log.warn(`${this.what} presented an unexpected identity`, { address, expected, got: id ? formatSpiffeId(id) : cert.subjectaltname });
          return `${this.what} at ${address} is not ${expected}`;
        },
        log: this.log,
        ...PEER_LIMITS,
      });
      this.channels.set(key, channel);
    }
    return channel;
  }

  drop(address: string, expected: string): void {
    const key = `${address}|${expected}`;
    this.channels.get(key)?.close();
    this.channels.delete(key);
  }

  close(): void {
    for (const channel of this.channels.values()) channel.close();
    this.channels.clear();
  }
}

/** How long a call waits for a restarting app's replacement instance before failing. */
const REPLACEMENT_WAIT_MS = 3000;

/** Largest body sent in the single-message form; bigger or unknown-length bodies stream. */
export const UNARY_BODY_LIMIT = 64 * 1024;

/** The caller side of service invocation: resolve the App ID, pick an instance, call its sidecar over mTLS gRPC. */
export class Invoker {
  private readonly discovery: Discovery;
  private readonly peers: PeerChannels;

  private readonly tracing: Tracing | undefined;

  private readonly sessions: McpSessionRegistry | undefined;

  private readonly identity: WorkloadIdentity;

  constructor(discovery: Discovery, identity: WorkloadIdentity, tracing?: Tracing, sessions?: McpSessionRegistry) {
    this.identity = identity;
    this.tracing = tracing;
    this.sessions = sessions;
    this.discovery = discovery;
    this.peers = new PeerChannels(identity, log);
  }

  async invoke(request: Call): Promise<CallResponse> {
    const { signal } = request;
    const tried = new Set<string>();
    let overloaded: ChannelOverloadedError | undefined;
    // A buffered body can be re-sent to another instance when the first one was unreachable or full.
    for (;;) {
      // Never seen: the watch may simply lag a fresh registration, so ask the store itself once.
      if (tried.size === 0 && !this.discovery.knows(request.target.namespace, request.target.appId)) await this.discovery.refresh(request.target.namespace, request.target.appId);
      // An app that had instances may be restarting: give a replacement a moment to register.
      const wait = overloaded ? 0 : this.discovery.knows(request.target.namespace, request.target.appId) ? REPLACEMENT_WAIT_MS : 0;
      const peer = (tried.size === 0 ? await this.sessionOwner(request) : undefined) ?? (await this.discovery.pickOrWait(request.target.namespace, request.target.appId, tried, wait));
      if (!peer) {
        if (tried.size === 0 && this.discovery.knows(request.target.namespace, request.target.appId)) {
          // Its records are held but none is live: the app exists and is down (or restarting), not unknown.
          throw new SkeinError('ERR_DIRECT_INVOKE_PEER_UNAVAILABLE', `failed to invoke, id: ${request.target.appId}, err: no instance of app "${request.target.appId}" has been heard from recently; it may be restarting`);
        }
        if (tried.size === 0) {
          throw new SkeinError('ERR_DIRECT_INVOKE_NOT_FOUND', `failed to invoke, id: ${request.target.appId}, err: no instance of app "${request.target.appId}" is registered in namespace "${request.target.namespace}"`);
        }
        if (overloaded) {
          throw new SkeinError('ERR_DIRECT_INVOKE_PEER_UNAVAILABLE', `failed to invoke, id: ${request.target.appId}, err: its sidecar is at its limit of calls in flight (${overloaded.message}); retry later`, { cause: overloaded });
        }
        throw new SkeinError('ERR_DIRECT_INVOKE_PEER_UNAVAILABLE', `failed to invoke, id: ${request.target.appId}, err: none of its ${tried.size} instance(s) could be reached`);
      }
      tried.add(peer.instanceId);
      try {
        return await this.callPeer(peer, request, signal);
      } catch (error) {
        const retryable = Buffer.isBuffer(request.body) && !signal.aborted;
        if (error instanceof ChannelOverloadedError) {
          // Full, not broken: another instance may have room, and this one is not marked unhealthy.
          overloaded = error;
          if (retryable) continue;
          throw new SkeinError('ERR_DIRECT_INVOKE_PEER_UNAVAILABLE', `failed to invoke, id: ${request.target.appId}, err: its sidecar is at its limit of calls in flight (${error.message}); retry later`, { cause: error });
        }
        if (error instanceof GrpcCallError && error.unsent && retryable) {
          log.warn('instance unreachable; trying another', { appId: request.target.appId, address: peer.address, reason: error.details });
          this.discovery.markUnhealthy(peer.instanceId);
          this.peers.drop(peer.address, this.expectedIdentity(request));
          continue;
        }
        throw toSkeinError(error, request.target.appId);
      }
    }
  }

  private async callPeer(peer: InstanceRecord, request: Call, signal: AbortSignal): Promise<CallResponse> {
    const channel = this.peers.get(peer.address, request.target.appId, this.expectedIdentity(request));
    const head: skein.internal.v1.IRequestHead = {
      appId: request.target.appId,
      namespace: request.target.namespace,
      verb: request.verb,
      method: request.method,
      query: request.query,
      headers: request.headers.map(([name, value]) => ({ name, value })),
    };
    const streamed = !Buffer.isBuffer(request.body);
    let resolveHead!: (response: CallResponse) => void;
    let rejectHead!: (error: unknown) => void;
    const answered = new Promise<CallResponse>((resolve, reject) => {
      resolveHead = resolve;
      rejectHead = reject;
    });
    let body: PassThrough | undefined;
    // `call` is assigned below, before any of these callbacks can run: they fire on I/O.
    const onAbort = (): void => call.cancel(`the caller of ${request.target.appId} went away`);
    const listener: CallListener = {
      message: (bytes) => {
        const frame = messages.ResponseFrame.decode(bytes);
        if (!body) {
          const responseHead = frame.head;
          body = new PassThrough();
          resolveHead({
            status: responseHead?.status ?? 502,
            headers: (responseHead?.headers ?? []).map((header) => [String(header.name), String(header.value)]),
            body,
          });
        }
        if (frame.data && frame.data.length > 0 && !body.write(frame.data)) {
          call.pause();
          body.once('drain', () => call.resume());
        }
      },
      end: (error) => {
        signal.removeEventListener('abort', onAbort);
        if (!error) {
          if (body) body.end();
          else rejectHead(new SkeinError('ERR_DIRECT_INVOKE', `failed to invoke, id: ${request.target.appId}, err: its sidecar answered without a response head`));
          return;
        }
        if (body) body.destroy(toSkeinError(error, request.target.appId));
        else rejectHead(error);
      },
    };
    const metadata = this.metadataFor(request);
    const path = streamed ? INVOKE_STREAM_PATH : INVOKE_PATH;
    const started = channel.start(path, listener, metadata ? { metadata } : {});
    const call = started instanceof ClientCall ? started : await started;
    if (signal.aborted) call.cancel(`the caller of ${request.target.appId} went away`);
    else signal.addEventListener('abort', onAbort, { once: true });
    if (Buffer.isBuffer(request.body)) {
      // Head and body in one message, one write.
      call.end(messages.InvokeRequest.encode({ head, body: request.body }).finish());
    } else {
      call.write(messages.RequestFrame.encode({ head }).finish());
      const source = request.body;
      source.on('data', (chunk: Buffer) => {
        if (!call.write(messages.RequestFrame.encode({ data: chunk }).finish())) {
          source.pause();
          void call.drained().then(() => source.resume());
        }
      });
      source.once('end', () => call.end());
      source.once('error', () => call.cancel('the request body failed'));
    }
    return answered;
  }

  /**
   * The instance holding the MCP session a request belongs to: a scaled MCP server keeps each session on the
   * replica that created it, so requests of that session must not be spread round-robin.
   */
  private async sessionOwner(request: Call): Promise<InstanceRecord | undefined> {
    if (!this.sessions) return undefined;
    const session = request.headers.find(([name]) => name === 'mcp-session-id')?.[1];
    if (!session) return undefined;
    const owner = await this.sessions.ownerOf(request.target.namespace, request.target.appId, session);
    return owner ? this.discovery.instance(request.target.namespace, request.target.appId, owner) : undefined;
  }

  /** The only identity a peer serving `request`'s target may present: that app's, in our trust domain. */
  private expectedIdentity(request: Call): string {
    return formatSpiffeId({ trustDomain: this.identity.current.id.trustDomain, namespace: request.target.namespace, appId: request.target.appId });
  }

  /** gRPC metadata of a hop: the caller's trace context, when it traces. */
  private metadataFor(request: Call): Record<string, string> | undefined {
    if (!request.trace || !this.tracing) return undefined;
    const metadata: Record<string, string> = {};
    for (const [key, value] of Object.entries(this.tracing.inject(request.trace.context))) if (typeof value === 'string') metadata[key] = value;
    return metadata;
  }

  close(): void {
    this.peers.close();
  }
}

/** A failed hop as the catalogue's error: the callee's own code when it sent one, else what the transport saw. */
export function toSkeinError(error: unknown, appId: string): SkeinError {
  if (error instanceof SkeinError) return error;
  if (!(error instanceof GrpcCallError)) return new SkeinError('ERR_DIRECT_INVOKE', `failed to invoke, id: ${appId}, err: ${String(error)}`, { cause: error });
  const code = error.trailers[ERROR_CODE_METADATA];
  if (code !== undefined && code in ERROR_CATALOGUE) {
    const status = Number(error.trailers[ERROR_STATUS_METADATA]);
    return new SkeinError(code as ErrorCode, error.details, { cause: error, ...(Number.isInteger(status) && status > 0 ? { httpStatus: status } : {}) });
  }
  if (error.code === GrpcStatus.CANCELLED) return new SkeinError('ERR_DIRECT_INVOKE', `call to ${appId} was cancelled`, { cause: error });
  if (error.code === GrpcStatus.UNAVAILABLE) {
    return new SkeinError('ERR_DIRECT_INVOKE_PEER_UNAVAILABLE', `failed to invoke, id: ${appId}, err: its sidecar is unreachable: ${error.details}`, { cause: error });
  }
  return new SkeinError('ERR_DIRECT_INVOKE', `failed to invoke, id: ${appId}, err: ${error.details}`, { cause: error });
}
