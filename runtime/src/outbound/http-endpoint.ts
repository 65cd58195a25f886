/**
 * Compiles an `HTTPEndpoint` resource (validated against its schema) into frozen options: the base URL, the
 * headers with their values resolved, and the client TLS material, checked once at `skein run`. Errors name the
 * file, the path and the reason, never a secret value.
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { ConfigError, registerSecretValue } from '@skein/core';
import type { HTTPEndpointResource, TLSDocument } from '../config/types.js';
import { resolveNamedValue, type SecretStores } from '../secrets/secret-stores.js';

/** PEM material of a client TLS configuration; never logged or reported. */
export interface EndpointTls {
  readonly ca: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
}

/** A compiled HTTPEndpoint. Its headers and TLS material may hold secrets: `toJSON` leaves them out. */
export interface CompiledHttpEndpoint {
  readonly name: string;
  /** The resource file, for messages. */
  readonly file: string;
  readonly baseUrl: URL;
  /** Scheme, host and path of the base URL: safe to print. */
  readonly display: string;
  /** Lower-cased names; each replaces whatever the caller sent under that name. */
  readonly headers: ReadonlyArray<readonly [name: string, value: string]>;
  /** Present for `https` base URLs. */
  readonly tls: EndpointTls | undefined;
  toJSON(): { name: string; baseUrl: string };
}

/** Headers that describe one connection or one message framing, which the sidecar sets itself. */
const RESERVED_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length']);
/** Header names that carry credentials even when the value is written in plain text. */
const CREDENTIAL_HEADER = /authorization|token|secret|key|cookie|password|credential/i;
/** What Node accepts in a header value: no CR, LF or other control characters. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Compiles one HTTPEndpoint. `stores` resolves `secretKeyRef`s; `env` (default `process.env`) resolves `envRef`s. */
export function compileHttpEndpoint(resource: HTTPEndpointResource, file: string, stores: SecretStores, env?: Readonly<Record<string, string | undefined>>): CompiledHttpEndpoint {
  const name = resource.metadata.name;
  const baseUrl = parseBaseUrl(resource.spec.baseUrl, file);
  const secretStore = resource.auth?.secretStore;

  const headers: Array<readonly [string, string]> = [];
  const seen = new Map<string, number>();
  (resource.spec.headers ?? []).forEach((item, index) => {
    const at = `/spec/headers/${index}`;
    const header = item.name.toLowerCase();
    if (RESERVED_HEADERS.has(header)) throw new ConfigError(file, `${at}/name`, `header "${item.name}" is set by the sidecar for each connection and cannot be configured`);
    if (seen.has(header)) throw new ConfigError(file, `${at}/name`, `header "${item.name}" is already set at /spec/headers/${seen.get(header) ?? 0}`);
    seen.set(header, index);
    // Values from the environment or a secret store, or under a credential's name, are masked in logs.
    const sensitive = item.value === undefined || CREDENTIAL_HEADER.test(header);
    const value = resolveNamedValue(item, { file, path: at }, { stores, secretStore, sensitive, ...(env ? { env } : {}) });
    if (!HEADER_VALUE.test(value)) throw new ConfigError(file, at, `the value of header "${item.name}" contains characters not allowed in an HTTP header (line breaks or control characters)`);
    headers.push(Object.freeze([header, value] as const));
  });

  const clientTls = resource.spec.clientTLS;
  if (clientTls && baseUrl.protocol !== 'https:') throw new ConfigError(file, '/spec/clientTLS', 'clientTLS needs an https baseUrl');
  let tls: EndpointTls | undefined;
  if (baseUrl.protocol === 'https:') {
    const document = (field: 'rootCA' | 'certificate' | 'privateKey'): string | undefined => {
      const doc = clientTls?.[field];
      return doc === undefined ? undefined : tlsDocument(doc, { file, path: `/spec/clientTLS/${field}` }, stores, secretStore, field === 'privateKey');
    };
    tls = Object.freeze({ ca: document('rootCA'), cert: document('certificate'), key: document('privateKey') });
    checkTls(tls, file);
  }

  const display = `${baseUrl.protocol}//${baseUrl.host}${baseUrl.pathname === '/' ? '' : baseUrl.pathname}`;
  return Object.freeze({
    name,
    file,
    baseUrl,
    display,
    headers: Object.freeze(headers),
    tls,
    toJSON: () => ({ name, baseUrl: display }),
  });
}

function parseBaseUrl(text: string, file: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(file, '/spec/baseUrl', 'baseUrl must be an absolute http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(file, '/spec/baseUrl', `baseUrl must use http or https, not ${url.protocol.replace(/:$/, '')}`);
  // Credentials in the URL would show wherever the URL is printed; headers with secretKeyRef are masked instead.
  if (url.username !== '' || url.password !== '') throw new ConfigError(file, '/spec/baseUrl', 'baseUrl must not carry credentials: put them in spec.headers with secretKeyRef');
  if (url.search !== '' || url.hash !== '') throw new ConfigError(file, '/spec/baseUrl', 'baseUrl must not have a query or fragment: the invoked method and its query are appended to it');
  url.pathname = url.pathname.replace(/\/+$/, '') || '/';
  return url;
}

function tlsDocument(doc: TLSDocument, site: { file: string; path: string }, stores: SecretStores, secretStore: string | undefined, secret: boolean): string {
  let pem: string;
  if (doc.value !== undefined) {
    pem = doc.value;
  } else if (doc.secretKeyRef !== undefined) {
    return stores.resolve({ store: secretStore, name: doc.secretKeyRef.name, key: doc.secretKeyRef.key ?? doc.secretKeyRef.name }, { file: site.file, path: `${site.path}/secretKeyRef` });
  } else if (doc.file !== undefined) {
    const path = resolve(dirname(site.file), doc.file);
    try {
      pem = readFileSync(path, 'utf8');
    } catch (error) {
      throw new ConfigError(site.file, `${site.path}/file`, `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    }
  } else {
    throw new ConfigError(site.file, site.path, 'needs value, secretKeyRef or file');
  }
  if (secret) registerSecretValue(pem);
  return pem;
}

/** Parses each document and checks the certificate and key belong together, so a bad one fails at load, not on a call. */
function checkTls(tls: EndpointTls, file: string): void {
  if (tls.ca !== undefined) parseCertificate(tls.ca, file, '/spec/clientTLS/rootCA', 'rootCA');
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new ConfigError(file, '/spec/clientTLS', tls.cert === undefined ? 'privateKey needs a certificate' : 'certificate needs a privateKey');
  }
  if (tls.cert === undefined || tls.key === undefined) return;
  const certificate = parseCertificate(tls.cert, file, '/spec/clientTLS/certificate', 'certificate');
  let key: KeyObject;
  try {
    key = createPrivateKey(tls.key);
  } catch {
    throw new ConfigError(file, '/spec/clientTLS/privateKey', 'privateKey is not a PEM private key');
  }
  if (!certificate.checkPrivateKey(key)) throw new ConfigError(file, '/spec/clientTLS/privateKey', 'privateKey does not belong to the certificate');
}

function parseCertificate(pem: string, file: string, path: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new ConfigError(file, path, `${what} is not a PEM certificate`);
  }
}
