import type { TLSSocket } from 'node:tls';
import { ERROR_CATALOGUE, SkeinError, asSkeinError, logger, type HeaderList, formatSpiffeId, spiffeIdOfCertificate, type SpiffeId } from '@skein/core';
import { skein } from '@skein/proto';
import { PassThrough } from 'node:stream';
import { GrpcServer, type GrpcHandler, type GrpcServerCall } from '../transport/grpc-server.js';
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

/** gRPC paths of `skein.internal.v1.Invocation` (invocation.proto). */
export const INVOKE_PATH = '/skein.internal.v1.Invocation/Invoke';
export const INVOKE_STREAM_PATH = '/skein.internal.v1.Invocation/InvokeStream';

/** The generated codecs of `skein.internal.v1`. */
const messages = skein.internal.v1;

/** Calls one connection from a peer may have open at once. */
const MAX_STREAMS_PER_CONNECTION = 1000;
/** Largest message a peer may send (a request head with its body, or one frame of a streamed body). */
const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

/** Ends `call` with `error` as the catalogue's gRPC status, its Skein code (and any HTTP status override) in trailers. */
export function failCall(call: GrpcServerCall, error: SkeinError): void {
  const trailers: Record<string, string> = { [ERROR_CODE_METADATA]: error.code };
  if (error.httpStatus !== ERROR_CATALOGUE[error.code].http) trailers[ERROR_STATUS_METADATA] = String(error.httpStatus);
  call.finish(error.grpcStatus, error.message, trailers);
}

/** Options of the internal (sidecar-to-sidecar) server. */
export interface InternalServerOptions {
  appId: string;
  namespace: string;
  host: string;
  port: number;
  /** The inbound pipeline: policy stages in front of the app channel. */
  inbound: Handler;
}

/**
 * The callee side of invocation: a TLS server that demands a client SVID from our trust bundle, reads each caller's
 * identity from its certificate once per connection, serves gRPC over Node's HTTP/2 and runs the inbound pipeline,
 * which ends at the app.
 */
export class InternalServer {
  private readonly options: InternalServerOptions;
  private readonly inbound: Handler;
  private readonly routes = new Map<string, GrpcHandler>();
  private grpc: GrpcServer | undefined;
  private trustDomain = '';
  port = 0;

  constructor(options: InternalServerOptions) {
    this.options = options;
    this.inbound = options.inbound;
    this.routes.set(INVOKE_PATH, (call) => this.serveInvoke(call));
    this.routes.set(INVOKE_STREAM_PATH, (call) => this.serveInvokeStream(call));
  }

  /**
   * Serves another internal method (the actor calls) on the same mTLS port; call before `start()`. Connections are
   * verified here; the handler checks each caller's identity (`call.caller`) itself.
   */
  route(path: string, handler: GrpcHandler): void {
    this.routes.set(path, handler);
  }

  /** `Invoke`: the whole request in one message. */
  private serveInvoke(call: GrpcServerCall): void {
    let request: skein.internal.v1.InvokeRequest | undefined;
    call.receive(
      (message) => {
        request ??= messages.InvokeRequest.decode(message);
      },
      (error) => {
        if (!error) void this.handle(call, request?.head, request?.body, undefined);
      },
    );
  }

  /** `InvokeStream`: the head in the first frame, the body streaming in the frames after it. */
  private serveInvokeStream(call: GrpcServerCall): void {
    let body: PassThrough | undefined;
    call.receive(
      (message) => {
        const frame = messages.RequestFrame.decode(message);
        if (!body) {
          body = new PassThrough();
          if (frame.data && frame.data.length > 0) body.write(frame.data);
          void this.handle(call, frame.head, undefined, body);
          return;
        }
        if (frame.data && frame.data.length > 0 && !body.write(frame.data)) {
          call.pause();
          body.once('drain', () => call.resume());
        }
      },
      (error) => {
        if (error) body?.destroy(error);
        else if (body) body.end();
        else failCall(call, new SkeinError('ERR_MALFORMED_REQUEST', 'invocation without a request head'));
      },
    );
    call.onCancel(() => body?.destroy());
  }

  /** Listens with `svid`; resolves with the bound port. */
  async start(svid: Svid): Promise<number> {
    this.trustDomain = svid.id.trustDomain;
    // Verification is done here rather than by `rejectUnauthorized`, which drops the socket without saying why:
    // every refused peer is logged with the exact reason (unknown CA, expired, no certificate).
    // TLS 1.3 only: both ends are sidecars, and without renegotiation a connection's identity can never change,
    // so it is read from the certificate once per connection instead of once per call.
    const grpc = new GrpcServer({
      tls: { ...secureContextOf(svid), requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' },
      host: this.options.host,
      port: this.options.port,
      log,
      maxMessageBytes: MAX_MESSAGE_BYTES,
      maxStreamsPerConnection: MAX_STREAMS_PER_CONNECTION,
      accept: (socket) => this.accept(socket),
    });
    for (const [path, handler] of this.routes) grpc.route(path, handler);
    this.grpc = grpc;
    this.port = await grpc.listen();
    return this.port;
  }

  /** Admits a verified peer with a Skein SPIFFE ID: its identity, which the connection's calls carry. */
  private accept(socket: TLSSocket): SpiffeId | undefined {
    if (!socket.authorized) {
      // Without a certificate OpenSSL reports UNABLE_TO_GET_ISSUER_CERT, which would send an operator hunting for a CA.
      const presented = socket.getPeerCertificate().raw !== undefined;
      log.warn('TLS handshake refused', { remote: socket.remoteAddress, reason: presented ? describeAuthorizationError(socket.authorizationError) : 'the peer presented no client certificate' });
      return undefined;
    }
    const peer = spiffeIdOfCertificate(socket.getPeerCertificate());
    if (!peer) {
      log.warn('refused a peer whose certificate carries no Skein SPIFFE ID', { remote: socket.remoteAddress });
      return undefined;
    }
    return peer;
  }

  /** New handshakes present the rotated SVID; open connections keep theirs. */
  rotate(svid: Svid): void {
    this.trustDomain = svid.id.trustDomain;
    this.grpc?.setSecureContext(secureContextOf(svid));
  }

  private async handle(call: GrpcServerCall, head: skein.internal.v1.IRequestHead | null | undefined, wholeBody: Uint8Array | undefined, streamedBody: PassThrough | undefined): Promise<void> {
    const abort = new AbortController();
    call.onCancel(() => abort.abort());
    try {
      const caller = this.callerOf(call);
      if (!head) throw new SkeinError('ERR_MALFORMED_REQUEST', 'invocation without a request head');
      const { appId, namespace } = this.options;
      if (head.appId !== appId || head.namespace !== namespace) {
        throw new SkeinError('ERR_DIRECT_INVOKE_NOT_FOUND', `this sidecar serves ${appId} in ${namespace}, not ${head.appId ?? ''} in ${head.namespace ?? ''}`);
      }
      const headers: HeaderList = (head.headers ?? []).map((header) => [String(header.name).toLowerCase(), String(header.value)]);
      const body = streamedBody ?? (wholeBody ? Buffer.from(wholeBody.buffer, wholeBody.byteOffset, wholeBody.byteLength) : Buffer.alloc(0));
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
        ...traceCarrierOfMetadata(call),
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
      failCall(call, skeinError);
    }
  }

  private callerOf(call: GrpcServerCall): SpiffeId {
    // Read from the certificate once, when the connection was admitted; never from anything the caller sends.
    const id = call.caller;
    if (!id) throw new SkeinError('ERR_UNAUTHENTICATED', 'the caller presented no verified SPIFFE identity');
    if (id.trustDomain !== this.trustDomain) throw new SkeinError('ERR_PERMISSION_DENIED', `caller ${formatSpiffeId(id)} is from another trust domain`);
    return id;
  }

  /**
   * Streams the response back: small bodies in the head frame, everything else as it comes, with backpressure (SSE
   * event by event). The chunk that completes a body of known length goes out with the end of the call: one write.
   * Read with events rather than `for await`, which costs an async iterator and a promise per chunk.
   */
  private relay(call: GrpcServerCall, response: CallResponse): Promise<void> {
    const head: skein.internal.v1.IResponseHead = { status: response.status, headers: response.headers.map(([name, value]) => ({ name, value })) };
    const length = response.headers.find(([name]) => name === 'content-length')?.[1];
    let remaining = length === undefined ? -1 : Number(length);
    let frame: skein.internal.v1.IResponseFrame | undefined = { head };
    let last: Uint8Array | undefined;
    const body = response.body;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      body.on('data', (chunk: Buffer) => {
        if (call.closed) {
          body.destroy();
          return;
        }
        const next: skein.internal.v1.IResponseFrame = frame ?? {};
        next.data = chunk;
        frame = undefined;
        if (remaining >= 0) remaining -= chunk.length;
        if (remaining === 0) {
          last = messages.ResponseFrame.encode(next).finish();
          return;
        }
        if (!call.write(messages.ResponseFrame.encode(next).finish())) {
          body.pause();
          void call.drained().then(() => body.resume());
        }
      });
      body.once('end', () => {
        settled = true;
        call.finish(0, undefined, undefined, last ?? (frame ? messages.ResponseFrame.encode(frame).finish() : undefined));
        resolve();
      });
      body.once('error', (error) => {
        settled = true;
        reject(error);
      });
      body.once('close', () => {
        if (!settled) reject(new SkeinError('ERR_DIRECT_INVOKE', 'the response ended before it was complete'));
      });
    });
  }

  async stop(): Promise<void> {
    await this.grpc?.close();
  }
}

/** The caller's W3C trace context from the hop's gRPC metadata, for the callee's server span. */
function traceCarrierOfMetadata(call: GrpcServerCall): { traceCarrier?: Record<string, string> } {
  let carrier: Record<string, string> | undefined;
  for (const key of ['traceparent', 'tracestate']) {
    const value = call.metadata(key);
    if (value !== undefined) (carrier ??= {})[key] = value;
  }
  return carrier ? { traceCarrier: carrier } : {};
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
