/** Core NATS subject prefixes. */
export const SUBJECTS = {
  /** `skein.decisions.<namespace>.<appId>`: policy decisions (schema: decision-event.schema.json). */
  decisions: 'skein.decisions',
  /** `skein.spans.<namespace>.<appId>`: finished spans (schema: span-event.schema.json). */
  spans: 'skein.spans',
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
  /** Telemetry stream: decisions and spans (`SUBJECTS.decisions`, `SUBJECTS.spans`), bounded by age and size. */
  telemetry: 'skein-telemetry',
  /** MCP streamable-HTTP sessions: key `<namespace>.<appId>.<hash of the session id>`, value the owning instance id. */
  mcpSessions: 'skein-mcp-sessions',
} as const;

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
