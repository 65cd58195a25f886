/**
 * Actor names as they travel: validation of the path segments of the actor API, and the NATS KV keys actor
 * state and reminders are stored under. Pure.
 */

/** Longest actor type, id, method, state key, reminder or timer name accepted. */
export const MAX_NAME_LENGTH = 1024;

/**
 * Why `name` cannot name an actor type, actor id, method, reminder or timer, or undefined when it can. The rules
 * keep one name meaning one thing to the sidecar, the store and the app: not empty, no `/` (it would change the
 * app's route), no `.`/`..` segment, no control characters.
 */
export function validateActorName(name: string): string | undefined {
  if (name.length === 0) return 'must not be empty';
  if (name.length > MAX_NAME_LENGTH) return `must be at most ${MAX_NAME_LENGTH} characters`;
  if (name === '.' || name === '..') return `must not be "${name}"`;
  if (name.includes('/') || name.includes('\\')) return 'must not contain "/" or "\\"';
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'must not contain control characters';
  return undefined;
}

/**
 * One KV key token for any string. NATS keys allow only `[-/_=.A-Za-z0-9]` and use `.` between tokens, so every
 * free-form name is base64url-encoded; the encoding is reversible and never contains `.`.
 */
export function keyToken(name: string): string {
  return Buffer.from(name, 'utf8').toString('base64url');
}

/** The inverse of `keyToken`. */
export function fromKeyToken(token: string): string {
  return Buffer.from(token, 'base64url').toString('utf8');
}

/** The KV key of one actor's state: all its keys live in one entry, so a transaction is one atomic write. */
export function actorStateKey(namespace: string, actorType: string, actorId: string): string {
  return `${namespace}.${keyToken(actorType)}.${keyToken(actorId)}`;
}

/** The KV key of one reminder. */
export function reminderKey(namespace: string, actorType: string, actorId: string, name: string): string {
  return `${namespace}.${keyToken(actorType)}.${keyToken(actorId)}.${keyToken(name)}`;
}

/** The KV key filter matching every reminder of one actor type. */
export function reminderTypeFilter(namespace: string, actorType: string): string {
  return `${namespace}.${keyToken(actorType)}.>`;
}

/** The in-memory key of one actor. */
export function actorKey(actorType: string, actorId: string): string {
  return `${actorType}\u0000${actorId}`;
}
