/** Skein contracts: generated protobuf types, gRPC service definitions and resource schemas. */
export { skein, dapr, google } from './gen/skein.js';
export { sentryService, invocationService, actorService, placementService, daprService } from './services.js';
export { RESOURCE_KINDS, schemaPath, loadSchema } from './schemas.js';
export type { ResourceKind } from './schemas.js';
export { DEFAULT_VIRTUAL_NODES, HashRing, ActorPlacement, ringPosition, virtualNodeKey, ringSignature, type RingMember, type TableSpec } from '@skein/core';
