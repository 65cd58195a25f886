import { X509Certificate } from 'node:crypto';

/** A workload identity, as carried in an SVID's URI SAN: `spiffe://<trustDomain>/ns/<namespace>/<appId>`. */
export interface SpiffeId {
  trustDomain: string;
  namespace: string;
  appId: string;
}

// No dots: Dapr addresses `<appId>.<namespace>`, so a dot always starts the namespace.
const APP_ID = /^[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$/;
const NAMESPACE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;

/** True when `appId` is a valid App ID. */
export function isValidAppId(appId: string): boolean {
  return APP_ID.test(appId);
}

/** True when `namespace` is a valid namespace (DNS label). */
export function isValidNamespace(namespace: string): boolean {
  return NAMESPACE.test(namespace);
}

/** True when `trustDomain` is a valid SPIFFE trust domain. */
export function isValidTrustDomain(trustDomain: string): boolean {
  return TRUST_DOMAIN.test(trustDomain);
}

/** The URI form of an identity. */
export function formatSpiffeId(id: SpiffeId): string {
  return `spiffe://${id.trustDomain}/ns/${id.namespace}/${id.appId}`;
}

/** Parses a SPIFFE URI of the Skein shape; returns undefined for anything else (callers deny on undefined). */
export function parseSpiffeId(uri: string): SpiffeId | undefined {
  const match = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/([^/]+)$/.exec(uri);
  if (!match) return undefined;
  const [, trustDomain, namespace, appId] = match as unknown as [string, string, string, string];
  if (!isValidTrustDomain(trustDomain) || !isValidNamespace(namespace) || !isValidAppId(appId)) return undefined;
  return { trustDomain, namespace, appId };
}

/** The URI SANs of a certificate as Node reports them (`URI:spiffe://..., DNS:...`). */
export function uriSans(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  return subjectAltName
    .split(/,\s*/)
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice(4));
}

/** The identity in a certificate: exactly one SPIFFE URI SAN of the Skein shape, else undefined. */
export function spiffeIdOfCertificate(cert: X509Certificate | { subjectaltname?: string }): SpiffeId | undefined {
  const san = cert instanceof X509Certificate ? cert.subjectAltName : cert.subjectaltname;
  const uris = uriSans(san).filter((uri) => uri.startsWith('spiffe://'));
  if (uris.length !== 1) return undefined;
  return parseSpiffeId(uris[0] as string);
}
