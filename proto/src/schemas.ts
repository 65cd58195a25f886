import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Resource kinds whose JSON Schema ships in this package. */
export const RESOURCE_KINDS = ['Configuration', 'Component', 'MCPToolPolicy', 'HTTPEndpoint', 'Resiliency'] as const;
/** A resource kind with a schema. */
export type ResourceKind = (typeof RESOURCE_KINDS)[number];
/** Every schema shipped here: resource kinds, the run file, and the decision and span events published on the bus. */
export type SchemaName = ResourceKind | 'run-template' | 'decision-event' | 'span-event';

/** Absolute path of the JSON Schema file of `name`. */
export function schemaPath(name: SchemaName): string {
  return fileURLToPath(new URL(`../schemas/${name.toLowerCase()}.schema.json`, import.meta.url));
}

/** The parsed JSON Schema of `name`. */
export function loadSchema(name: SchemaName): Record<string, unknown> {
  return JSON.parse(readFileSync(schemaPath(name), 'utf8')) as Record<string, unknown>;
}
