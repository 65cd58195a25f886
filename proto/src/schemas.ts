import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Resource kinds whose JSON Schema ships in this package. */
export const RESOURCE_KINDS = ['Configuration'] as const;
/** A resource kind with a schema. */
export type ResourceKind = (typeof RESOURCE_KINDS)[number];

/** Absolute path of the JSON Schema file of `name` (a resource kind, or `run-template`). */
export function schemaPath(name: ResourceKind | 'run-template'): string {
  return fileURLToPath(new URL(`../schemas/${name.toLowerCase()}.schema.json`, import.meta.url));
}

/** The parsed JSON Schema of `name`. */
export function loadSchema(name: ResourceKind | 'run-template'): Record<string, unknown> {
  return JSON.parse(readFileSync(schemaPath(name), 'utf8')) as Record<string, unknown>;
}
