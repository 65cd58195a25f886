/**
 * Globs for policy rules: `*` stands for any run of characters (none included); every other character is itself.
 * One wildcard keeps rules readable and their meaning obvious; matching is linear-time so a rule cannot be turned
 * into a slow regular expression by an unlucky pattern.
 */

/** A compiled glob. */
export interface Glob {
  /** The pattern as written. */
  readonly pattern: string;
  /** True when `value` matches the whole pattern. */
  matches(value: string): boolean;
}

/** Why a pattern was refused; compile steps turn it into a ConfigError naming file and path. */
export class GlobError extends Error {
  override readonly name = 'GlobError';
}

/** What characters a family of globs may use besides `*`, and how to say so. */
export interface GlobAlphabet {
  /** Matches one allowed character (without `*`). */
  readonly allowed: RegExp;
  /** Words for the error message, e.g. "letters, digits, '-' and '_'". */
  readonly description: string;
  /** Longest pattern accepted. */
  readonly maxLength: number;
}

/** App IDs: the App ID alphabet. */
export const APP_ID_GLOB: GlobAlphabet = Object.freeze({ allowed: /[A-Za-z0-9_-]/, description: "letters, digits, '-' and '_'", maxLength: 63 });
/** JSON-RPC method names and MCP tool names: visible ASCII. */
export const NAME_GLOB: GlobAlphabet = Object.freeze({ allowed: /[\x21-\x29\x2b-\x7e]/, description: 'visible ASCII characters (no spaces)', maxLength: 256 });
/** Claim values: any printable text. */
export const CLAIM_GLOB: GlobAlphabet = Object.freeze({ allowed: /[^\x00-\x1f\x7f*]/u, description: 'printable characters', maxLength: 1024 });

const ANY: Glob = Object.freeze({ pattern: '*', matches: () => true });

/** Compiles `pattern`; throws GlobError with a reason when it is empty, too long, uses `**` or a foreign character. */
export function compileGlob(pattern: string, alphabet: GlobAlphabet): Glob {
  if (pattern.length === 0) throw new GlobError('a glob must not be empty');
  if (pattern.length > alphabet.maxLength) throw new GlobError(`a glob must be at most ${alphabet.maxLength} characters`);
  if (pattern.includes('**')) throw new GlobError(`"${pattern}" uses "**": write a single "*", which already matches any run of characters`);
  for (const char of pattern) {
    if (char !== '*' && !alphabet.allowed.test(char)) {
      throw new GlobError(`"${pattern}" contains ${JSON.stringify(char)}: a glob may use ${alphabet.description}, and "*"`);
    }
  }
  if (pattern === '*') return ANY;
  if (!pattern.includes('*')) return Object.freeze({ pattern, matches: (value: string) => value === pattern });
  const parts = pattern.split('*');
  return Object.freeze({ pattern, matches: (value: string) => matchParts(parts, value) });
}

/**
 * Matches `value` against literal `parts` separated by wildcards: the first part anchors the start, the last the end,
 * and each middle part is found at its leftmost position, which is enough because a wildcard can absorb any gap.
 */
function matchParts(parts: readonly string[], value: string): boolean {
  const first = parts[0] ?? '';
  const last = parts[parts.length - 1] ?? '';
  if (value.length < first.length + last.length) return false;
  if (!value.startsWith(first) || !value.endsWith(last)) return false;
  let position = first.length;
  const end = value.length - last.length;
  for (let index = 1; index < parts.length - 1; index += 1) {
    const part = parts[index] ?? '';
    if (part.length === 0) continue;
    const found = value.indexOf(part, position);
    if (found === -1 || found + part.length > end) return false;
    position = found + part.length;
  }
  return true;
}

/** A set of globs that matches when any member does; an absent list (undefined) matches everything. */
export interface GlobSet {
  readonly patterns: readonly string[] | undefined;
  matches(value: string): boolean;
}

/** Compiles a list of globs; `onError(index, error)` lets the caller name the failing entry's path. */
export function compileGlobSet(patterns: readonly string[] | undefined, alphabet: GlobAlphabet, onError: (index: number, error: GlobError) => never): GlobSet {
  if (patterns === undefined) return Object.freeze({ patterns: undefined, matches: () => true });
  const globs = patterns.map((pattern, index) => {
    try {
      return compileGlob(pattern, alphabet);
    } catch (error) {
      if (error instanceof GlobError) return onError(index, error);
      throw error;
    }
  });
  const exact = new Set(globs.filter((glob) => !glob.pattern.includes('*')).map((glob) => glob.pattern));
  const wild = globs.filter((glob) => glob.pattern.includes('*'));
  return Object.freeze({
    patterns: Object.freeze([...patterns]),
    matches: (value: string) => exact.has(value) || wild.some((glob) => glob.matches(value)),
  });
}
