import { connect as connectTls, type PeerCertificate, type TLSSocket } from 'node:tls';
import { connect as connectHttp2, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { GrpcStatus, type Logger } from '@skein/core';
import { decodeGrpcMessage, frameMessage, FramingError, MessageReader } from './grpc-frame.js';

const { HTTP2_HEADER_METHOD, HTTP2_HEADER_PATH, HTTP2_HEADER_AUTHORITY, HTTP2_HEADER_SCHEME, HTTP2_HEADER_CONTENT_TYPE, HTTP2_HEADER_STATUS, HTTP2_HEADER_TE, NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = constants;

/** How a call failed: its gRPC status, message and trailers, and whether any of it can have reached the peer. */
export class GrpcCallError extends Error {
  override readonly name = 'GrpcCallError';
  readonly code: number;
  readonly details: string;
  readonly trailers: Readonly<Record<string, string>>;
  /** True when no byte of the call left this process (connection refused, handshake refused, stream refused). */
  readonly unsent: boolean;

  constructor(code: number, details: string, options: { trailers?: Record<string, string>; unsent?: boolean; cause?: unknown } = {}) {
    super(details, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = details;
    this.trailers = options.trailers ?? {};
    this.unsent = options.unsent ?? false;
  }
}

/** The channel has as many calls in flight and waiting as it may: the call was not sent. */
export class ChannelOverloadedError extends Error {
  override readonly name = 'ChannelOverloadedError';
}

/** TLS material for new connections, read at each connect so that rotated certificates are used from then on. */
export interface ChannelCredentials {
  key: string;
  cert: string;
  ca: string;
}

/** Options of a channel to one peer. */
export interface GrpcChannelOptions {
  /** `host:port`, IPv6 hosts in brackets. */
  address: string;
  /** Sent as SNI and `:authority`; the peer is verified by `verifyPeer`, never by this name. */
  servername: string;
  credentials: () => ChannelCredentials;
  /** Checks the verified certificate chain's leaf; returns why it is not the expected peer, or undefined. */
  verifyPeer: (cert: PeerCertificate) => string | undefined;
  log: Logger;
  /** Calls one connection carries at once; the channel opens another connection beyond that. */
  maxStreamsPerConnection: number;
  maxConnections: number;
  /** Calls that may wait for a free stream when every connection is full, and for how long. */
  maxQueued: number;
  queueTimeoutMs: number;
  maxMessageBytes: number;
}

/** What a call reports back: each response message, then the end (an error for any status but OK). */
export interface CallListener {
  message(message: Buffer): void;
  end(error: GrpcCallError | undefined, trailers: Readonly<Record<string, string>>): void;
}

/** Options of one call. */
export interface CallOptions {
  /** gRPC metadata sent as request headers (lower-case names). */
  metadata?: Record<string, string>;
  /** Absolute deadline (ms since the epoch); the call is cancelled with DEADLINE_EXCEEDED when it passes. */
  deadline?: number;
}

/** One HTTP/2 connection of the channel and the calls it carries now. */
interface Connection {
  session: ClientHttp2Session;
  active: number;
  /** Set once the TLS handshake and the peer's check succeeded. */
  connected: boolean;
  /** No new calls: the connection is closing, or the peer sent GOAWAY. */
  draining: boolean;
  /** Why the connection failed, once it did. */
  failure?: string;
  /** Bytes the TLS socket under the session has written: tells whether a call's frames ever left this process. */
  bytesWritten: () => number;
}

interface Waiter {
  admit(connection: Connection): void;
  fail(error: Error): void;
  timer: NodeJS.Timeout;
}

/** Stream ids are 31 bits and odd on the client side: renew a connection well before they run out. */
const STREAM_ID_RENEWAL = 2 ** 30;

/**
 * gRPC calls to one peer sidecar over Node's own HTTP/2 with mutual TLS. A connection carries up to
 * `maxStreamsPerConnection` calls; beyond that the channel opens more connections, up to `maxConnections`; beyond
 * that calls wait briefly in a bounded queue, and whatever the queue cannot hold is refused at once with
 * `ChannelOverloadedError` — overload is answered per call, never by failing the calls already in flight.
 */
export class GrpcChannel {
  private readonly options: GrpcChannelOptions;
  private readonly connections: Connection[] = [];
  private readonly queue: Waiter[] = [];
  private closed = false;

  constructor(options: GrpcChannelOptions) {
    this.options = options;
  }

  /** Calls in flight on this channel now, and calls waiting for a stream. */
  get load(): { active: number; queued: number; connections: number } {
    return { active: this.connections.reduce((sum, connection) => sum + connection.active, 0), queued: this.queue.length, connections: this.connections.length };
  }

  /**
   * Starts a call to `path`. Resolves once the call holds a stream (at once, unless the channel is full); rejects
   * with `ChannelOverloadedError` when it cannot get one in time.
   */
  start(path: string, listener: CallListener, options: CallOptions = {}): Promise<ClientCall> | ClientCall {
    const connection = this.pick();
    if (connection) return this.open(connection, path, listener, options);
    if (this.closed) return Promise.reject(new GrpcCallError(GrpcStatus.UNAVAILABLE, 'the channel is closed', { unsent: true }));
    if (this.queue.length >= this.options.maxQueued) return Promise.reject(this.overloaded());
    return new Promise<ClientCall>((resolve, reject) => {
      const waiter: Waiter = {
        admit: (admitted) => {
          clearTimeout(waiter.timer);
          resolve(this.open(admitted, path, listener, options));
        },
        fail: (error) => {
          clearTimeout(waiter.timer);
          reject(error);
        },
        timer: setTimeout(() => {
          const at = this.queue.indexOf(waiter);
          if (at >= 0) this.queue.splice(at, 1);
          reject(this.overloaded());
        }, this.options.queueTimeoutMs),
      };
      this.queue.push(waiter);
    });
  }

  /** Closes every connection; calls in flight are cancelled. */
  close(): void {
    this.closed = true;
    for (const waiter of this.queue.splice(0)) waiter.fail(new GrpcCallError(GrpcStatus.UNAVAILABLE, 'the channel was closed', { unsent: true }));
    for (const connection of this.connections.splice(0)) connection.session.destroy();
  }

  private overloaded(): ChannelOverloadedError {
    const { maxConnections, maxStreamsPerConnection, maxQueued } = this.options;
    return new ChannelOverloadedError(`${this.options.address} has ${maxConnections * maxStreamsPerConnection} calls in flight and ${maxQueued} waiting, its limit`);
  }

  /** A connection with a free stream, opening one when all are full and the limit allows; undefined when none. */
  private pick(): Connection | undefined {
    if (this.closed) return undefined;
    const limit = this.options.maxStreamsPerConnection;
    for (const connection of this.connections) {
      if (!connection.draining && connection.active < limit) return connection;
    }
    if (this.connections.filter((connection) => !connection.draining).length >= this.options.maxConnections) return undefined;
    return this.connect();
  }

  private connect(): Connection {
    const { address, servername, log } = this.options;
    const { host, port } = splitAddress(address);
    const tls = this.options.credentials();
    let tlsSocket: TLSSocket | undefined;
    const session = connectHttp2(`https://${servername}`, {
      // The TLS connection is ours: TLS 1.3 only, verified by SPIFFE ID rather than by host name.
      createConnection: () => {
        const socket = connectTls({
          host,
          port,
          servername,
          key: tls.key,
          cert: tls.cert,
          ca: tls.ca,
          ALPNProtocols: ['h2'],
          minVersion: 'TLSv1.3',
          checkServerIdentity: (_name, cert) => {
            const reason = this.options.verifyPeer(cert);
            return reason === undefined ? undefined : new Error(reason);
          },
        });
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 10_000);
        tlsSocket = socket;
        return socket;
      },
      settings: { enablePush: false },
      maxSessionMemory: 64,
    });
    const connection: Connection = { session, active: 0, connected: false, draining: false, bytesWritten: () => tlsSocket?.bytesWritten ?? 0 };
    this.connections.push(connection);
    session.once('connect', () => {
      connection.connected = true;
    });
    session.on('error', (error: Error) => {
      connection.failure = error.message;
      log.debug('internal connection failed', { address, reason: error.message });
    });
    session.once('goaway', () => this.retire(connection));
    session.once('close', () => {
      this.retire(connection);
      // Waiters queued for this channel may now get a fresh connection.
      this.admitWaiting();
    });
    session.unref();
    return connection;
  }

  /** Takes `connection` out of the rotation; its calls in flight finish on it. */
  private retire(connection: Connection): void {
    connection.draining = true;
    const at = this.connections.indexOf(connection);
    if (at >= 0) this.connections.splice(at, 1);
    if (connection.active === 0 && !connection.session.closed) connection.session.close();
  }

  private open(connection: Connection, path: string, listener: CallListener, options: CallOptions): ClientCall {
    connection.active++;
    const headers: Record<string, string> = {
      [HTTP2_HEADER_METHOD]: 'POST',
      [HTTP2_HEADER_SCHEME]: 'https',
      [HTTP2_HEADER_AUTHORITY]: this.options.servername,
      [HTTP2_HEADER_PATH]: path,
      [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
      [HTTP2_HEADER_TE]: 'trailers',
      ...options.metadata,
    };
    let timeout: number | undefined;
    if (options.deadline !== undefined) {
      timeout = Math.max(1, options.deadline - Date.now());
      headers['grpc-timeout'] = `${timeout}m`;
    }
    // Node's HTTP/2 writes a new stream's frames on a later turn of the loop: if the connection dies first (a peer
    // killed while it sat idle, its end not yet read), the byte count does not move and the call provably never left.
    const bytesBefore = connection.bytesWritten();
    let stream: ClientHttp2Stream;
    try {
      stream = connection.session.request(headers);
    } catch (error) {
      // The session went away between the pick and now (or ran out of stream ids): nothing was sent.
      connection.active--;
      this.retire(connection);
      const failed = new ClientCall(undefined, listener, this.options.maxMessageBytes, connection, this.options.address, bytesBefore, () => undefined);
      failed.fail(new GrpcCallError(GrpcStatus.UNAVAILABLE, `cannot start a call to ${this.options.address}: ${(error as Error).message}`, { unsent: true, cause: error }));
      return failed;
    }
    if ((connection.session.state.nextStreamID ?? 0) > STREAM_ID_RENEWAL) this.retire(connection);
    const call = new ClientCall(stream, listener, this.options.maxMessageBytes, connection, this.options.address, bytesBefore, () => {
      connection.active--;
      if (connection.draining && connection.active === 0 && !connection.session.closed) connection.session.close();
      this.admitWaiting();
    });
    if (timeout !== undefined) call.expireAfter(timeout);
    return call;
  }

  /** Hands free streams to waiting calls, oldest first. */
  private admitWaiting(): void {
    while (this.queue.length > 0) {
      const connection = this.pick();
      if (!connection) return;
      (this.queue.shift() as Waiter).admit(connection);
    }
  }
}

/**
 * One call on the client: write request messages, read response messages through the listener. Flow control is
 * HTTP/2's: `write` says when to wait for `drained()`, and `pause()` stops reading responses.
 */
export class ClientCall {
  private readonly stream: ClientHttp2Stream | undefined;
  private readonly listener: CallListener;
  private readonly released: () => void;
  private readonly connection: Connection;
  private readonly address: string;
  private ended = false;
  private timer: NodeJS.Timeout | undefined;
  private localCancel: GrpcCallError | undefined;
  /** What the connection had written when this call's stream was opened. */
  private readonly bytesBefore: number;

  constructor(stream: ClientHttp2Stream | undefined, listener: CallListener, maxMessageBytes: number, connection: Connection, address: string, bytesBefore: number, released: () => void) {
    this.stream = stream;
    this.bytesBefore = bytesBefore;
    this.listener = listener;
    this.released = released;
    this.connection = connection;
    this.address = address;
    if (!stream) return;
    const reader = new MessageReader(maxMessageBytes);
    let head: IncomingHttpHeaders | undefined;
    let trailers: IncomingHttpHeaders | undefined;
    stream.once('response', (headers) => {
      head = headers;
    });
    stream.on('data', (chunk: Buffer) => {
      if (this.ended) return;
      try {
        reader.push(chunk, (message) => listener.message(message));
      } catch (error) {
        this.cancelWith(new GrpcCallError(GrpcStatus.INTERNAL, `${this.address} sent an invalid response: ${(error as FramingError).message}`));
      }
    });
    stream.once('trailers', (headers: IncomingHttpHeaders) => {
      trailers = headers;
    });
    stream.on('error', () => undefined);
    stream.once('close', () => {
      if (this.timer) clearTimeout(this.timer);
      this.released();
      this.finish(this.outcome(stream, head, trailers, reader.partial));
    });
  }

  /** Sends one request message; false when the stream's buffer is full (wait for `drained()`). */
  write(message: Uint8Array): boolean {
    if (!this.stream || this.stream.destroyed) return true;
    return this.stream.write(frameMessage(message));
  }

  /** Sends the last request message (if any) and ends the request. */
  end(message?: Uint8Array): void {
    if (!this.stream || this.stream.destroyed) return;
    if (message === undefined) this.stream.end();
    else this.stream.end(frameMessage(message));
  }

  drained(): Promise<void> {
    const stream = this.stream;
    if (!stream || stream.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        stream.off('drain', done);
        stream.off('close', done);
        resolve();
      };
      stream.once('drain', done);
      stream.once('close', done);
    });
  }

  pause(): void {
    this.stream?.pause();
  }

  resume(): void {
    this.stream?.resume();
  }

  /** Cancels the call; the listener hears CANCELLED unless it already heard the end. */
  cancel(reason = 'the call was cancelled'): void {
    this.cancelWith(new GrpcCallError(GrpcStatus.CANCELLED, reason));
  }

  /** Fails a call that never got a stream. */
  fail(error: GrpcCallError): void {
    queueMicrotask(() => this.finish(error));
  }

  expireAfter(ms: number): void {
    this.timer = setTimeout(() => this.cancelWith(new GrpcCallError(GrpcStatus.DEADLINE_EXCEEDED, `deadline of ${ms} ms exceeded`)), ms);
  }

  private cancelWith(error: GrpcCallError): void {
    if (this.ended || this.localCancel) return;
    this.localCancel = error;
    if (this.stream && !this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
  }

  private finish(error: GrpcCallError | undefined, trailers: Readonly<Record<string, string>> = error?.trailers ?? {}): void {
    if (this.ended) return;
    this.ended = true;
    this.listener.end(error, trailers);
  }

  /** The call's status from what arrived: trailers (or a trailers-only head), else how the stream closed. */
  private outcome(stream: ClientHttp2Stream, head: IncomingHttpHeaders | undefined, trailers: IncomingHttpHeaders | undefined, partial: boolean): GrpcCallError | undefined {
    if (this.localCancel) return this.localCancel;
    const source = trailers ?? (head && head['grpc-status'] !== undefined ? head : undefined);
    if (source) {
      const fields = stringFields(source);
      const code = Number(fields['grpc-status']);
      if (code === GrpcStatus.OK) {
        return partial ? new GrpcCallError(GrpcStatus.INTERNAL, `${this.address} ended its answer in the middle of a message`) : undefined;
      }
      return new GrpcCallError(Number.isInteger(code) ? code : GrpcStatus.UNKNOWN, decodeGrpcMessage(fields['grpc-message'] ?? ''), { trailers: fields });
    }
    if (head && Number(head[HTTP2_HEADER_STATUS]) !== 200) return new GrpcCallError(GrpcStatus.UNKNOWN, `${this.address} answered HTTP ${String(head[HTTP2_HEADER_STATUS])}`);
    // No status at all: the stream was reset, or the connection failed. Refused streams, calls on a connection that
    // never came up and calls none of whose bytes were written provably did not reach the peer's application.
    const { connected, failure } = this.connection;
    const refused = stream.rstCode === NGHTTP2_REFUSED_STREAM || !connected || this.connection.bytesWritten() === this.bytesBefore;
    const what = connected ? `closed during the call (HTTP/2 code ${stream.rstCode ?? 'none'}${failure ? `, ${failure}` : ''})` : `could not be established${failure ? `: ${failure}` : ''}`;
    return new GrpcCallError(GrpcStatus.UNAVAILABLE, `the connection to ${this.address} ${what}`, { unsent: refused && head === undefined });
  }
}

function stringFields(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value === 'string') out[name] = value;
    else if (Array.isArray(value) && value[0] !== undefined) out[name] = value[0];
  }
  return out;
}

/** Host and port of `host:port` or `[v6]:port`. */
export function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at);
  return { host: host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host, port: Number(address.slice(at + 1)) };
}
