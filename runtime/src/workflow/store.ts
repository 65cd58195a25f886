import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { BUCKETS, KvBucket, SkeinError, isRevisionConflict, isStreamNameInUse } from '@skein/core';
import { skein } from '@skein/proto';
import { keyToken } from '../actors/names.js';

/**
 * Where workflows live in JetStream. Histories: one subject per instance in one stream, every record appended with
 * the subject's expected last sequence, so two sidecars that both believe they own an instance can never both
 * extend it. Activities: a work-queue stream, one subject and one durable consumer per app, so any live instance of
 * the app takes the next one and an unacknowledged one is delivered again. Summaries: a KV bucket, one entry per
 * instance, for listing and waiting.
 */

const HistoryRecord = skein.workflow.v1.HistoryRecord;
const InstanceSummary = skein.workflow.v1.InstanceSummary;

/** Subject prefix of instance histories: `<prefix>.<namespace>.<appId>.<instanceId>`. */
const HISTORY_PREFIX = 'skein.wfh';
/** Subject prefix of activity work: `<prefix>.<namespace>.<appId>`. */
const ACTIVITY_PREFIX = 'skein.wfa';
/** An activity not acknowledged within this is delivered again; a worker still running it extends it. */
export const ACTIVITY_ACK_WAIT_MS = 10_000;
/** A record is one NATS message: the server's default payload limit is 1 MiB. */
export const MAX_RECORD_BYTES = 1024 * 1024 - 8 * 1024;

/** The last sequence a record was appended at, and every record of the instance in order. */
export interface LoadedHistory {
  records: Array<{ record: skein.workflow.v1.HistoryRecord; sequence: number }>;
}

/** A conflicting append: another writer extended the instance's history since it was read. */
export class HistoryConflict extends Error {}

export class WorkflowStore {
  private readonly nc: NatsConnection;
  private readonly js: JetStreamClient;
  private readonly namespace: string;
  private readonly appId: string;
  private jsm: Promise<JetStreamManager> | undefined;
  private ready: Promise<void> | undefined;
  readonly summaries: KvBucket;

  constructor(nc: NatsConnection, namespace: string, appId: string) {
    this.nc = nc;
    this.js = jetstream(nc);
    this.namespace = namespace;
    this.appId = appId;
    this.summaries = new KvBucket(nc, 'workflows');
  }

  /** Subject of one instance's history (the id base64url-encoded: any actor id is one token). */
  historySubject(instanceId: string): string {
    return `${HISTORY_PREFIX}.${this.namespace}.${this.appId}.${keyToken(instanceId)}`;
  }

  get activitySubject(): string {
    return `${ACTIVITY_PREFIX}.${this.namespace}.${this.appId}`;
  }

  get activityConsumer(): string {
    return `wfa-${this.namespace}-${this.appId}`;
  }

  summaryKey(instanceId: string): string {
    return `${this.namespace}.${this.appId}.${keyToken(instanceId)}`;
  }

  get summaryPrefix(): string {
    return `${this.namespace}.${this.appId}.`;
  }

  private manager(): Promise<JetStreamManager> {
    this.jsm ??= jetstreamManager(this.nc);
    return this.jsm;
  }

  /** Creates the streams and this app's activity consumer when missing. */
  ensure(): Promise<void> {
    if (!this.ready) {
      const ready = this.create();
      ready.catch(() => {
        if (this.ready === ready) this.ready = undefined;
      });
      this.ready = ready;
    }
    return this.ready;
  }

  private async create(): Promise<void> {
    const jsm = await this.manager();
    await addStream(jsm, {
      name: BUCKETS.workflowHistory,
      description: 'Skein workflow histories: one subject per instance, records appended with the expected last sequence',
      subjects: [`${HISTORY_PREFIX}.>`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_msg_size: MAX_RECORD_BYTES + 8 * 1024,
    });
    await addStream(jsm, {
      name: BUCKETS.workflowActivities,
      description: 'Skein workflow activities: a work queue per app, each activity acknowledged once its result is recorded',
      subjects: [`${ACTIVITY_PREFIX}.>`],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      duplicate_window: 120_000_000_000,
    });
    await jsm.consumers.add(BUCKETS.workflowActivities, {
      durable_name: this.activityConsumer,
      filter_subject: this.activitySubject,
      ack_policy: AckPolicy.Explicit,
      ack_wait: ACTIVITY_ACK_WAIT_MS * 1_000_000,
      max_deliver: -1,
      max_ack_pending: 10_000,
    });
  }

  /** Every record of an instance, in order; empty for an unknown instance. */
  async load(instanceId: string): Promise<LoadedHistory> {
    await this.ensure();
    const jsm = await this.manager();
    const subject = this.historySubject(instanceId);
    const last = await jsm.streams.getMessage(BUCKETS.workflowHistory, { last_by_subj: subject }).catch((error: unknown) => {
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.NoMessageFound) return null;
      throw error;
    });
    const records: LoadedHistory['records'] = [];
    if (!last) return { records };
    const consumer = await this.js.consumers.get(BUCKETS.workflowHistory, { filter_subjects: subject, deliver_policy: DeliverPolicy.All });
    const messages = await consumer.consume();
    try {
      for await (const message of messages) {
        records.push({ record: HistoryRecord.decode(message.data), sequence: message.seq });
        if (message.seq >= last.seq) break;
      }
    } finally {
      await messages.close();
      await consumer.delete().catch(() => false);
    }
    return { records };
  }

  /** Appends a record; throws HistoryConflict when the subject's last sequence is not `expected`. Returns the new sequence. */
  async append(instanceId: string, record: skein.workflow.v1.IHistoryRecord, expected: number): Promise<number> {
    const bytes = HistoryRecord.encode(record).finish();
    if (bytes.length > MAX_RECORD_BYTES) {
      throw new SkeinError('ERR_WORKFLOW_PAYLOAD_TOO_LARGE', `workflow instance '${instanceId}': one step's history is ${bytes.length} bytes, over the limit of ${MAX_RECORD_BYTES} bytes`);
    }
    await this.ensure();
    try {
      const ack = await this.js.publish(this.historySubject(instanceId), bytes, { expect: { lastSubjectSequence: expected } });
      return ack.seq;
    } catch (error) {
      if (isRevisionConflict(error)) throw new HistoryConflict(`workflow instance '${instanceId}' was extended by another writer`);
      throw error;
    }
  }

  /** Deletes an instance's history and summary. */
  async purge(instanceId: string): Promise<void> {
    await this.ensure();
    const jsm = await this.manager();
    await jsm.streams.purge(BUCKETS.workflowHistory, { filter: this.historySubject(instanceId) });
    await this.summaries.use((kv) => kv.purge(this.summaryKey(instanceId)));
  }

  /** Queues an activity for any worker of the app; `id` deduplicates a re-issue within two minutes. */
  async enqueueActivity(request: Uint8Array, id: string): Promise<void> {
    await this.ensure();
    await this.js.publish(this.activitySubject, request, { msgID: id });
  }

  /** This app's activity consumer. */
  async activities(): Promise<ReturnType<JetStreamClient['consumers']['get']>> {
    await this.ensure();
    return this.js.consumers.get(BUCKETS.workflowActivities, this.activityConsumer);
  }

  /**
   * Writes an instance's summary. One whose payloads together pass a record's size is written without them (a list
   * then shows the instance without input, output and custom status; reads of the instance still have them): waits
   * are woken by the summary, so it must always be written.
   */
  async writeSummary(summary: skein.workflow.v1.IInstanceSummary): Promise<void> {
    let bytes = InstanceSummary.encode(summary).finish();
    if (bytes.length > MAX_RECORD_BYTES) bytes = InstanceSummary.encode({ ...summary, input: null, output: null, customStatus: null }).finish();
    await this.summaries.use((kv) => kv.put(this.summaryKey(summary.instanceId ?? ''), bytes));
  }

  async readSummary(instanceId: string): Promise<skein.workflow.v1.InstanceSummary | undefined> {
    const entry = await this.summaries.use((kv) => kv.get(this.summaryKey(instanceId)));
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return undefined;
    return InstanceSummary.decode(entry.value);
  }

  /**
   * Every summary of this app's instances: the last value of each key, read in batches by one ordered consumer on
   * the bucket's stream (reading the keys and then each value would cost a round trip per instance).
   */
  async listSummaries(): Promise<skein.workflow.v1.InstanceSummary[]> {
    await this.summaries.open();
    const consumer = await this.js.consumers.get(`KV_${BUCKETS.workflows}`, { filter_subjects: `$KV.${BUCKETS.workflows}.${this.summaryPrefix}>`, deliver_policy: DeliverPolicy.LastPerSubject });
    const summaries: skein.workflow.v1.InstanceSummary[] = [];
    try {
      let pending = (await consumer.info(true)).num_pending;
      while (pending > 0) {
        const batch = await consumer.fetch({ max_messages: Math.min(pending, 1024), expires: 5000 });
        let got = 0;
        for await (const message of batch) {
          got++;
          pending = message.info.pending;
          const operation = message.headers?.get('KV-Operation');
          if (!operation && message.data.length > 0) summaries.push(InstanceSummary.decode(message.data));
        }
        if (got === 0) break;
      }
    } finally {
      await consumer.delete().catch(() => false);
    }
    return summaries;
  }
}

/** Creates a stream, or leaves an existing one of that name as it is. */
async function addStream(jsm: JetStreamManager, config: Parameters<JetStreamManager['streams']['add']>[0]): Promise<void> {
  try {
    await jsm.streams.add(config);
  } catch (error) {
    // Created by another sidecar first, perhaps with other settings an operator chose.
    if (isStreamNameInUse(error)) return;
    throw error;
  }
}
