/** Skein contracts: generated protobuf types, gRPC service definitions, resource schemas and their generated types. */
export { skein, dapr, google } from './gen/skein.js';
export { sentryService, invocationService, actorService, placementService, daprService, taskHubService } from './services.js';
export * as durabletask from './durabletask.js';
export { RESOURCE_KINDS, COMPONENT_METADATA_TYPES, schemaPath, loadSchema, componentMetadataSchemaPath, loadComponentMetadataSchema } from './schemas.js';
export type { ResourceKind, ComponentMetadataType, SchemaName } from './schemas.js';
export type * from './gen/schemas/index.js';
