import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SkeinError, formatSpiffeId, issueServerCertificate, localAddresses, readCa, spiffeIdOfCertificate, trustDomainOfCa, type SpiffeId } from '@skein/core';
import type { ServingTls } from './server.js';

/** The namespace of control-plane identities. */
export const CONTROL_PLANE_NAMESPACE = 'skein-system';

/** The SPIFFE ID placement's certificate carries; sidecars verify it instead of a host name. */
export function placementSpiffeId(trustDomain: string): SpiffeId {
  return { trustDomain, namespace: CONTROL_PLANE_NAMESPACE, appId: 'placement' };
}

/** Lifetime of a certificate placement mints for itself from a development CA. */
const MINTED_TTL_MS = 365 * 24 * 3_600_000;


/**
 * Mints placement's certificate from the CA in a Skein home folder (development). It serves gRPC and
 * authenticates placement to NATS; `hosts` are the names and addresses it is reached at.
 */
export function mintFromHome(home: string, hosts: string[]): ServingTls {
  const ca = readCa(home);
  const trustDomain = trustDomainOfCa(ca.certPem);
  if (!trustDomain) throw new SkeinError('ERR_CERTIFICATE', `the CA in ${home} carries no spiffe://<trust domain> URI SAN`);
  const serving = issueServerCertificate(ca, 'skein-placement', [...localAddresses(), ...hosts], MINTED_TTL_MS, placementSpiffeId(trustDomain));
  return { certPem: serving.certPem, keyPem: serving.keyPem, trustBundlePem: ca.certPem, trustDomain };
}

/** Reads a certificate, key and trust bundle issued elsewhere (production); the certificate must be placement's. */
export function readFromFiles(files: { certFile: string; keyFile: string; trustAnchorsFile: string }): ServingTls {
  const read = (path: string, what: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw new SkeinError('ERR_CERTIFICATE', `cannot read the ${what} at ${path}: ${(error as Error).message}`, { cause: error });
    }
  };
  const certPem = read(files.certFile, 'certificate');
  const keyPem = read(files.keyFile, 'private key');
  const trustBundlePem = read(files.trustAnchorsFile, 'trust anchors');
  const id = spiffeIdOfCertificate(new X509Certificate(certPem));
  if (!id || id.namespace !== CONTROL_PLANE_NAMESPACE || id.appId !== 'placement') {
    const expected = formatSpiffeId(placementSpiffeId(id?.trustDomain ?? '<trust domain>'));
    throw new SkeinError('ERR_CERTIFICATE', `${files.certFile} must carry the SPIFFE ID ${expected}, not ${id ? formatSpiffeId(id) : 'none'}`);
  }
  return { certPem, keyPem, trustBundlePem, trustDomain: id.trustDomain };
}
