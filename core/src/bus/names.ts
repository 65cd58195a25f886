/** Core NATS subject prefixes. */
export const SUBJECTS = {
  /** `skein.decisions.<namespace>.<appId>`: policy decisions (schema: decision-event.schema.json). */
  decisions: 'skein.decisions',
  /** `skein.spans.<namespace>.<appId>`: finished spans (schema: span-event.schema.json). */
  spans: 'skein.spans',
  /** `skein.workflows.<namespace>.<appId>`: workflow lifecycle events (schema: workflow-event.schema.json). */
  workflows: 'skein.workflows',
} as const;

/**
 * Every JetStream bucket and stream Skein uses, in one table. Code refers to these names, never to literals.
 */
export const BUCKETS = {
  /** App instances: key `<namespace>.<appId>.<instanceId>`, value an `InstanceRecord`, refreshed by heartbeat. */
  discovery: 'skein-discovery',
  /** Placement: key `leader` (the leader lease) and `members.<namespace>` (the last disseminated membership). */
  placement: 'skein-placement',
  /** Actor state: key `<namespace>.<type>.<id>` (tokens base64url), value every key of the actor as one JSON object. */
  actorState: 'skein-actor-state',
  /** Actor reminders: key `<namespace>.<type>.<id>.<name>` (tokens base64url), value the reminder and its progress. */
  actorReminders: 'skein-actor-reminders',
  /** Telemetry stream: decisions, spans and workflow events (the `SUBJECTS` families), bounded by age and size. */
  telemetry: 'skein-telemetry',
  /** MCP streamable-HTTP sessions: key `<namespace>.<appId>.<hash of the session id>`, value the owning instance id. */
  mcpSessions: 'skein-mcp-sessions',
  /** Workflow instance summaries: key `<namespace>.<appId>.<instanceId>`, value an `InstanceSummary` (protobuf). */
  workflows: 'skein-workflows',
  /** Workflow histories stream: subject `skein.wfh.<namespace>.<appId>.<instanceId>`, one `HistoryRecord` per message. */
  workflowHistory: 'skein-workflow-history',
  /** Workflow activity work-queue stream: subject `skein.wfa.<namespace>.<appId>`, one `ActivityRequest` per message. */
  workflowActivities: 'skein-workflow-activities',
} as const;

/** A KV bucket of the table (the telemetry and workflow streams are streams, not buckets). */
export type BucketName = Exclude<keyof typeof BUCKETS, 'telemetry' | 'workflowHistory' | 'workflowActivities'>;

/** How a bucket is created: the options live beside its name so every process creates it the same way. */
export interface BucketOptions {
  /** Values kept per key. */
  history: number;
  /** Entries expire this long after their last write; undefined keeps them. */
  ttlMs?: number;
  /** JetStream API timeout for this bucket's operations, where the default (5 s) is too long to wait. */
  apiTimeoutMs?: number;
}

/** MCP session owners are forgotten a day after their last use. */
export const MCP_SESSION_TTL_MS = 24 * 3_600_000;

/** The creation options of every KV bucket. */
export const BUCKET_OPTIONS: Readonly<Record<BucketName, Readonly<BucketOptions>>> = Object.freeze({
  // Entries expire server-side a while after their last heartbeat, so a crashed instance leaves no residue; the
  // sidecar sets the TTL from its heartbeat settings.
  discovery: { history: 1, ttlMs: 10_000 },
  // A leader that cannot reach the bucket within 2 s must learn so before its lease runs out.
  placement: { history: 1, apiTimeoutMs: 2000 },
  actorState: { history: 1 },
  actorReminders: { history: 1 },
  mcpSessions: { history: 1, ttlMs: MCP_SESSION_TTL_MS },
  workflows: { history: 1 },
});

/** The discovery key of one instance (App IDs and namespaces never contain '.', NATS's token separator). */
export function discoveryKey(namespace: string, appId: string, instanceId: string): string {
  return `${namespace}.${appId}.${instanceId}`;
}

/** Subject every decision of one app's sidecar is published on (`DecisionEvent` JSON). */
export function decisionSubject(namespace: string, appId: string): string {
  return `${SUBJECTS.decisions}.${namespace}.${appId}`;
}

/** Subject every finished span of one app's sidecar is published on (`SpanEvent` JSON). */
export function spanSubject(namespace: string, appId: string): string {
  return `${SUBJECTS.spans}.${namespace}.${appId}`;
}

/** Subject every workflow event of one app's sidecar is published on (`WorkflowEvent` JSON). */
export function workflowEventSubject(namespace: string, appId: string): string {
  return `${SUBJECTS.workflows}.${namespace}.${appId}`;
}
