import type { KvEntry } from '@nats-io/kv';
import { SkeinError, isRevisionConflict, sleep, systemClock, type Clock, type KvBucket } from '@skein/core';
import { actorStateKey } from './names.js';
import type { StateOperation } from './requests.js';

/** The stored form of one actor's state: every key's JSON value. */
type StoredState = Record<string, unknown>;

/** How many times a transaction is re-applied when other writers keep changing the same actor's state. */
const MAX_ATTEMPTS = 20;

/**
 * Actor state in NATS KV. Each actor's keys live in one entry, so a transaction is one write: it is applied to the
 * entry's latest revision and written back only if that revision is still the latest (compare-and-set). A
 * concurrent writer makes the write fail; the transaction is then re-applied to the newer state, so both writers'
 * operations land and none is lost. The entry survives any sidecar: it lives in JetStream.
 */
export class ActorStateStore {
  private readonly bucket: KvBucket;
  private readonly clock: Clock;

  constructor(bucket: KvBucket, clock: Clock = systemClock) {
    this.bucket = bucket;
    this.clock = clock;
  }

  /** The JSON of one key, or undefined when the key (or the actor's state) does not exist. */
  async get(namespace: string, actorType: string, actorId: string, key: string): Promise<string | undefined> {
    let entry: KvEntry | null;
    try {
      entry = await this.bucket.use((kv) => kv.get(actorStateKey(namespace, actorType, actorId)));
    } catch (error) {
      throw new SkeinError('ERR_ACTOR_STATE_GET', `error getting actor state: ${(error as Error).message}`, { cause: error });
    }
    const state = decode(entry);
    if (!state || !Object.prototype.hasOwnProperty.call(state, key)) return undefined;
    return JSON.stringify(state[key]);
  }

  /** Applies every operation, all or nothing. */
  async transact(namespace: string, actorType: string, actorId: string, operations: readonly StateOperation[]): Promise<void> {
    if (operations.length === 0) return;
    const key = actorStateKey(namespace, actorType, actorId);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.bucket.use(async (kv) => {
          const entry = await kv.get(key);
          // A Map, so that a key such as "__proto__" is data like any other.
          const state = new Map(Object.entries(decode(entry) ?? {}));
          for (const operation of operations) {
            if (operation.operation === 'upsert') state.set(operation.key, operation.value);
            else state.delete(operation.key);
          }
          const live = entry !== null && entry.operation === 'PUT';
          if (state.size === 0) {
            // Nothing left: remove the entry, still guarded by the revision read.
            if (live) await kv.delete(key, { previousSeq: entry.revision });
            return;
          }
          const bytes = JSON.stringify(Object.fromEntries(state));
          if (live) await kv.update(key, bytes, entry.revision);
          else await kv.create(key, bytes);
        });
        return;
      } catch (error) {
        if (isRevisionConflict(error) && attempt < MAX_ATTEMPTS) {
          // Another writer got there first; re-read and re-apply after a short, jittered pause.
          await sleep(this.clock, Math.random() * Math.min(50, attempt * 5));
          continue;
        }
        const reason = isRevisionConflict(error) ? `the state kept changing under ${MAX_ATTEMPTS} attempts` : (error as Error).message;
        throw new SkeinError('ERR_ACTOR_STATE_TRANSACTION_SAVE', `error saving actor transaction state: ${reason}`, { cause: error });
      }
    }
  }
}

function decode(entry: KvEntry | null): StoredState | undefined {
  if (!entry || entry.operation !== 'PUT' || entry.length === 0) return undefined;
  const value = entry.json<unknown>();
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as StoredState) : undefined;
}
