import { DeliverPolicy, JetStreamApiCodes, JetStreamApiError, jetstream, type ConsumerMessages, type OrderedConsumerOptions } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { BUCKETS } from '../bus/names.js';
import { SkeinError } from '../errors.js';

/** What to read from the telemetry stream. */
export interface TelemetryReadOptions {
  /** One subject filter (NATS 2.9 consumers take a single one), e.g. `skein.decisions.*.mcp-server`. */
  subject: string;
  /** Only messages stored at or after this time. */
  since?: Date;
  /** Only messages stored after this stream sequence (resuming a read); wins over `since`. */
  afterSequence?: number;
  /** Keep reading new messages after the stored ones, until `signal` aborts. */
  follow?: boolean;
  signal?: AbortSignal;
}

/**
 * Without `follow`, the read also ends after this long without a message: if retention deletes the last stored
 * messages while they are being read, the one that would have said "nothing pending" never comes.
 */
const IDLE_END_MS = 5000;

/** A stored message, parsed as JSON (undefined when it is not JSON), or the mark that everything stored was read. */
export type TelemetryItem = { kind: 'message'; subject: string; data: unknown; sequence: number } | { kind: 'caught-up' };

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Reads the telemetry stream through an ephemeral ordered consumer. Never hangs: without `follow` it stops after
 * the last message stored when it started (the consumer's pending count says when). With `follow` it yields
 * `caught-up` once, then new messages as they arrive. The consumer is deleted when the reading ends.
 */
export async function* readTelemetry(nc: NatsConnection, options: TelemetryReadOptions): AsyncGenerator<TelemetryItem> {
  const js = jetstream(nc);
  const start: Partial<OrderedConsumerOptions> =
    options.afterSequence !== undefined
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: options.afterSequence + 1 }
      : options.since
        ? { opt_start_time: options.since.toISOString() }
        : { deliver_policy: DeliverPolicy.All };
  const consumerOptions: Partial<OrderedConsumerOptions> = { filter_subjects: options.subject, ...start };
  let consumer;
  try {
    consumer = await js.consumers.get(BUCKETS.telemetry, consumerOptions);
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) {
      throw new SkeinError('ERR_NOT_FOUND', `there is no telemetry stream (${BUCKETS.telemetry}) on this NATS yet: the first sidecar started against it creates it`, { cause: error });
    }
    throw new SkeinError('ERR_INTERNAL', `cannot read the telemetry stream ${BUCKETS.telemetry}: ${(error as Error).message}`, { cause: error });
  }
  let messages: ConsumerMessages | undefined;
  let idle: NodeJS.Timeout | undefined;
  const stop = (): void => {
    messages?.stop();
  };
  options.signal?.addEventListener('abort', stop, { once: true });
  try {
    const pending = (await consumer.info(true)).num_pending;
    if (pending === 0) {
      yield { kind: 'caught-up' };
      if (!options.follow || options.signal?.aborted) return;
    }
    messages = await consumer.consume({ max_messages: 256 });
    if (options.signal?.aborted) messages.stop();
    // The idle clock runs only while waiting for the stream, never while the reader handles a message.
    const arm = (): void => {
      if (!options.follow) idle = setTimeout(stop, IDLE_END_MS);
    };
    arm();
    let caughtUp = pending === 0;
    for await (const message of messages) {
      clearTimeout(idle);
      yield { kind: 'message', subject: message.subject, data: parse(message.string()), sequence: message.seq };
      arm();
      if (!caughtUp && message.info.pending === 0) {
        caughtUp = true;
        yield { kind: 'caught-up' };
        if (!options.follow) break;
      }
    }
  } finally {
    clearTimeout(idle);
    options.signal?.removeEventListener('abort', stop);
    messages?.stop();
    await consumer.delete().catch(() => undefined);
  }
}
