import { SkeinError } from '@skein/core';

/** C0 controls (NUL included) and DEL. */
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Validates the method part of an invocation path (raw, still percent-encoded) and returns it unchanged.
 * Refuses what would let one path mean two things to the sidecar and the app: `.`/`..` segments, encoded
 * slashes or backslashes, control characters, broken percent-encoding, and the spellings some servers normalise
 * away: `;` path parameters (`/admin;x`), segments ending in a dot or a space (`/admin.`, `/admin%20`), and
 * compatibility characters such as full-width letters that fold to ASCII (`/ａdmin`). Access control and the tool
 * policy match on this exact string, so a deny rule for `/admin/**` cannot be dodged by a spelling the app reads
 * as `/admin`.
 */
export function validateMethodPath(raw: string): string {
  if (raw.length === 0) throw new SkeinError('ERR_MALFORMED_REQUEST', 'the method is empty: use /v1.0/invoke/<appId>/method/<method>');
  for (const segment of raw.split('/')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw new SkeinError('ERR_MALFORMED_REQUEST', `the method "${raw}" has invalid percent-encoding`);
    }
    if (decoded === '.' || decoded === '..') throw new SkeinError('ERR_MALFORMED_REQUEST', `the method "${raw}" contains a "${decoded}" segment`);
    if (decoded.includes('/') || decoded.includes('\\')) throw new SkeinError('ERR_MALFORMED_REQUEST', `the method "${raw}" contains an encoded slash or backslash`);
    if (CONTROL.test(decoded)) throw new SkeinError('ERR_MALFORMED_REQUEST', `the method "${raw}" contains a control character`);
    if (decoded.includes(';')) throw new SkeinError('ERR_MALFORMED_REQUEST', `the method "${raw}" contains a ";" path parameter, which some servers strip before routing`);
    if (/[. ]$/.test(decoded)) throw new SkeinError('ERR_MALFORMED_REQUEST', `the method "${raw}" has a segment ending in a dot or a space, which some servers strip before routing`);
    if (decoded.normalize('NFKC') !== decoded.normalize('NFC')) {
      throw new SkeinError('ERR_MALFORMED_REQUEST', `the method "${raw}" contains characters that some servers fold to others (e.g. full-width letters)`);
    }
  }
  return raw;
}

/** Where a request is going: the target App ID, its namespace and the method path. */
export interface InvokeTarget {
  appId: string;
  namespace: string;
  method: string;
}

/** App IDs, HTTPEndpoint names and namespaces as a call may name them: never a NATS wildcard or anything else. */
const TARGET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/;

/** Splits Dapr's `<appId>[.<namespace>]` form, defaulting to the caller's own namespace; refuses anything else. */
export function splitAppId(text: string, defaultNamespace: string): { appId: string; namespace: string } {
  if (!TARGET_NAME.test(text)) throw new SkeinError('ERR_MALFORMED_REQUEST', `"${text.slice(0, 64)}" is not a valid App ID`);
  const dot = text.indexOf('.');
  if (dot === -1) return { appId: text, namespace: defaultNamespace };
  return { appId: text.slice(0, dot), namespace: text.slice(dot + 1) };
}
