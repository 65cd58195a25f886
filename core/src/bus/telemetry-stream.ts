import { DiscardPolicy, JetStreamApiCodes, JetStreamApiError, RetentionPolicy, StorageType, jetstreamManager, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { BUCKETS, SUBJECTS } from './names.js';
import { SkeinError } from '../errors.js';
import { logger } from '../logger.js';
import type { KeyPair } from '../identity/ca.js';
import { connectOperatorBus, mintOperatorTls } from './operator.js';

const log = logger('telemetry');

/** How long and how much telemetry the stream keeps; the oldest messages go first when either limit is reached. */
export interface TelemetryRetention {
  /** Messages older than this are dropped. */
  maxAgeMs: number;
  /** The stream never holds more than this many bytes. */
  maxBytes: number;
}

/** What a sidecar creates when nobody configured the stream before it: a day of telemetry, at most 1 GiB. */
export const DEFAULT_TELEMETRY_RETENTION: Readonly<TelemetryRetention> = Object.freeze({ maxAgeMs: 24 * 3_600_000, maxBytes: 1024 ** 3 });

/**
 * Subjects the telemetry stream captures. Adding a family here is enough: every `ensureTelemetryStream` adds
 * missing subjects to an existing stream without touching its limits.
 */
export const TELEMETRY_SUBJECTS: readonly string[] = Object.freeze([`${SUBJECTS.decisions}.>`, `${SUBJECTS.spans}.>`, `${SUBJECTS.workflows}.>`]);

/** JetStream's code for "stream name already in use" (not in the client's table of codes). */
const STREAM_NAME_IN_USE = 10058;

/** True when creating a stream failed because one of that name exists (another process created it first). */
export function isStreamNameInUse(error: unknown): boolean {
  return apiCode(error) === STREAM_NAME_IN_USE;
}

/** The JetStream deduplication window defaults to 2 min and may not exceed the stream's max age. */
const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;

/** The stream's configuration for `retention`; pure, so the settings can be checked without a server. */
export function telemetryStreamConfig(retention: TelemetryRetention, subjects: readonly string[] = TELEMETRY_SUBJECTS): Partial<StreamConfig> & { name: string } {
  if (!(retention.maxAgeMs >= 1000)) throw new SkeinError('ERR_CONFIG_INVALID', `the telemetry max age must be at least 1s, not ${retention.maxAgeMs} ms`);
  if (!Number.isSafeInteger(retention.maxBytes) || retention.maxBytes < 1024) throw new SkeinError('ERR_CONFIG_INVALID', `the telemetry max bytes must be at least 1Ki, not ${retention.maxBytes}`);
  return {
    name: BUCKETS.telemetry,
    description: 'Skein telemetry: finished spans, policy decisions and workflow events (schemas span-event, decision-event and workflow-event)',
    subjects: [...subjects],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(retention.maxAgeMs),
    max_bytes: retention.maxBytes,
    duplicate_window: nanos(Math.min(DEFAULT_DUPLICATE_WINDOW_MS, retention.maxAgeMs)),
    num_replicas: 1,
  };
}

function apiCode(error: unknown): number | undefined {
  return error instanceof JetStreamApiError ? error.code : undefined;
}

async function streamConfig(jsm: JetStreamManager): Promise<StreamConfig | undefined> {
  try {
    return (await jsm.streams.info(BUCKETS.telemetry)).config;
  } catch (error) {
    if (apiCode(error) === JetStreamApiCodes.StreamNotFound) return undefined;
    throw error;
  }
}

/**
 * Makes sure the telemetry stream exists and captures every telemetry subject. Idempotent and safe to race: every
 * sidecar calls it at start, and whichever comes first creates the stream.
 *
 * Without `retention`, an existing stream keeps the limits it has (whoever configured them, `skein up` or an
 * operator, wins); a missing one is created with {@link DEFAULT_TELEMETRY_RETENTION}. With `retention`, the limits
 * are set to it, creating or updating the stream.
 */
export async function ensureTelemetryStream(nc: NatsConnection, retention?: TelemetryRetention): Promise<void> {
  const wanted = telemetryStreamConfig(retention ?? DEFAULT_TELEMETRY_RETENTION);
  try {
    const jsm = await jetstreamManager(nc);
    let existing = await streamConfig(jsm);
    if (!existing) {
      try {
        await jsm.streams.add(wanted);
        log.info('telemetry stream created', { stream: wanted.name, maxAgeMs: retention?.maxAgeMs ?? DEFAULT_TELEMETRY_RETENTION.maxAgeMs, maxBytes: wanted.max_bytes });
        return;
      } catch (error) {
        // Another process created it between our look and our add; fall through and reconcile with theirs.
        if (!isStreamNameInUse(error)) throw error;
        existing = await streamConfig(jsm);
        if (!existing) throw error;
      }
    }
    const missing = TELEMETRY_SUBJECTS.filter((subject) => !existing.subjects.includes(subject));
    if (missing.length === 0 && !retention) return;
    const limits = retention ? { max_age: wanted.max_age, max_bytes: wanted.max_bytes, duplicate_window: wanted.duplicate_window } : {};
    if (missing.length === 0 && existing.max_age === limits.max_age && existing.max_bytes === limits.max_bytes) return;
    await jsm.streams.update(BUCKETS.telemetry, { ...limits, subjects: [...existing.subjects, ...missing] });
    log.info('telemetry stream updated', { stream: BUCKETS.telemetry, addedSubjects: missing, ...(retention ? { maxAgeMs: retention.maxAgeMs, maxBytes: retention.maxBytes } : {}) });
  } catch (error) {
    if (error instanceof SkeinError) throw error;
    throw new SkeinError('ERR_INTERNAL', `cannot set up the telemetry stream ${BUCKETS.telemetry}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Sets the telemetry stream's retention on the NATS of a local control plane (`skein up`), connecting with a
 * certificate minted from the development CA.
 */
export async function configureTelemetryStream(natsUrl: string, ca: KeyPair, retention: TelemetryRetention): Promise<void> {
  const nc = await connectOperatorBus(natsUrl, mintOperatorTls(ca, 'skein-up'), 'skein up');
  try {
    await ensureTelemetryStream(nc, retention);
  } finally {
    await nc.close().catch(() => undefined);
  }
}
