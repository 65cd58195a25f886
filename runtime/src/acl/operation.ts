/**
 * Operation names for App-ID access control: normalising what a caller asked for, and matching it against the
 * `operations[].name` patterns of a policy. Both sides are reduced to `/`-separated segments first, so a rule and a
 * request can only agree or disagree on whole segments.
 */

/** The application protocol of the app being protected: HTTP operations are case-insensitive, gRPC ones are not. */
export type AppProtocol = 'http' | 'grpc';

/** An operation reduced to its canonical form, or why it cannot be. */
export type NormalizedOperation = { ok: true; path: string } | { ok: false; reason: string };

// Characters that change what a path means to the app behind the sidecar (query, fragment, another separator,
// line breaks) must not hide inside a segment, decoded or not.
const FORBIDDEN_IN_SEGMENT = /[\\/?#\x00-\x1f\x7f]/;
const CONTROL = /[\x00-\x1f\x7f]/;

/**
 * Normalises a requested operation the way the app will understand it, so a rule cannot be dodged by spelling the
 * same path differently: for HTTP each segment is percent-decoded; `.` and empty segments are dropped; `..` removes
 * the previous segment and can never climb above the root. Refused outright: `?` and `#`, control characters,
 * backslashes, encoded slashes, and broken percent-encoding, because the sidecar and the app could read them
 * differently. The result starts with `/`; case is left alone (matching lower-cases HTTP operations itself).
 */
export function normalizeOperation(raw: string, protocol: AppProtocol): NormalizedOperation {
  if (raw.includes('?') || raw.includes('#')) return { ok: false, reason: `the operation "${printable(raw)}" contains "?" or "#"` };
  if (CONTROL.test(raw)) return { ok: false, reason: `the operation "${printable(raw)}" contains a control character` };
  const segments: string[] = [];
  for (const encoded of raw.split('/')) {
    let segment = encoded;
    if (protocol === 'http') {
      try {
        segment = decodeURIComponent(encoded);
      } catch {
        return { ok: false, reason: `the operation "${printable(raw)}" has invalid percent-encoding` };
      }
    }
    if (FORBIDDEN_IN_SEGMENT.test(segment)) {
      return { ok: false, reason: `the operation "${printable(raw)}" hides a separator, "?", "#", backslash or control character inside a segment` };
    }
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      segments.pop();
      continue;
    }
    segments.push(segment);
  }
  return { ok: true, path: `/${segments.join('/')}` };
}

/** Renders a value for an error message without letting control characters through. */
function printable(text: string): string {
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}...` : text).slice(1, -1);
}

type Segment = { kind: 'literal'; text: string } | { kind: 'glob'; parts: readonly string[] } | { kind: 'one' } | { kind: 'any' };

/** A compiled `operations[].name`. */
export interface OperationPattern {
  /** The pattern as matched (leading `/` added, lower-cased for HTTP). */
  readonly name: string;
  /** True when the normalised operation path matches. */
  matches(path: string): boolean;
}

/** Why an operation pattern was refused. */
export class OperationPatternError extends Error {
  override readonly name = 'OperationPatternError';
}

/**
 * Compiles an operation pattern. Segments are literal, `*` (exactly one segment; as the last segment it also
 * matches when that segment is absent, so `/op/*` covers `/op` and `/op/x`), `**` (any number of segments,
 * none included) or a glob with `*` inside one segment (`/orders/v*`). A literal pattern matches only an
 * operation of the same depth: write `/admin/**` to cover everything under `/admin`.
 */
export function compileOperationPattern(name: string, protocol: AppProtocol): OperationPattern {
  let text = name.startsWith('/') ? name : `/${name}`;
  if (protocol === 'http') text = text.toLowerCase();
  if (text === '/') throw new OperationPatternError('"/" names no operation: use "/**" for every operation');
  if (/[?#\\]/.test(text)) throw new OperationPatternError(`"${printable(name)}" contains "?", "#" or a backslash, which no normalised operation can contain`);
  if (/[\x00-\x20\x7f]/.test(text)) throw new OperationPatternError(`"${printable(name)}" contains a space or control character`);
  const segments: Segment[] = text
    .slice(1)
    .split('/')
    .map((segment): Segment => {
      if (segment === '') throw new OperationPatternError(`"${printable(name)}" has an empty segment ("//" or a trailing "/")`);
      if (segment === '.' || segment === '..') throw new OperationPatternError(`"${printable(name)}" has a "${segment}" segment; operations are matched after "." and ".." are resolved`);
      if (segment === '**') return { kind: 'any' };
      if (segment === '*') return { kind: 'one' };
      if (segment.includes('**')) throw new OperationPatternError(`"${printable(name)}": "**" must be a whole segment ("/a/**"), use "*" inside a segment`);
      if (segment.includes('*')) return { kind: 'glob', parts: segment.split('*') };
      return { kind: 'literal', text: segment };
    });
  const last = segments[segments.length - 1];
  const optionalLast = last?.kind === 'one';
  return Object.freeze({
    name: text,
    matches: (path: string) => {
      const requested = path === '/' ? [] : path.slice(1).split('/');
      if (matchSegments(segments, requested)) return true;
      return optionalLast && matchSegments(segments.slice(0, -1), requested);
    },
  });
}

/** Whole-path match by dynamic programming over (pattern, path) positions, so several `**` stay polynomial. */
function matchSegments(pattern: readonly Segment[], path: readonly string[]): boolean {
  // reachable[j]: the pattern prefix consumed so far can end right before path[j].
  let reachable: boolean[] = new Array<boolean>(path.length + 1).fill(false);
  reachable[0] = true;
  for (const segment of pattern) {
    const next = new Array<boolean>(path.length + 1).fill(false);
    for (let j = 0; j <= path.length; j += 1) {
      if (!reachable[j]) continue;
      if (segment.kind === 'any') {
        for (let k = j; k <= path.length; k += 1) next[k] = true;
        break;
      }
      const value = path[j];
      if (value !== undefined && segmentMatches(segment, value)) next[j + 1] = true;
    }
    reachable = next;
  }
  return reachable[path.length] === true;
}

function segmentMatches(segment: Exclude<Segment, { kind: 'any' }>, value: string): boolean {
  switch (segment.kind) {
    case 'literal':
      return segment.text === value;
    case 'one':
      return true;
    case 'glob': {
      const parts = segment.parts;
      const first = parts[0] ?? '';
      const last = parts[parts.length - 1] ?? '';
      if (value.length < first.length + last.length || !value.startsWith(first) || !value.endsWith(last)) return false;
      let position = first.length;
      const end = value.length - last.length;
      for (let index = 1; index < parts.length - 1; index += 1) {
        const part = parts[index] ?? '';
        const found = value.indexOf(part, position);
        if (found === -1 || found + part.length > end) return false;
        position = found + part.length;
      }
      return true;
    }
  }
}
