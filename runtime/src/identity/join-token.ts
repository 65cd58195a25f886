import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { SkeinError, formatSpiffeId, type SpiffeId } from '@skein/core';

/** Audience of every join token; a token for anything else is refused. */
const AUDIENCE = 'skein-sentry';

/**
 * Creates a join token: a short-lived JWT, signed with the CA key, that entitles its holder to an SVID for
 * exactly one App ID in one namespace. Production sentries refuse CSRs without one.
 */
export async function createJoinToken(caKeyPem: string, id: SpiffeId, ttlSeconds: number): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
    .setSubject(formatSpiffeId(id))
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(`${ttlSeconds}s`)
    .sign(createPrivateKey(caKeyPem));
}

/** The verification key of join tokens: the CA's public key. */
export function joinTokenKey(caKeyPem: string): KeyObject {
  return createPublicKey(createPrivateKey(caKeyPem));
}

/** Verifies that `token` entitles its holder to `id`; throws ERR_SENTRY_REFUSED saying why not. */
export async function verifyJoinToken(token: string, key: KeyObject, id: SpiffeId): Promise<void> {
  const expected = formatSpiffeId(id);
  try {
    const { payload } = await jwtVerify(token, key, { audience: AUDIENCE, algorithms: ['RS256'], clockTolerance: 30 });
    if (payload.sub !== expected) {
      throw new SkeinError('ERR_SENTRY_REFUSED', `join token is for ${String(payload.sub)}, not ${expected}`);
    }
  } catch (error) {
    if (error instanceof SkeinError) throw error;
    const reason = error instanceof joseErrors.JOSEError ? `${error.code}: ${error.message}` : (error as Error).message;
    throw new SkeinError('ERR_SENTRY_REFUSED', `join token rejected: ${reason}`, { cause: error });
  }
}
