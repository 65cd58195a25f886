import { readFileSync } from 'node:fs';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createCsr, generateKeyPem, signSvid, trustDomainOfCa, type KeyPair } from '../identity/ca.js';
import { caPaths, readCa } from '../identity/home.js';
import type { SpiffeId } from '../identity/spiffe.js';
import type { BusTls } from './connection.js';
import { SkeinError } from '../errors.js';

/** Namespace of control-plane and operator identities. */
export const OPERATOR_NAMESPACE = 'skein-system';

/** Lifetime of the certificate an operator command mints for itself: it only lives as long as the command. */
const OPERATOR_CERT_TTL_MS = 3_600_000;


/**
 * A client certificate for an operator command (`skein traces`, `skein up` setting up streams), signed by a
 * development CA, with the SPIFFE ID `spiffe://<trustDomain>/ns/skein-system/<appId>`.
 */
export function mintOperatorTls(ca: KeyPair, appId: string): BusTls {
  const trustDomain = trustDomainOfCa(ca.certPem);
  if (!trustDomain) throw new SkeinError('ERR_CERTIFICATE', 'the CA carries no spiffe://<trust domain> URI SAN');
  const id: SpiffeId = { trustDomain, namespace: OPERATOR_NAMESPACE, appId };
  const { privateKeyPem } = generateKeyPem();
  return { certPem: signSvid(ca, createCsr(privateKeyPem, appId), id, OPERATOR_CERT_TTL_MS), keyPem: privateKeyPem, caPem: ca.certPem };
}

/** Where an operator command gets its TLS material: files issued elsewhere, or the CA of a Skein home. */
export interface OperatorTlsSource {
  home: string;
  certFile?: string;
  keyFile?: string;
  trustAnchorsFile?: string;
  /** Who the minted certificate says the command is. */
  appId: string;
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new SkeinError('ERR_CERTIFICATE', `cannot read the ${what} at ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** The client certificate, key and trust bundle an operator command presents to NATS. */
export function operatorTls(source: OperatorTlsSource): BusTls {
  if ((source.certFile === undefined) !== (source.keyFile === undefined)) {
    throw new SkeinError('ERR_CERTIFICATE', 'give both --cert-file and --key-file, or neither (then a certificate is minted from the CA in the Skein home)');
  }
  if (source.certFile !== undefined && source.keyFile !== undefined) {
    const trustFile = source.trustAnchorsFile ?? caPaths(source.home).bundle;
    return { certPem: readPem(source.certFile, 'certificate'), keyPem: readPem(source.keyFile, 'private key'), caPem: readPem(trustFile, 'trust anchors') };
  }
  const minted = mintOperatorTls(readCa(source.home), source.appId);
  return source.trustAnchorsFile === undefined ? minted : { ...minted, caPem: readPem(source.trustAnchorsFile, 'trust anchors') };
}

/**
 * Connects an operator command to NATS with mutual TLS. The first connect fails fast with a clear error;
 * `reconnect` keeps a long-running command (`--follow`) alive across server restarts.
 */
export async function connectOperatorBus(servers: string, tls: BusTls, name: string, reconnect = false): Promise<NatsConnection> {
  try {
    return await connect({
      servers: servers.split(',').map((server) => server.trim()),
      name,
      tls: { cert: tls.certPem, key: tls.keyPem, ca: tls.caPem },
      reconnect,
      maxReconnectAttempts: reconnect ? -1 : 0,
      reconnectTimeWait: 500,
      timeout: 5000,
    });
  } catch (error) {
    throw new SkeinError('ERR_INTERNAL', `cannot connect to NATS at ${servers}: ${(error as Error).message}`, { cause: error });
  }
}
