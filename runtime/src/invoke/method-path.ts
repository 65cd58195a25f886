import { SkeinError } from '../errors.js';

/**
 * Validates the method part of an invocation path (raw, still percent-encoded) and returns it unchanged.
 * Refuses what would let one path mean two things to the sidecar and the app: `.`/`..` segments, encoded
 * slashes or backslashes, NUL, and broken percent-encoding. Access control matches on this exact string.
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
    if (decoded.includes('\0')) throw new SkeinError('ERR_MALFORMED_REQUEST', `the method "${raw}" contains a NUL byte`);
  }
  return raw;
}

/** Where a request is going: the target App ID, its namespace and the method path. */
export interface InvokeTarget {
  appId: string;
  namespace: string;
  method: string;
}

/** Splits Dapr's `<appId>[.<namespace>]` form, defaulting to the caller's own namespace. */
export function splitAppId(text: string, defaultNamespace: string): { appId: string; namespace: string } {
  const dot = text.indexOf('.');
  if (dot === -1) return { appId: text, namespace: defaultNamespace };
  return { appId: text.slice(0, dot), namespace: text.slice(dot + 1) };
}
