import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import forge from 'node-forge';
import { SkeinError } from '../errors.js';
import { formatSpiffeId, type SpiffeId } from './spiffe.js';

/** A certificate and its private key, both PEM. */
export interface KeyPair {
  certPem: string;
  keyPem: string;
}

/** Clock skew tolerated: certificates are valid from a minute before they are issued. */
const BACKDATE_MS = 60_000;

/** A fresh RSA-2048 key pair, PEM (generated natively; forge's pure-JS generator is far slower). */
export function generateKeyPem(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f; // keep it positive
  return bytes.toString('hex');
}

function validity(cert: forge.pki.Certificate, ttlMs: number, now: number): void {
  cert.validity.notBefore = new Date(now - BACKDATE_MS);
  cert.validity.notAfter = new Date(now + ttlMs);
}

/** Creates a self-signed root CA for a trust domain. */
export function createRootCa(trustDomain: string, ttlMs: number, now = Date.now()): KeyPair {
  const { privateKeyPem, publicKeyPem } = generateKeyPem();
  const key = forge.pki.privateKeyFromPem(privateKeyPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  cert.serialNumber = serialNumber();
  validity(cert, ttlMs, now);
  const subject = [
    { name: 'commonName', value: `Skein root CA (${trustDomain})` },
    { name: 'organizationName', value: 'Skein' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'subjectAltName', altNames: [{ type: 6, value: `spiffe://${trustDomain}` }] },
  ]);
  cert.sign(key, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: privateKeyPem };
}

/** A PKCS#10 certificate signing request for `keyPem` (subject CN = App ID; only the key matters). */
export function createCsr(privateKeyPem: string, commonName: string): string {
  const key = forge.pki.privateKeyFromPem(privateKeyPem);
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  csr.setSubject([{ name: 'commonName', value: commonName }]);
  csr.sign(key, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

function loadCa(ca: KeyPair): { cert: forge.pki.Certificate; key: forge.pki.rsa.PrivateKey } {
  try {
    return { cert: forge.pki.certificateFromPem(ca.certPem), key: forge.pki.privateKeyFromPem(ca.keyPem) };
  } catch (error) {
    throw new SkeinError('ERR_CERTIFICATE', `the CA certificate or key cannot be read: ${(error as Error).message}`, { cause: error });
  }
}

function issue(
  ca: KeyPair,
  publicKey: forge.pki.PublicKey,
  subject: forge.pki.CertificateField[],
  altNames: Array<{ type: number; value?: string; ip?: string }>,
  ttlMs: number,
  now: number,
): string {
  const { cert: caCert, key: caKey } = loadCa(ca);
  const caNotAfter = caCert.validity.notAfter.getTime();
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serialNumber();
  // A leaf never outlives its issuer.
  validity(cert, Math.min(ttlMs, caNotAfter - now), now);
  cert.setSubject(subject);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectAltName', altNames },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

/** Signs a CSR into an X.509 SVID whose only SAN is the SPIFFE URI of `id`. Throws on a malformed or forged CSR. */
export function signSvid(ca: KeyPair, csrPem: string, id: SpiffeId, ttlMs: number, now = Date.now()): string {
  let csr: forge.pki.CertificateSigningRequest;
  try {
    csr = forge.pki.certificationRequestFromPem(csrPem);
  } catch (error) {
    throw new SkeinError('ERR_MALFORMED_REQUEST', `the CSR is not a PEM PKCS#10 request: ${(error as Error).message}`, { cause: error });
  }
  if (!csr.verify()) throw new SkeinError('ERR_MALFORMED_REQUEST', 'the CSR signature does not match its public key');
  if (!csr.publicKey) throw new SkeinError('ERR_MALFORMED_REQUEST', 'the CSR has no public key');
  const subject = [
    { name: 'commonName', value: id.appId },
    { name: 'organizationName', value: id.namespace },
  ];
  return issue(ca, csr.publicKey, subject, [{ type: 6, value: formatSpiffeId(id) }], ttlMs, now);
}

/**
 * Issues a serving certificate for control-plane servers (NATS, sentry) reachable at `hosts` (names or IPs),
 * optionally carrying a SPIFFE ID so clients can verify the server by identity instead of by host name.
 */
export function issueServerCertificate(ca: KeyPair, commonName: string, hosts: string[], ttlMs: number, spiffeId?: SpiffeId, now = Date.now()): KeyPair {
  const { privateKeyPem, publicKeyPem } = generateKeyPem();
  const altNames: Array<{ type: number; value?: string; ip?: string }> = [...new Set(hosts)].map((host) => (isIP(host) ? { type: 7, ip: host } : { type: 2, value: host }));
  if (spiffeId) altNames.push({ type: 6, value: formatSpiffeId(spiffeId) });
  const certPem = issue(ca, forge.pki.publicKeyFromPem(publicKeyPem), [{ name: 'commonName', value: commonName }], altNames, ttlMs, now);
  return { certPem, keyPem: privateKeyPem };
}

/** Validity window of a PEM certificate. */
export function certificateValidity(certPem: string): { notBefore: number; notAfter: number } {
  const cert = new X509Certificate(certPem);
  return { notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) };
}

/** The trust domain a root CA was made for (its `spiffe://<trustDomain>` URI SAN); undefined when it names none. */
export function trustDomainOfCa(caPem: string): string | undefined {
  const san = new X509Certificate(caPem).subjectAltName ?? '';
  return /(?:^|,\s*)URI:spiffe:\/\/([^/,\s]+)(?=,|$)/.exec(san)?.[1];
}

/** Every address of this host, for serving certificates that work from any interface. */
export function localAddresses(): string[] {
  const addresses = ['localhost', '127.0.0.1', '::1', hostname()];
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) addresses.push(entry.address);
  }
  return addresses;
}
