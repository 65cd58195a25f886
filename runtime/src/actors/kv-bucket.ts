import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

/** True when a KV write failed because the entry changed since it was read (optimistic concurrency). */
export function isRevisionConflict(error: unknown): boolean {
  if (error instanceof JetStreamApiError) {
    return error.code === JetStreamApiCodes.StreamWrongLastSequence || error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown;
  }
  return /wrong last sequence/i.test((error as Error | undefined)?.message ?? '');
}

function isMissingStream(error: unknown): boolean {
  if (error instanceof JetStreamApiError) return error.code === JetStreamApiCodes.StreamNotFound;
  return /stream not found/i.test((error as Error | undefined)?.message ?? '');
}

/**
 * A KV bucket opened on first use and re-created when the server lost it (a NATS restart without its store), so
 * one restart costs one failed operation's retry, not a broken sidecar.
 */
export class KvBucket {
  private readonly nc: NatsConnection;
  private readonly name: string;
  private opening: Promise<KV> | undefined;

  constructor(nc: NatsConnection, name: string) {
    this.nc = nc;
    this.name = name;
  }

  /** The bucket, created when missing. */
  open(): Promise<KV> {
    if (!this.opening) {
      this.opening = new Kvm(this.nc).create(this.name, { history: 1 });
      this.opening.catch(() => (this.opening = undefined));
    }
    return this.opening;
  }

  /** Runs `operation`; if the bucket vanished under it, re-creates the bucket and runs it once more. */
  async use<T>(operation: (kv: KV) => Promise<T>): Promise<T> {
    try {
      return await operation(await this.open());
    } catch (error) {
      if (!isMissingStream(error)) throw error;
      this.opening = undefined;
      return operation(await this.open());
    }
  }
}
