/**
 * The ring algorithm is part of the placement wire contract, so it lives in `@skein/proto` where sidecars use the
 * same code; placement re-exports it for its own modules and for `@skein/placement/hashing`.
 */
export { DEFAULT_VIRTUAL_NODES, HashRing, ActorPlacement, ringPosition, virtualNodeKey, ringSignature, type RingMember, type TableSpec } from '@skein/proto';
