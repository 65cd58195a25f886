/**
 * Every JetStream bucket and stream Skein uses, in one table. Code refers to these names, never to literals.
 */
export const BUCKETS = {
  /** App instances: key `<namespace>.<appId>.<instanceId>`, value an `InstanceRecord`, refreshed by heartbeat. */
  discovery: 'skein-discovery',
} as const;

/** The discovery key of one instance (App IDs and namespaces never contain '.', NATS's token separator). */
export function discoveryKey(namespace: string, appId: string, instanceId: string): string {
  return `${namespace}.${appId}.${instanceId}`;
}
