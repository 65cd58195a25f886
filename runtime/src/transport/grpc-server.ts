import { createServer as createTlsServer, type SecureContextOptions, type Server as TlsServer, type TlsOptions, type TLSSocket } from 'node:tls';
import { constants, createServer as createHttp2Server, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { GrpcStatus, type Logger, type SpiffeId } from '@skein/core';
import { encodeGrpcMessage, frameMessage, FramingError, MessageReader } from './grpc-frame.js';

const { HTTP2_HEADER_STATUS, HTTP2_HEADER_CONTENT_TYPE, HTTP2_HEADER_PATH, NGHTTP2_CANCEL } = constants;

/** Answers one call; it owns `call` until it finishes it. */
export type GrpcHandler = (call: GrpcServerCall) => void;

/** Options of a gRPC server on our own TLS listener. */
export interface GrpcServerOptions {
  tls: TlsOptions;
  host: string;
  port: number;
  log: Logger;
  /** Largest request message accepted. */
  maxMessageBytes: number;
  /** Calls one connection may have open at once (the HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS` we announce). */
  maxStreamsPerConnection: number;
  /**
   * Decides whether a handshaken connection may speak: returns the caller's verified identity, which every call on
   * the connection then carries, or undefined to drop it (having logged why).
   */
  accept: (socket: TLSSocket) => SpiffeId | undefined;
}

/**
 * gRPC over Node's own HTTP/2, served on a TLS listener we own: the handshake is ours to verify and log, certificates
 * rotate with `setSecureContext` without dropping connections, and the caller's identity is read from its certificate
 * once per connection. Calls are routed by path to handlers that read and write length-prefixed messages.
 */
export class GrpcServer {
  private readonly options: GrpcServerOptions;
  private readonly routes = new Map<string, GrpcHandler>();
  private readonly http2: Http2Server;
  private tls: TlsServer | undefined;
  private readonly identities = new WeakMap<ServerHttp2Session, SpiffeId>();
  /** The identity of the connection being handed to HTTP/2 right now (the hand-over is synchronous). */
  private admitting: SpiffeId | undefined;
  /** Open connections: peers keep theirs alive, and `close()` alone would wait for every one of them. */
  private readonly sockets = new Set<TLSSocket>();
  port = 0;

  constructor(options: GrpcServerOptions) {
    this.options = options;
    this.http2 = createHttp2Server({
      settings: { maxConcurrentStreams: options.maxStreamsPerConnection, maxHeaderListSize: 256 * 1024 },
      // nghttp2's default of 10 MB per session refuses streams under load with ENHANCE_YOUR_CALM; the number of
      // streams is bounded by the setting above instead.
      maxSessionMemory: 64,
    });
    this.http2.on('session', (session: ServerHttp2Session) => {
      if (this.admitting) this.identities.set(session, this.admitting);
      session.on('error', (error: Error) => options.log.debug('internal connection failed', { reason: error.message }));
    });
    this.http2.on('stream', (stream, headers) => this.dispatch(stream, headers));
  }

  /** Serves `path` (`/<package>.<Service>/<Method>`) with `handler`; call before `listen()`. */
  route(path: string, handler: GrpcHandler): void {
    this.routes.set(path, handler);
  }

  /** Listens; resolves with the bound port. */
  async listen(): Promise<number> {
    const { log } = this.options;
    const server = createTlsServer({ ALPNProtocols: ['h2'], ...this.options.tls }, (socket: TLSSocket) => this.admit(socket));
    server.on('tlsClientError', (error, socket) => log.warn('TLS handshake refused', { remote: socket.remoteAddress, reason: error.message }));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    this.tls = server;
    const address = server.address();
    this.port = typeof address === 'object' && address ? address.port : this.options.port;
    return this.port;
  }

  /** New handshakes present `context`; open connections keep theirs. */
  setSecureContext(context: SecureContextOptions): void {
    this.tls?.setSecureContext(context);
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => (this.tls ? this.tls.close(() => resolve()) : resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private admit(socket: TLSSocket): void {
    const caller = this.options.accept(socket);
    if (!caller) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.setNoDelay(true);
    this.admitting = caller;
    try {
      this.http2.emit('connection', socket);
    } finally {
      this.admitting = undefined;
    }
  }

  private dispatch(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const caller = this.identities.get(stream.session as ServerHttp2Session);
    const path = headers[HTTP2_HEADER_PATH];
    const handler = typeof path === 'string' ? this.routes.get(path) : undefined;
    const call = new GrpcServerCall(stream, headers, caller as SpiffeId, this.options.maxMessageBytes);
    if (!caller) {
      // Cannot happen for a connection admitted above; refused rather than served without an identity.
      call.finish(GrpcStatus.UNAVAILABLE, 'the connection has no verified identity');
      return;
    }
    const type = headers[HTTP2_HEADER_CONTENT_TYPE];
    if (typeof type !== 'string' || !type.startsWith('application/grpc')) {
      stream.respond({ [HTTP2_HEADER_STATUS]: 415 }, { endStream: true });
      return;
    }
    if (!handler) {
      call.finish(GrpcStatus.UNIMPLEMENTED, `${String(path)} is not served here`);
      return;
    }
    handler(call);
  }
}

/**
 * One call on the server: request messages in, response messages and the status out. Headers go out with the first
 * message, and a call that fails before answering sends a trailers-only response, so a small answer is one write.
 */
export class GrpcServerCall {
  /** The caller's identity, read from its certificate when its connection was admitted. */
  readonly caller: SpiffeId;
  private readonly stream: ServerHttp2Stream;
  private readonly headers: IncomingHttpHeaders;
  private readonly maxMessageBytes: number;
  private responded = false;
  private finished = false;
  private trailers: Record<string, string> | undefined;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, caller: SpiffeId, maxMessageBytes: number) {
    this.stream = stream;
    this.headers = headers;
    this.caller = caller;
    this.maxMessageBytes = maxMessageBytes;
    stream.on('error', () => undefined);
    stream.on('wantTrailers', () => stream.sendTrailers(this.trailers ?? { 'grpc-status': '0' }));
  }

  /** A request header (gRPC metadata), such as `traceparent`. */
  metadata(name: string): string | undefined {
    const value = this.headers[name];
    return typeof value === 'string' ? value : undefined;
  }

  /** True once the caller went away (cancelled, or the connection closed) or the call finished. */
  get closed(): boolean {
    return this.stream.closed || this.stream.destroyed;
  }

  /** Calls `listener` if the caller goes away before the call finished. */
  onCancel(listener: () => void): void {
    this.stream.once('close', () => {
      if (!this.finished) listener();
    });
  }

  /**
   * Delivers request messages to `onMessage` and calls `onEnd` once the caller finished sending (`error` set when the
   * request was not valid gRPC, in which case the call has already been failed).
   */
  receive(onMessage: (message: Buffer) => void, onEnd: (error?: Error) => void): void {
    const reader = new MessageReader(this.maxMessageBytes);
    let failed = false;
    this.stream.on('data', (chunk: Buffer) => {
      if (failed) return;
      try {
        reader.push(chunk, onMessage);
      } catch (error) {
        failed = true;
        const reason = error instanceof FramingError ? error.message : String(error);
        this.finish(error instanceof FramingError ? GrpcStatus.RESOURCE_EXHAUSTED : GrpcStatus.INTERNAL, reason);
        onEnd(error as Error);
      }
    });
    this.stream.once('end', () => {
      if (failed) return;
      if (reader.partial) {
        failed = true;
        this.finish(GrpcStatus.INTERNAL, 'the request ended in the middle of a message');
        onEnd(new FramingError('the request ended in the middle of a message'));
        return;
      }
      onEnd();
    });
  }

  /** Stops reading request messages until `resume()` (backpressure towards the caller). */
  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  /** Sends one response message; false when the stream's buffer is full (wait for `drained()`). */
  write(message: Uint8Array): boolean {
    if (this.finished || this.closed) return true;
    this.respond();
    return this.stream.write(frameMessage(message));
  }

  /** Resolves once the stream can take more, or is gone. */
  drained(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.stream.off('drain', done);
        this.stream.off('close', done);
        resolve();
      };
      this.stream.once('drain', done);
      this.stream.once('close', done);
    });
  }

  /**
   * Ends the call with `status` (0: OK) and `message`, plus `extra` trailers (the Skein error code). With `last`,
   * that message goes out in the same write as the end of the stream.
   */
  finish(status: number, message?: string, extra?: Record<string, string>, last?: Uint8Array): void {
    if (this.finished) return;
    this.finished = true;
    if (this.closed) return;
    const trailers: Record<string, string> = { 'grpc-status': String(status), ...(message ? { 'grpc-message': encodeGrpcMessage(message) } : {}), ...extra };
    if (!this.responded && last === undefined) {
      // Trailers-only: one HEADERS frame carries the status.
      this.responded = true;
      this.stream.respond({ [HTTP2_HEADER_STATUS]: 200, [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc', ...trailers }, { endStream: true });
      return;
    }
    this.trailers = trailers;
    this.respond();
    if (last === undefined) this.stream.end();
    else this.stream.end(frameMessage(last));
  }

  /** Resets the stream without a status (the caller is gone, or the answer broke off midway). */
  abort(): void {
    this.finished = true;
    if (!this.closed) this.stream.close(NGHTTP2_CANCEL);
  }

  private respond(): void {
    if (this.responded) return;
    this.responded = true;
    this.stream.respond({ [HTTP2_HEADER_STATUS]: 200, [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc' }, { waitForTrailers: true });
  }
}
