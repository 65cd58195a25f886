/**
 * Help an editor gives while a resource is typed: the documentation of the field under the cursor (hover) and the
 * fields that may be written where the cursor is (completion), both read from the JSON Schemas in `@skein/proto`
 * (the same files the runtime validates with). Pure apart from reading those schemas once.
 */
import { isMap, isPair, isScalar, isSeq, type Node as YamlNode } from 'yaml';
import { COMPONENT_METADATA_TYPES, RESOURCE_KINDS, loadComponentMetadataSchema, loadSchema, type ComponentMetadataType } from '@skein/proto';
import { documentKind, readDocuments, type DocumentKind } from './check.js';

/** A JSON Schema, as far as help reads it. */
interface Schema {
  $ref?: string;
  description?: string;
  type?: string | string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: boolean | Schema;
  required?: string[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  examples?: unknown[];
  allOf?: Schema[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  definitions?: Record<string, Schema>;
}

const schemas = new Map<string, Schema>();

function schemaOf(kind: DocumentKind): Schema {
  let schema = schemas.get(kind);
  if (!schema) {
    schema = loadSchema(kind);
    schemas.set(kind, schema);
  }
  return schema;
}

/** Follows a local `$ref` (`#/definitions/x`) of `root`; other references are not followed. */
function resolve(schema: Schema, root: Schema): Schema {
  let current = schema;
  for (let hops = 0; current.$ref !== undefined && hops < 16; hops += 1) {
    const match = /^#\/definitions\/(.+)$/.exec(current.$ref);
    const target = match ? root.definitions?.[match[1] as string] : undefined;
    if (!target) break;
    current = { ...target, ...(current.description ? { description: current.description } : {}) };
  }
  return current;
}

/** The schemas a value at this place must match: the schema and its `allOf`/`anyOf`/`oneOf` branches. */
function branches(schema: Schema, root: Schema): Schema[] {
  const resolved = resolve(schema, root);
  return [resolved, ...[...(resolved.allOf ?? []), ...(resolved.anyOf ?? []), ...(resolved.oneOf ?? [])].flatMap((branch) => branches(branch, root))];
}

/** The schemas of the field `segments` of a document of `kind`, following properties and items. */
function schemasAt(kind: DocumentKind, segments: readonly string[]): Schema[] {
  const root = schemaOf(kind);
  let current: Schema[] = [root];
  for (const segment of segments) {
    const next: Schema[] = [];
    for (const schema of current.flatMap((candidate) => branches(candidate, root))) {
      const property = schema.properties?.[segment];
      if (property) next.push(property);
      else if (/^\d+$/.test(segment) && schema.items) next.push(schema.items);
      else if (typeof schema.additionalProperties === 'object' && !schema.properties?.[segment]) next.push(schema.additionalProperties);
    }
    if (next.length === 0) return [];
    current = next;
  }
  return current.flatMap((schema) => branches(schema, root));
}

/** What the documentation of one field says. */
export interface FieldHelp {
  /** JSON Pointer of the field. */
  readonly path: string;
  readonly kind: DocumentKind;
  readonly description: string;
  /** Allowed values, when the schema lists them. */
  readonly values?: readonly string[];
  readonly defaultValue?: string;
}

/** A field that may be written at a place, for completion. */
export interface FieldSuggestion {
  readonly name: string;
  readonly description: string;
  readonly required: boolean;
}

function describe(kind: DocumentKind, segments: readonly string[], componentType: string | undefined): FieldHelp | undefined {
  const found = schemasAt(kind, segments);
  const path = `/${segments.join('/')}`;
  const metadataName = kind === 'Component' && segments.length === 4 && segments[1] === 'metadata' && segments[3] === 'name';
  const description = found.map((schema) => schema.description).find((text) => text !== undefined);
  const values = [...new Set(found.flatMap((schema) => [...(schema.enum ?? []), ...(schema.const !== undefined ? [schema.const] : [])]).map(String))];
  if (metadataName && componentType && (COMPONENT_METADATA_TYPES as readonly string[]).includes(componentType)) {
    const names = metadataNames(componentType as ComponentMetadataType);
    return { path, kind, description: `${description ?? 'Setting name.'} Settings of ${componentType}: ${names.join(', ')}.`, values: names };
  }
  if (description === undefined) return undefined;
  const defaultValue = found.map((schema) => schema.default).find((value) => value !== undefined);
  return { path, kind, description, ...(values.length > 0 ? { values } : {}), ...(defaultValue !== undefined ? { defaultValue: JSON.stringify(defaultValue) } : {}) };
}

/** The setting names a Component type's metadata schema knows. */
function metadataNames(type: ComponentMetadataType): string[] {
  const names = new Set<string>();
  const walk = (schema: unknown): void => {
    if (!schema || typeof schema !== 'object') return;
    const record = schema as Record<string, unknown>;
    const name = (record['properties'] as Record<string, { enum?: unknown[] }> | undefined)?.['name'];
    for (const value of name?.enum ?? []) names.add(String(value));
    for (const inner of Object.values(record)) if (typeof inner === 'object') walk(inner);
  };
  walk(loadComponentMetadataSchema(type));
  return [...names];
}

/** The document of `text` holding `offset`, parsed, with its kind. */
function documentAt(text: string, offset: number): { root: YamlNode | null; kind: DocumentKind; value: unknown } | undefined {
  const document = readDocuments(text).find(({ range }) => offset >= range[0] && offset <= range[2]);
  const kind = document ? documentKind(document.value) : undefined;
  return document && kind ? { root: document.contents, kind, value: document.value } : undefined;
}

/** The path of the key or value holding `offset`, walking the YAML nodes. */
function pathAt(root: YamlNode | null, offset: number): string[] | undefined {
  const inside = (node: unknown): boolean => {
    const range = (node as YamlNode | undefined)?.range;
    return range !== undefined && range !== null && offset >= range[0] && offset <= range[1];
  };
  const segments: string[] = [];
  let node: unknown = root;
  for (;;) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isPair(item) && (inside(item.key) || inside(item.value)));
      if (!pair || !isScalar(pair.key)) return segments.length > 0 ? segments : undefined;
      segments.push(String(pair.key.value));
      if (inside(pair.key)) return segments;
      node = pair.value;
    } else if (isSeq(node)) {
      const index = node.items.findIndex((item) => inside(item));
      if (index === -1) return segments;
      segments.push(String(index));
      node = node.items[index];
    } else {
      return segments;
    }
  }
}

function componentTypeOf(value: unknown): string | undefined {
  const type = (value as { spec?: { type?: unknown } } | undefined)?.spec?.type;
  return typeof type === 'string' ? type : undefined;
}

/** The documentation of the field at `offset` of `text` (a key or its value), or undefined where there is none. */
export function fieldHelpAt(text: string, offset: number): FieldHelp | undefined {
  const found = documentAt(text, offset);
  if (!found) return undefined;
  const segments = pathAt(found.root, offset);
  return segments ? describe(found.kind, segments, componentTypeOf(found.value)) : undefined;
}

/** One line as the indentation reader sees it: where its list dash and its key are, and the key. */
function lineShape(entry: string): { blank: boolean; dash: number | undefined; keyCol: number; key: string | undefined } {
  const match = /^( *)(- )?(.*)$/.exec(entry) as RegExpExecArray;
  const spaces = (match[1] as string).length;
  const rest = match[3] as string;
  const key = /^([^\s:#'"][^:#]*?)\s*:(\s|$)/.exec(rest)?.[1];
  return { blank: rest.trim() === '' && match[2] === undefined ? true : rest.trimStart().startsWith('#'), dash: match[2] ? spaces : undefined, keyCol: spaces + (match[2] ? 2 : 0), key };
}

/**
 * The mapping a new key typed on `line` (from 0) would belong to: the keys of the lines above with less
 * indentation, read from the text itself since the line being typed rarely parses. List items are `0` (every item
 * of a list has the same schema).
 */
export function parentPathOfLine(text: string, line: number): string[] {
  const lines = text.split('\n');
  const current = lineShape(lines[line] ?? '');
  const segments: string[] = [];
  let column = current.keyCol;
  if (current.dash !== undefined) {
    segments.unshift('0');
    column = current.dash;
  }
  for (let index = line - 1; index >= 0; index -= 1) {
    const entry = lines[index] as string;
    if (entry.trim() === '---') break;
    const shape = lineShape(entry);
    if (shape.blank || shape.keyCol > column) continue;
    if (shape.keyCol < column && shape.key !== undefined) segments.unshift(shape.key);
    if (shape.dash !== undefined) {
      segments.unshift('0');
      column = shape.dash;
    } else if (shape.keyCol < column) {
      column = shape.keyCol;
    }
    if (column === 0 && shape.dash === undefined) break;
  }
  return segments;
}

/** The fields that may be written as a new key on `line` of `text`, those not written there yet. */
export function fieldSuggestionsAt(text: string, line: number, kindHint?: DocumentKind): FieldSuggestion[] {
  const lines = text.split('\n');
  const offset = lines.slice(0, line).reduce((sum, entry) => sum + entry.length + 1, 0);
  const found = documentAt(text, offset);
  const kind = found?.kind ?? kindHint ?? kindWrittenAbove(lines, line);
  if (!kind) return [];
  const parent = parentPathOfLine(text, line);
  const root = schemaOf(kind);
  const candidates = schemasAt(kind, parent);
  const required = new Set(candidates.flatMap((schema) => schema.required ?? []));
  const seen = new Map<string, FieldSuggestion>();
  for (const schema of candidates) {
    for (const [name, property] of Object.entries(schema.properties ?? {})) {
      if (seen.has(name)) continue;
      const description = resolve(property, root).description ?? property.description ?? '';
      seen.set(name, { name, description, required: required.has(name) });
    }
  }
  return [...seen.values()];
}

/**
 * The values that may follow `key:` on `line` of `text`: a schema's `enum`/`const` values, `true`/`false` for a
 * boolean, and the supported kinds for a document's `kind`.
 */
export function valueSuggestionsAt(text: string, line: number, key: string): string[] {
  const lines = text.split('\n');
  const parent = parentPathOfLine(text, line);
  if (key === 'kind' && parent.length === 0) return [...RESOURCE_KINDS];
  const kind = kindWrittenAbove(lines, line);
  if (!kind) return [];
  const found = schemasAt(kind, [...parent, key]);
  const values = new Set<string>();
  for (const schema of found) {
    for (const value of [...(schema.enum ?? []), ...(schema.const !== undefined ? [schema.const] : [])]) values.add(String(value));
    if (schema.type === 'boolean') ['true', 'false'].forEach((value) => values.add(value));
  }
  return [...values];
}

/** The `kind:` of the document `line` is in, read from the lines themselves. */
function kindWrittenAbove(lines: readonly string[], line: number): DocumentKind | undefined {
  for (let index = line; index >= 0; index -= 1) {
    const entry = lines[index] ?? '';
    if (entry.trim() === '---' && index !== line) break;
    const match = /^kind:\s*([A-Za-z]+)\s*$/.exec(entry);
    if (match) return documentKind({ kind: match[1] });
  }
  return undefined;
}
