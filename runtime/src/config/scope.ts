/** Which loaded resources a sidecar uses, by Dapr's rules: `metadata.namespace` and `scopes`. Pure. */

/** The fields of a resource that decide whether a sidecar loads it. */
export interface Scoped {
  metadata: { name: string; namespace?: string };
  scopes?: readonly string[];
}

/**
 * True when the sidecar of `appId` in `namespace` uses the resource: its namespace, when set, is the sidecar's, and
 * its `scopes`, when not empty, name the app. Dapr skips other resources silently, and so does Skein.
 */
export function inScope(resource: Scoped, appId: string, namespace: string): boolean {
  if (resource.metadata.namespace !== undefined && resource.metadata.namespace !== namespace) return false;
  return !resource.scopes || resource.scopes.length === 0 || resource.scopes.includes(appId);
}
