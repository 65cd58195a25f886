import { connect, type NatsConnection } from '@nats-io/transport-node';
import { SkeinError } from '../errors.js';
import { logger } from '../logger.js';

const log = logger('bus');

/** TLS material a sidecar presents to NATS: its SVID, and the bundle that verifies the server. */
export interface BusTls {
  certPem: string;
  keyPem: string;
  caPem: string;
}

/** A NATS connection whose client certificate can be rotated: later reconnects present the newest SVID. */
export interface Bus {
  nc: NatsConnection;
  rotate(tls: BusTls): void;
}

/** Connects to NATS with mutual TLS, reconnecting forever; the server must verify our SVID. */
export async function connectBus(servers: string, tls: BusTls, name: string): Promise<Bus> {
  // The client reads this object on every (re)connect, so rotating the SVID means mutating it in place.
  const tlsOptions = { cert: tls.certPem, key: tls.keyPem, ca: tls.caPem };
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: servers.split(',').map((server) => server.trim()),
      name,
      tls: tlsOptions,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      waitOnFirstConnect: false,
      timeout: 5000,
      // Without this the client builds two errors with stack traces for every request (each JetStream publish is
      // one), in case it fails: about a tenth of a busy sidecar's CPU. Skein's errors name the operation instead.
      noAsyncTraces: true,
    });
  } catch (error) {
    throw new SkeinError('ERR_INTERNAL', `cannot connect to NATS at ${servers}: ${(error as Error).message}`, { cause: error });
  }
  void (async () => {
    for await (const event of nc.status()) {
      if (event.type === 'disconnect' || event.type === 'reconnect' || event.type === 'error') {
        log.info(`NATS ${event.type}`, { server: 'server' in event ? event.server : undefined });
      }
    }
  })();
  return {
    nc,
    rotate(next: BusTls) {
      tlsOptions.cert = next.certPem;
      tlsOptions.key = next.keyPem;
      tlsOptions.ca = next.caPem;
    },
  };
}
