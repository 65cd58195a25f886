import { createPrivateKey, createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { SkeinError, formatSpiffeId, type SpiffeId } from '@skein/core';

/** Audience of every join token; a token for anything else is refused. */
const AUDIENCE = 'skein-sentry';

/** The longest a join token may live: it is a bearer secret until it is used. */
export const MAX_JOIN_TOKEN_TTL_SECONDS = 24 * 3600;

/**
 * Creates a join token: a short-lived, single-use JWT, signed with the CA key, that entitles its holder to one SVID
 * for exactly one App ID in one namespace. Production sentries refuse CSRs without one, and a token used once.
 */
export async function createJoinToken(caKeyPem: string, id: SpiffeId, ttlSeconds: number): Promise<string> {
  if (!(ttlSeconds <= MAX_JOIN_TOKEN_TTL_SECONDS)) throw new SkeinError('ERR_MALFORMED_REQUEST', `a join token lives at most 24 h, not ${ttlSeconds} s`);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
    .setSubject(formatSpiffeId(id))
    .setAudience(AUDIENCE)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime(`${ttlSeconds}s`)
    .sign(createPrivateKey(caKeyPem));
}

/** The verification key of join tokens: the CA's public key. */
export function joinTokenKey(caKeyPem: string): KeyObject {
  return createPublicKey(createPrivateKey(caKeyPem));
}

/** What a verified join token says: which token (its `jti`) and until when it is good. */
export interface VerifiedJoinToken {
  readonly jti: string;
  readonly expiresAtMs: number;
}

/** How long after its expiry a token can still pass verification (the clock tolerance). */
const CLOCK_TOLERANCE_SECONDS = 30;

/** Verifies that `token` entitles its holder to `id`; throws ERR_SENTRY_REFUSED saying why not. */
export async function verifyJoinToken(token: string, key: KeyObject, id: SpiffeId): Promise<VerifiedJoinToken> {
  const expected = formatSpiffeId(id);
  try {
    const { payload } = await jwtVerify(token, key, { audience: AUDIENCE, algorithms: ['RS256'], clockTolerance: CLOCK_TOLERANCE_SECONDS });
    if (payload.sub !== expected) {
      throw new SkeinError('ERR_SENTRY_REFUSED', `join token is for ${String(payload.sub)}, not ${expected}`);
    }
    if (typeof payload.jti !== 'string' || payload.jti === '' || typeof payload.exp !== 'number') {
      throw new SkeinError('ERR_SENTRY_REFUSED', 'join token has no jti or exp, so it cannot be used only once: make a new one with `skein token`');
    }
    return { jti: payload.jti, expiresAtMs: (payload.exp + CLOCK_TOLERANCE_SECONDS) * 1000 };
  } catch (error) {
    if (error instanceof SkeinError) throw error;
    const reason = error instanceof joseErrors.JOSEError ? `${error.code}: ${error.message}` : (error as Error).message;
    throw new SkeinError('ERR_SENTRY_REFUSED', `join token rejected: ${reason}`, { cause: error });
  }
}

/**
 * The join tokens a sentry has accepted, kept until they expire so that none is accepted twice. Kept in a file
 * (replaced whole on each change) so a restarted sentry still refuses a replay; without a file, in memory.
 */
export class JoinTokenLedger {
  private readonly used = new Map<string, number>();

  constructor(
    private readonly file: string | undefined,
    private readonly now: () => number = Date.now,
  ) {
    if (!file) return;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new SkeinError('ERR_CONFIG_INVALID', `cannot read the used join tokens at ${file}: ${(error as Error).message}`);
    }
    let entries: unknown;
    try {
      entries = JSON.parse(text);
    } catch (error) {
      throw new SkeinError('ERR_CONFIG_INVALID', `the used join tokens at ${file} are not JSON (${(error as Error).message}); refusing to start rather than accept a token twice`);
    }
    if (!entries || typeof entries !== 'object' || Array.isArray(entries)) throw new SkeinError('ERR_CONFIG_INVALID', `the used join tokens at ${file} are not a JSON object of jti → expiry`);
    for (const [jti, expiresAtMs] of Object.entries(entries)) if (typeof expiresAtMs === 'number') this.used.set(jti, expiresAtMs);
  }

  /** Records the first use of a token; false when it was used before (a replay). */
  claim(token: VerifiedJoinToken): boolean {
    const now = this.now();
    for (const [jti, expiresAtMs] of this.used) if (expiresAtMs < now) this.used.delete(jti);
    if (this.used.has(token.jti)) return false;
    this.used.set(token.jti, token.expiresAtMs);
    this.save();
    return true;
  }

  get size(): number {
    return this.used.size;
  }

  private save(): void {
    if (!this.file) return;
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const aside = `${this.file}.${process.pid}.tmp`;
    writeFileSync(aside, JSON.stringify(Object.fromEntries(this.used)), { mode: 0o600 });
    renameSync(aside, this.file);
  }
}
