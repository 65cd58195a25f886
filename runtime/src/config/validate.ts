import { AjvSchemaValidator, ConfigError, type ErrorObject, type ValidationIssue } from '@skein/core';
import { COMPONENT_METADATA_TYPES, loadComponentMetadataSchema, loadSchema, type ResourceKind } from '@skein/proto';

/** Name of the whole Component schema, `spec.metadata` of each type included. */
const COMPONENT_METADATA = 'Component+metadata';

/**
 * The Component schema checks `spec.metadata` against the schema of its `spec.type` (`spec.allOf`, by `$id`).
 * Ajv runs `allOf` before `properties`, so a misspelt field would be reported as missing metadata: a Component is
 * first checked against the schema without that dispatch, then against the whole schema, which an editor uses too.
 */
function schemaOf(name: string): object {
  if (name === COMPONENT_METADATA) return loadSchema('Component');
  const schema = loadSchema(name as ResourceKind | 'run-template');
  if (name !== 'Component') return schema;
  const shape = structuredClone(schema) as { $id?: string; properties: { spec: { allOf?: unknown } } };
  delete shape.$id;
  delete shape.properties.spec.allOf;
  return shape;
}

const METADATA_ENTRY = /^\/spec\/metadata\/\d+$/;
const METADATA_NAME = /^\/spec\/metadata\/\d+\/name$/;
const METADATA_VALUE = /^\/spec\/metadata\/\d+\/value$/;

/** The names a `contains` subschema asks for (`const` or `enum` of its `name`). */
function containedNames(schema: unknown): string[] {
  const name = (schema as { properties?: { name?: { const?: unknown; enum?: unknown[] } } } | undefined)?.properties?.name;
  if (typeof name?.const === 'string') return [name.const];
  return (name?.enum ?? []).map(String);
}

/** How a failed choice between fields begins. */
const ONE_OF_REASON = 'needs exactly one of';

/** The field each branch of a `oneOf` asks for, when every branch asks for exactly one (`value` | `secretKeyRef` | ...). */
function oneOfFields(schema: unknown): string[] | undefined {
  if (!Array.isArray(schema)) return undefined;
  const fields = schema.map((branch) => (branch as { required?: unknown[] } | undefined)?.required);
  return fields.every((required) => required?.length === 1 && typeof required[0] === 'string') ? fields.map((required) => String(required?.[0])) : undefined;
}

/** Turns an ajv error on a Component's `spec.metadata` into the sentence the component compilers use. */
function metadataReason(error: ErrorObject, document: unknown): string | undefined {
  if (error.keyword === 'oneOf') {
    const fields = oneOfFields(error.schema);
    if (fields) return `${ONE_OF_REASON} ${fields.map((field) => `"${field}"`).join(', ')}`;
  }
  const type = (document as { spec?: { type?: unknown } } | undefined)?.spec?.type;
  if (typeof type !== 'string') return undefined;
  if (error.keyword === 'enum' && METADATA_NAME.test(error.instancePath)) {
    const allowed = ((error.params as { allowedValues?: unknown[] }).allowedValues ?? []).map(String);
    return `unknown metadata ${JSON.stringify(error.data)} for ${type} (known: ${allowed.join(', ')})`;
  }
  if (error.keyword === 'contains' && error.instancePath === '/spec/metadata') {
    const [name, ...aliases] = containedNames(error.schema);
    return `missing required metadata "${name ?? '?'}"${aliases.length > 0 ? ` (or ${aliases.map((alias) => `"${alias}"`).join(', ')})` : ''}`;
  }
  const missing = (error.params as { missingProperty?: string }).missingProperty;
  if (error.keyword === 'required' && error.instancePath === '/spec' && missing === 'metadata') return `${type} needs spec.metadata (its required settings)`;
  if (error.keyword === 'required' && METADATA_ENTRY.test(error.instancePath) && missing === 'value') {
    return `${type} metadata ${JSON.stringify((error.data as { name?: unknown }).name)} needs a plain value`;
  }
  const described = (error.parentSchema as { description?: unknown } | undefined)?.description;
  if ((error.keyword === 'pattern' || error.keyword === 'type' || error.keyword === 'enum') && METADATA_VALUE.test(error.instancePath) && typeof described === 'string') {
    return `${JSON.stringify(error.data)} is not valid here: expected ${described.charAt(0).toLowerCase()}${described.slice(1)}`;
  }
  return undefined;
}

const validator = new AjvSchemaValidator(schemaOf, {
  references: COMPONENT_METADATA_TYPES.map((type) => loadComponentMetadataSchema(type)),
  explain: metadataReason,
});

/**
 * The issue to report. A field that must have exactly one of some fields fails each branch first ("missing
 * required field ..."), then the choice itself: the choice, naming every field, is what the author needs to read.
 */
function firstIssue(issues: readonly ValidationIssue[]): ValidationIssue | undefined {
  const [first] = issues;
  return issues.find((issue) => issue.path === first?.path && issue.reason.startsWith(ONE_OF_REASON)) ?? first;
}

/** Validates `value` against the schema of `name`; throws a ConfigError naming file, path and reason. */
export function validateAgainstSchema<T>(name: ResourceKind | 'run-template', value: unknown, file: string): T {
  const issue = firstIssue(validator.validate(name, value));
  if (issue) throw new ConfigError(file, issue.path, issue.reason);
  if (name === 'Component') {
    const [metadataIssue] = validator.validate(COMPONENT_METADATA, value);
    if (metadataIssue) throw new ConfigError(file, metadataIssue.path, metadataIssue.reason);
  }
  return value as T;
}

/** Deep-freezes a validated value so core code cannot change configuration after load. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
