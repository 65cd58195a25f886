/**
 * The ring algorithm is shared by placement (which builds the tables) and every sidecar (which looks actors up in
 * them), so it lives in `@skein/core` as a pure module; placement re-exports it for its own modules and for
 * `@skein/placement/hashing`.
 */
export { DEFAULT_VIRTUAL_NODES, HashRing, ActorPlacement, ringPosition, virtualNodeKey, ringSignature, type RingMember, type TableSpec } from '@skein/core';
