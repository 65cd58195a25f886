/** Core NATS subject prefixes. */
export const SUBJECTS = {
  /** `skein.decisions.<namespace>.<appId>`: policy decisions (schema: decision-event.schema.json). */
  decisions: 'skein.decisions',
} as const;

/**
 * Every JetStream bucket and stream Skein uses, in one table. Code refers to these names, never to literals.
 */
export const BUCKETS = {
  /** App instances: key `<namespace>.<appId>.<instanceId>`, value an `InstanceRecord`, refreshed by heartbeat. */
  discovery: 'skein-discovery',
  /** Placement: key `leader` (the leader lease) and `members.<namespace>` (the last disseminated membership). */
  placement: 'skein-placement',
} as const;

/** The discovery key of one instance (App IDs and namespaces never contain '.', NATS's token separator). */
export function discoveryKey(namespace: string, appId: string, instanceId: string): string {
  return `${namespace}.${appId}.${instanceId}`;
}

/** Subject every decision of one app's sidecar is published on (`DecisionEvent` JSON). */
export function decisionSubject(namespace: string, appId: string): string {
  return `${SUBJECTS.decisions}.${namespace}.${appId}`;
}
