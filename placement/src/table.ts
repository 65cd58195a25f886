import { ringSignature, type RingMember, type TableSpec } from './hashing.js';

/**
 * Placement tables from membership. Pure: the service hands in the hosts it knows and gets the table to
 * disseminate and the actor types whose ring changed (the ones a round must lock).
 */

/** What placement knows of one host of a namespace. */
export interface HostRecord {
  address: string;
  appId: string;
  instanceId: string;
  /** Sorted and unique. */
  actorTypes: readonly string[];
}

/** A complete table of one namespace, sorted so that equal membership gives an equal table. */
export interface PlacementTable extends TableSpec {
  rings: ReadonlyArray<{ actorType: string; members: readonly RingMember[] }>;
}

function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The table of `hosts`: for every actor type hosted anywhere, its hosts sorted by address. */
export function computeTable(hosts: Iterable<HostRecord>, virtualNodes: number): PlacementTable {
  const byType = new Map<string, RingMember[]>();
  for (const host of hosts) {
    for (const actorType of host.actorTypes) {
      let members = byType.get(actorType);
      if (!members) byType.set(actorType, (members = []));
      members.push({ address: host.address, appId: host.appId });
    }
  }
  const rings = [...byType.entries()]
    .sort(([a], [b]) => byString(a, b))
    .map(([actorType, members]) => ({ actorType, members: members.sort((a, b) => byString(a.address, b.address)) }));
  return { virtualNodes, rings };
}

/** Actor types whose ring differs between two tables (all of them when the geometry changed), sorted. */
export function changedActorTypes(previous: PlacementTable | undefined, next: PlacementTable): string[] {
  const before = new Map((previous?.rings ?? []).map((ring) => [ring.actorType, ringSignature(ring.members)]));
  const after = new Map(next.rings.map((ring) => [ring.actorType, ringSignature(ring.members)]));
  const geometryChanged = previous !== undefined && previous.virtualNodes !== next.virtualNodes;
  const changed = new Set<string>();
  for (const [actorType, signature] of after) if (geometryChanged || before.get(actorType) !== signature) changed.add(actorType);
  for (const actorType of before.keys()) if (!after.has(actorType)) changed.add(actorType);
  return [...changed].sort(byString);
}

/** Normalises reported actor types: trimmed of duplicates and sorted, so reports compare by value. */
export function normaliseActorTypes(actorTypes: readonly string[]): string[] {
  return [...new Set(actorTypes)].sort(byString);
}

/** True when two sorted string lists are equal. */
export function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}
