import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Resource kinds whose JSON Schema ships in this package. */
export const RESOURCE_KINDS = ['Configuration', 'Component', 'MCPToolPolicy', 'HTTPEndpoint', 'Resiliency', 'WorkflowAccessPolicy', 'MCPServer'] as const;
/** A resource kind with a schema. */
export type ResourceKind = (typeof RESOURCE_KINDS)[number];
/** Every schema shipped here: resource kinds, the run file, and the decision, span and workflow events published on the bus. */
export type SchemaName = ResourceKind | 'run-template' | 'decision-event' | 'span-event' | 'workflow-event';

/**
 * Component types whose `spec.metadata` has a schema of its own (`schemas/components/<type>.schema.json`). The
 * Component schema applies the right one by `spec.type`, so an editor and `skein run` check the same settings.
 */
export const COMPONENT_METADATA_TYPES = ['middleware.http.bearer', 'middleware.http.oauth2clientcredentials', 'secretstores.local.file'] as const;
/** A Component type with a metadata schema. */
export type ComponentMetadataType = (typeof COMPONENT_METADATA_TYPES)[number];

/** Absolute path of the JSON Schema file of `name`. */
export function schemaPath(name: SchemaName): string {
  return fileURLToPath(new URL(`../schemas/${name.toLowerCase()}.schema.json`, import.meta.url));
}

/** The parsed JSON Schema of `name`. */
export function loadSchema(name: SchemaName): Record<string, unknown> {
  return JSON.parse(readFileSync(schemaPath(name), 'utf8')) as Record<string, unknown>;
}

/** Absolute path of the JSON Schema of the `spec.metadata` of a Component of `type`. */
export function componentMetadataSchemaPath(type: ComponentMetadataType): string {
  return fileURLToPath(new URL(`../schemas/components/${type}.schema.json`, import.meta.url));
}

/**
 * The parsed metadata schema of `type`. It refers to the Component schema (for the shape of one entry) and the
 * Component schema refers to it, both by `$id`: a validator needs every one of them added before it compiles.
 */
export function loadComponentMetadataSchema(type: ComponentMetadataType): Record<string, unknown> {
  return JSON.parse(readFileSync(componentMetadataSchemaPath(type), 'utf8')) as Record<string, unknown>;
}
