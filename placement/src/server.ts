import type { Server as TlsServer } from 'node:tls';
import { Metadata, Server, type ServerDuplexStream } from '@grpc/grpc-js';
import { placementService, skein } from '@skein/proto';
import { serveGrpcOverTls, SkeinError, asSkeinError, formatSpiffeId, logger, spiffeIdOfCertificate, type SpiffeId } from '@skein/core';
import type { HostChannel, PlacementOrder } from './dissemination.js';

const log = logger('placement');

/** Trailer carrying the Skein error code of a refused or ended stream. */
export const ERROR_CODE_METADATA = 'skein-error-code';
/** Trailer naming the leader's address when a follower refuses a stream. */
export const LEADER_METADATA = 'skein-placement-leader';

/** TLS material of the placement server: its certificate, and the bundle that verifies client SVIDs. */
export interface ServingTls {
  certPem: string;
  keyPem: string;
  trustBundlePem: string;
  trustDomain: string;
}

/** A verified stream from a sidecar, handed to the service. */
export interface HostStream extends HostChannel {
  /** The caller's identity, read from its client certificate. */
  readonly peer: SpiffeId;
  /** Every message from the sidecar. */
  onMessage(listener: (message: skein.placement.v1.HostMessage) => void): void;
  /** Called once when the stream ends, whatever the reason. */
  onClose(listener: () => void): void;
  /** Ends the stream with `error` and, when given, trailers such as the leader's address. */
  refuse(error: SkeinError, trailers?: Record<string, string>): void;
}

/**
 * Orders are encoded once per round and the bytes shared by every host: with a thousand hosts, encoding the
 * table per stream would dominate a round.
 */
function sharedEncoding(): typeof placementService {
  const encoded = new WeakMap<object, Buffer>();
  const base = placementService.reportHost;
  return {
    reportHost: {
      ...base,
      responseSerialize: (order: PlacementOrder): Buffer => {
        let bytes = encoded.get(order);
        if (!bytes) {
          bytes = base.responseSerialize(order);
          encoded.set(order, bytes);
        }
        return bytes;
      },
    },
  };
}

/**
 * The gRPC edge of placement: a TLS server that demands a client SVID from the trust bundle, hands verified
 * connections to grpc-js, and turns each ReportHost call into a `HostStream`. It holds no policy.
 */
export class PlacementServer {
  private readonly grpc = new Server({ 'grpc.max_send_message_length': 64 * 1024 * 1024 });
  private readonly tls: ServingTls;
  private readonly onStream: (stream: HostStream) => void;
  private tlsServer: TlsServer | undefined;
  private nextId = 1;
  port = 0;

  constructor(tls: ServingTls, onStream: (stream: HostStream) => void) {
    this.tls = tls;
    this.onStream = onStream;
    this.grpc.addService(sharedEncoding(), {
      reportHost: (call: ServerDuplexStream<skein.placement.v1.HostMessage, PlacementOrder>) => this.accept(call),
    });
  }

  /** Listens on `host:port`; resolves with the bound port. */
  async listen(host: string, port: number): Promise<number> {
    const { certPem, keyPem, trustBundlePem } = this.tls;
    const served = await serveGrpcOverTls(this.grpc, {
      tls: { key: keyPem, cert: certPem, ca: trustBundlePem, requestCert: true, rejectUnauthorized: true },
      host,
      port,
      log,
      accept: (socket) => {
        if (spiffeIdOfCertificate(socket.getPeerCertificate())) return true;
        log.warn('refused a peer whose certificate carries no Skein SPIFFE ID', { remote: socket.remoteAddress });
        return false;
      },
    });
    this.tlsServer = served.server;
    this.port = served.port;
    return this.port;
  }

  private accept(call: ServerDuplexStream<skein.placement.v1.HostMessage, PlacementOrder>): void {
    const id = this.nextId++;
    let ended = false;
    const closeListeners: Array<() => void> = [];
    const finish = (): void => {
      if (ended) return;
      ended = true;
      for (const listener of closeListeners) listener();
    };
    const refuse = (error: SkeinError, trailers: Record<string, string> = {}): void => {
      if (ended) return;
      const metadata = new Metadata();
      metadata.set(ERROR_CODE_METADATA, error.code);
      for (const [key, value] of Object.entries(trailers)) metadata.set(key, value);
      finish();
      call.emit('error', { code: error.grpcStatus, details: `${error.code}: ${error.message}`, metadata });
    };
    call.on('end', () => {
      // The sidecar half-closed: it is leaving. Complete the call so its client sees OK.
      if (!ended) {
        finish();
        call.end();
      }
    });
    call.on('error', () => finish());
    call.on('cancelled', () => finish());
    call.on('close', () => finish());

    let peer: SpiffeId;
    try {
      peer = this.callerOf(call);
    } catch (error) {
      refuse(asSkeinError(error));
      return;
    }
    const stream: HostStream = {
      id,
      peer,
      send: (order) => {
        if (!ended) call.write(order);
      },
      drop: (error) => refuse(error),
      refuse,
      onMessage: (listener) => call.on('data', listener),
      onClose: (listener) => {
        if (ended) listener();
        else closeListeners.push(listener);
      },
    };
    this.onStream(stream);
  }

  private callerOf(call: Pick<ServerDuplexStream<unknown, unknown>, 'getAuthContext'>): SpiffeId {
    const cert = call.getAuthContext().sslPeerCertificate;
    const id = cert ? spiffeIdOfCertificate(cert) : undefined;
    if (!id) throw new SkeinError('ERR_UNAUTHENTICATED', 'the caller presented no verified SPIFFE identity');
    if (id.trustDomain !== this.tls.trustDomain) throw new SkeinError('ERR_PERMISSION_DENIED', `caller ${formatSpiffeId(id)} is from another trust domain`);
    return id;
  }

  /** Stops listening and ends every open stream. */
  async close(): Promise<void> {
    this.grpc.forceShutdown();
    await new Promise<void>((resolve) => (this.tlsServer ? this.tlsServer.close(() => resolve()) : resolve()));
  }
}
