import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { serveGrpcOverTls, ERROR_CATALOGUE, SkeinError, asSkeinError, logger, type HeaderList, formatSpiffeId, spiffeIdOfCertificate, type SpiffeId } from '@skein/core';
import { Metadata, Server, status, type ServerDuplexStream, type ServerWritableStream, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { invocationService, type skein } from '@skein/proto';
import { PassThrough } from 'node:stream';
import type { Handler, Call, CallResponse } from '../pipeline/pipeline.js';
import { validateMethodPath } from './method-path.js';
import type { Svid } from '../identity/workload.js';

const log = logger('invoke');

/** Verbs a call may carry. */
const HTTP_VERBS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE']);

/** Trailer key carrying a Skein error code from callee to caller. */
export const ERROR_CODE_METADATA = 'skein-error-code';
/** Trailer key carrying the HTTP status when it differs from the catalogue's (Dapr's 403 ERR_DIRECT_INVOKE). */
export const ERROR_STATUS_METADATA = 'skein-error-status';

/** Options of the internal (sidecar-to-sidecar) server. */
export interface InternalServerOptions {
  appId: string;
  namespace: string;
  host: string;
  port: number;
  /** The inbound pipeline: policy stages in front of the app channel. */
  inbound: Handler;
}

type AnyCall = ServerWritableStream<skein.internal.v1.IInvokeRequest, skein.internal.v1.IResponseFrame> | ServerDuplexStream<skein.internal.v1.IRequestFrame, skein.internal.v1.IResponseFrame>;

/**
 * The callee side of invocation: a TLS server that demands a client SVID from our trust bundle, hands verified
 * connections to grpc-js, reads each caller's identity from its certificate and runs the inbound pipeline, which
 * ends at the app.
 */
export class InternalServer {
  private readonly options: InternalServerOptions;
  private readonly inbound: Handler;
  /** Verified identity of each live connection, by the peer name grpc-js reports for its calls. */
  private readonly peers = new Map<string, SpiffeId>();
  // Channelz keeps per-call bookkeeping nothing here reads.
  private readonly grpc = new Server({ 'grpc.max_receive_message_length': 8 * 1024 * 1024, 'grpc.enable_channelz': 0 });
  private tls: TlsServer | undefined;
  /** Open connections: peers keep theirs alive, and `close()` alone would wait for every one of them. */
  private readonly sockets = new Set<TLSSocket>();
  private trustDomain = '';
  port = 0;

  constructor(options: InternalServerOptions) {
    this.options = options;
    this.inbound = options.inbound;
    this.grpc.addService(invocationService, {
      invoke: (call: ServerWritableStream<skein.internal.v1.IInvokeRequest, skein.internal.v1.IResponseFrame>) => void this.handle(call, call.request.head, call.request.body ?? undefined),
      invokeStream: (call: ServerDuplexStream<skein.internal.v1.IRequestFrame, skein.internal.v1.IResponseFrame>) => {
        call.once('data', (first: skein.internal.v1.IRequestFrame) => void this.handle(call, first.head, first.data ?? undefined));
      },
    });
  }

  /**
   * Serves another internal service (the actor calls) on the same mTLS port; call before `start()`. Connections are
   * verified here; the service checks each caller's identity itself.
   */
  addService(definition: ServiceDefinition, implementation: UntypedServiceImplementation): void {
    this.grpc.addService(definition, implementation);
  }

  /** Listens with `svid`; resolves with the bound port. */
  async start(svid: Svid): Promise<number> {
    this.trustDomain = svid.id.trustDomain;
    // Verification is done here rather than by `rejectUnauthorized`, which drops the socket without saying why:
    // every refused peer is logged with the exact reason (unknown CA, expired, no certificate).
    // TLS 1.3 only: both ends are sidecars, and without renegotiation a connection's identity can never change,
    // so it is read from the certificate once per connection instead of once per call.
    const served = await serveGrpcOverTls(this.grpc, {
      tls: { ...secureContextOf(svid), requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' },
      host: this.options.host,
      port: this.options.port,
      log,
      accept: (socket) => this.accept(socket),
    });
    this.tls = served.server;
    this.port = served.port;
    return this.port;
  }

  /** Admits a verified peer with a Skein SPIFFE ID, remembering its identity for the connection's calls. */
  private accept(socket: TLSSocket): boolean {
    if (!socket.authorized) {
      log.warn('TLS handshake refused', { remote: socket.remoteAddress, reason: describeAuthorizationError(socket.authorizationError) });
      return false;
    }
    const peer = spiffeIdOfCertificate(socket.getPeerCertificate());
    if (!peer) {
      log.warn('refused a peer whose certificate carries no Skein SPIFFE ID', { remote: socket.remoteAddress });
      return false;
    }
    const key = `${socket.remoteAddress ?? ''}:${socket.remotePort ?? ''}`;
    this.peers.set(key, peer);
    this.sockets.add(socket);
    socket.once('close', () => {
      this.peers.delete(key);
      this.sockets.delete(socket);
    });
    return true;
  }

  /** New handshakes present the rotated SVID; open connections keep theirs. */
  rotate(svid: Svid): void {
    this.trustDomain = svid.id.trustDomain;
    this.tls?.setSecureContext(secureContextOf(svid));
  }

  private async handle(call: AnyCall, head: skein.internal.v1.IRequestHead | null | undefined, firstBody: Uint8Array | undefined): Promise<void> {
    const abort = new AbortController();
    call.once('cancelled', () => abort.abort());
    try {
      const caller = this.callerOf(call);
      if (!head) throw new SkeinError('ERR_MALFORMED_REQUEST', 'invocation without a request head');
      const { appId, namespace } = this.options;
      if (head.appId !== appId || head.namespace !== namespace) {
        throw new SkeinError('ERR_DIRECT_INVOKE_NOT_FOUND', `this sidecar serves ${appId} in ${namespace}, not ${head.appId ?? ''} in ${head.namespace ?? ''}`);
      }
      const headers: HeaderList = (head.headers ?? []).map((header) => [String(header.name).toLowerCase(), String(header.value)]);
      const body = isDuplex(call) ? streamedBody(call, firstBody) : Buffer.from(firstBody ?? []);
      // Re-checked here, not trusted from the caller's sidecar: a peer with its own gRPC client could send a
      // lower-case verb (which policy would not recognise but the app would) or a path the API would refuse.
      const verb = (head.verb ?? 'GET').toUpperCase();
      if (!HTTP_VERBS.has(verb)) throw new SkeinError('ERR_MALFORMED_REQUEST', `"${(head.verb ?? '').slice(0, 32)}" is not an HTTP verb`);
      const method = validateMethodPath(head.method ?? '');
      const request: Call = {
        caller,
        target: { appId, namespace },
        verb,
        method,
        query: head.query ?? '',
        headers,
        body,
        decisions: [],
        signal: abort.signal,
        ...traceCarrierOfMetadata(call.metadata),
      };
      log.debug('inbound call', { caller: formatSpiffeId(caller), verb: request.verb, method: request.method });
      await this.relay(call, await this.inbound(request));
    } catch (error) {
      if (abort.signal.aborted) {
        log.debug('caller cancelled the invocation', { method: head?.method });
        return;
      }
      const skeinError = asSkeinError(error);
      if (skeinError.code !== 'ERR_DIRECT_INVOKE_APP_UNAVAILABLE' && skeinError.httpStatus >= 500) log.warn('invocation failed', { code: skeinError.code, reason: skeinError.message });
      const metadata = new Metadata();
      metadata.set(ERROR_CODE_METADATA, skeinError.code);
      if (skeinError.httpStatus !== ERROR_CATALOGUE[skeinError.code].http) metadata.set(ERROR_STATUS_METADATA, String(skeinError.httpStatus));
      call.emit('error', { code: skeinError.grpcStatus ?? status.INTERNAL, details: skeinError.message, metadata });
    }
  }

  private callerOf(call: Pick<AnyCall, 'getAuthContext' | 'getPeer'>): SpiffeId {
    // grpc-js names the peer `<remoteAddress>:<remotePort>` of the very socket verified above.
    const id = this.peers.get(call.getPeer()) ?? certificateIdentity(call);
    if (!id) throw new SkeinError('ERR_UNAUTHENTICATED', 'the caller presented no verified SPIFFE identity');
    if (id.trustDomain !== this.trustDomain) throw new SkeinError('ERR_PERMISSION_DENIED', `caller ${formatSpiffeId(id)} is from another trust domain`);
    return id;
  }

  /** Streams the response back: small bodies in the head frame, everything else as it comes, with backpressure. */
  private async relay(call: AnyCall, response: CallResponse): Promise<void> {
    const head: skein.internal.v1.IResponseHead = { status: response.status, headers: response.headers.map(([name, value]) => ({ name, value })) };
    let first: skein.internal.v1.IResponseFrame | undefined = { head };
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      if (first) {
        first.data = chunk;
        if (!call.write(first)) await waitForDrain(call);
        first = undefined;
        continue;
      }
      if (!call.write({ data: chunk })) await waitForDrain(call);
    }
    if (first) call.write(first);
    call.end();
  }

  async stop(): Promise<void> {
    this.grpc.forceShutdown();
    const closed = new Promise<void>((resolve) => (this.tls ? this.tls.close(() => resolve()) : resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

/** The caller's W3C trace context from the hop's gRPC metadata, for the callee's server span. */
function traceCarrierOfMetadata(metadata: Metadata): { traceCarrier?: Record<string, string> } {
  let carrier: Record<string, string> | undefined;
  for (const key of ['traceparent', 'tracestate']) {
    const value = metadata.get(key)[0];
    if (typeof value === 'string') (carrier ??= {})[key] = value;
  }
  return carrier ? { traceCarrier: carrier } : {};
}

/** A request body streamed in frames after the head, delivered with backpressure. */
function streamedBody(call: ServerDuplexStream<skein.internal.v1.IRequestFrame, skein.internal.v1.IResponseFrame>, first: Uint8Array | undefined): PassThrough {
  const body = new PassThrough();
  if (first && first.length > 0) body.write(first);
  call.on('data', (frame: skein.internal.v1.IRequestFrame) => {
    if (frame.data && frame.data.length > 0 && !body.write(frame.data)) {
      call.pause();
      body.once('drain', () => call.resume());
    }
  });
  call.once('end', () => body.end());
  call.once('cancelled', () => body.destroy());
  return body;
}

/** The identity in the call's peer certificate (the slow path: it rebuilds the certificate object). */
function certificateIdentity(call: Pick<AnyCall, 'getAuthContext'>): SpiffeId | undefined {
  const cert = call.getAuthContext().sslPeerCertificate;
  return cert ? spiffeIdOfCertificate(cert) : undefined;
}

/** Streaming-request calls have no `request` property; unary-request ones carry the whole request there. */
function isDuplex(call: AnyCall): call is ServerDuplexStream<skein.internal.v1.IRequestFrame, skein.internal.v1.IResponseFrame> {
  return !('request' in call) || (call as { request?: unknown }).request === undefined;
}

function waitForDrain(call: AnyCall): Promise<void> {
  return new Promise((resolve) => call.once('drain', () => resolve()));
}

const AUTHORIZATION_ERRORS: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the certificate is not signed by this trust domain\'s CA',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the certificate is not signed by this trust domain\'s CA',
  SELF_SIGNED_CERT_IN_CHAIN: 'the certificate chains to a CA this trust domain does not trust',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the certificate is self-signed',
  CERT_HAS_EXPIRED: 'the certificate has expired',
  CERT_NOT_YET_VALID: 'the certificate is not valid yet',
  CERT_SIGNATURE_FAILURE: 'the certificate signature is invalid',
};

/** A refused peer's OpenSSL verification code, with what it means. */
function describeAuthorizationError(error: Error | string | undefined): string {
  if (error === undefined || error === null) return 'the peer presented no client certificate';
  const code = String(error instanceof Error ? ((error as NodeJS.ErrnoException).code ?? error.message) : error);
  return `${code}: ${AUTHORIZATION_ERRORS[code] ?? 'certificate verification failed'}`;
}

/** TLS material of an SVID, trusting only its bundle. */
export function secureContextOf(svid: Svid): { key: string; cert: string; ca: string } {
  return { key: svid.keyPem, cert: svid.certPem, ca: svid.bundlePem };
}
