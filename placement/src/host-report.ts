import type { skein } from '@skein/proto';
import { SkeinError, formatSpiffeId, type SpiffeId } from '@skein/core';
import { normaliseActorTypes, type HostRecord } from './table.js';

const ADDRESS = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):(\d{1,5})$/;
const MAX_ACTOR_TYPES = 1000;
const MAX_NAME = 256;
// Actor types travel in URL paths and log lines; control characters in them are a sign of a broken report.
const CONTROL = /\p{Cc}/u;

/**
 * Validates a host report against the caller's verified identity and turns it into a host record. The namespace and
 * App ID come from the certificate: a report claiming another one is refused, so no sidecar can place itself in
 * another namespace's tables.
 */
export function hostRecordOf(report: skein.placement.v1.IHostReport, peer: SpiffeId): { namespace: string; record: HostRecord } {
  const appId = report.appId ?? '';
  const namespace = report.namespace ?? '';
  if (appId !== peer.appId || namespace !== peer.namespace) {
    throw new SkeinError('ERR_PERMISSION_DENIED', `${formatSpiffeId(peer)} may not report as App ID "${appId}" in namespace "${namespace}"`);
  }
  const address = report.address ?? '';
  const port = Number(ADDRESS.exec(address)?.[1] ?? 0);
  if (port < 1 || port > 65535) throw new SkeinError('ERR_MALFORMED_REQUEST', `address "${address}" is not host:port`);
  const instanceId = report.instanceId ?? '';
  if (instanceId.length === 0 || instanceId.length > MAX_NAME || CONTROL.test(instanceId)) {
    throw new SkeinError('ERR_MALFORMED_REQUEST', 'instance_id must be 1 to 256 printable characters');
  }
  const actorTypes = report.actorTypes ?? [];
  if (actorTypes.length > MAX_ACTOR_TYPES) throw new SkeinError('ERR_MALFORMED_REQUEST', `at most ${MAX_ACTOR_TYPES} actor types per host`);
  for (const actorType of actorTypes) {
    if (actorType.length === 0 || actorType.length > MAX_NAME || CONTROL.test(actorType)) {
      throw new SkeinError('ERR_MALFORMED_REQUEST', `actor type ${JSON.stringify(actorType)} must be 1 to 256 printable characters`);
    }
  }
  return { namespace, record: { address, appId, instanceId, actorTypes: normaliseActorTypes(actorTypes) } };
}
