/**
 * The `matching` lists of a retry policy: comma-separated codes and inclusive ranges (`"429,500-599"`), parsed once
 * and matched without allocation. Pure.
 */

/** An inclusive range of status codes. */
export interface CodeRange {
  readonly start: number;
  readonly end: number;
}

/** Codes HTTP status lists may name. */
export const HTTP_STATUS_RANGE: CodeRange = Object.freeze({ start: 100, end: 599 });
/** Codes gRPC status lists may name. */
export const GRPC_STATUS_RANGE: CodeRange = Object.freeze({ start: 0, end: 16 });

/** A parsed status-code list, with its source text for messages. */
export interface StatusCodeSet {
  readonly text: string;
  readonly ranges: readonly CodeRange[];
}

const CODE = /^\d{1,3}$/;

/**
 * Parses a list such as `"429, 500-599"`. Empty (or only commas) means "not set" and gives undefined, which
 * matches every code. Throws a RangeError naming the item at fault.
 */
export function parseStatusCodes(text: string, valid: CodeRange): StatusCodeSet | undefined {
  const ranges: CodeRange[] = [];
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const bounds = item.split('-').map((part) => part.trim());
    if (bounds.length > 2 || !bounds.every((part) => CODE.test(part))) {
      throw new RangeError(`"${item}" is neither a status code nor a range like ${valid.start}-${valid.end}`);
    }
    const start = Number(bounds[0]);
    const end = Number(bounds[1] ?? bounds[0]);
    for (const code of [start, end]) {
      if (code < valid.start || code > valid.end) throw new RangeError(`${code} in "${item}" is outside ${valid.start}-${valid.end}`);
    }
    if (end < start) throw new RangeError(`the range "${item}" ends before it starts`);
    ranges.push(Object.freeze({ start, end }));
  }
  return ranges.length === 0 ? undefined : Object.freeze({ text, ranges: Object.freeze(ranges) });
}

/** True when `code` is in `set`; a list that is not set matches every code. */
export function matchesStatus(set: StatusCodeSet | undefined, code: number): boolean {
  if (!set) return true;
  for (const range of set.ranges) if (code >= range.start && code <= range.end) return true;
  return false;
}
