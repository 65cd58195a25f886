/** Skein placement: the pure consistent-hash module, table computation, and the placement service. */
export { DEFAULT_VIRTUAL_NODES, HashRing, ActorPlacement, ringPosition, virtualNodeKey, ringSignature, type RingMember, type TableSpec } from './hashing.js';
export { computeTable, changedActorTypes, type HostRecord, type PlacementTable } from './table.js';
export { Placement, PLACEMENT_DEFAULTS, type PlacementOptions } from './placement.js';
export { placementSpiffeId, mintFromHome, readFromFiles, CONTROL_PLANE_NAMESPACE } from './identity.js';
export { LEADER_METADATA, ERROR_CODE_METADATA, type ServingTls } from './server.js';
