import { JetStreamApiCodes, JetStreamApiError, jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { BUCKETS as BUCKET_NAMES, BUCKET_OPTIONS, type BucketName, type BucketOptions } from './names.js';

/** True when a KV write failed because the entry changed since it was read (optimistic concurrency). */
export function isRevisionConflict(error: unknown): boolean {
  if (error instanceof JetStreamApiError) {
    return error.code === JetStreamApiCodes.StreamWrongLastSequence || error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown;
  }
  return /wrong last sequence/i.test((error as Error | undefined)?.message ?? '');
}

/** True when the server no longer has the stream behind a bucket (a NATS restart without its store). */
export function isMissingStream(error: unknown): boolean {
  if (error instanceof JetStreamApiError) return error.code === JetStreamApiCodes.StreamNotFound;
  return /stream not found/i.test((error as Error | undefined)?.message ?? '');
}

/**
 * The one way Skein opens a KV bucket. The bucket is opened (created when missing, with the options of the names
 * table) on first use and re-created when the server lost it, so one NATS restart costs one failed operation's
 * retry, not a broken process. Every bucket user — discovery, MCP sessions, actor state and reminders, placement —
 * goes through this, so they all recover the same way.
 */
export class KvBucket {
  private readonly nc: NatsConnection;
  readonly name: BucketName;
  private readonly options: BucketOptions;
  private opening: Promise<KV> | undefined;

  /** `overrides` adjusts the table's options for this process (discovery's TTL follows its heartbeat settings). */
  constructor(nc: NatsConnection, name: BucketName, overrides: Partial<BucketOptions> = {}) {
    this.nc = nc;
    this.name = name;
    this.options = { ...BUCKET_OPTIONS[name], ...overrides };
  }

  /** The bucket, created when missing. */
  open(): Promise<KV> {
    if (!this.opening) {
      const { history, ttlMs, apiTimeoutMs } = this.options;
      const opening = new Kvm(apiTimeoutMs === undefined ? this.nc : jetstream(this.nc, { timeout: apiTimeoutMs })).create(BUCKET_NAMES[this.name], {
        history,
        ...(ttlMs === undefined ? {} : { ttl: ttlMs }),
      });
      opening.catch(() => {
        if (this.opening === opening) this.opening = undefined;
      });
      this.opening = opening;
    }
    return this.opening;
  }

  /** Forgets the open handle: the next use opens (and if need be re-creates) the bucket again. */
  reset(): void {
    this.opening = undefined;
  }

  /** Runs `operation`; if the bucket vanished under it, re-creates the bucket and runs it once more. */
  async use<T>(operation: (kv: KV) => Promise<T>): Promise<T> {
    try {
      return await operation(await this.open());
    } catch (error) {
      if (!isMissingStream(error)) throw error;
      this.reset();
      return operation(await this.open());
    }
  }
}
