/**
 * Checking resource YAML as an editor needs it: every document of a text, each checked exactly as the sidecar
 * would check it at load (its kind's schema, then the compile of its kind: CEL conditions, globs, durations, rule
 * names), with the problem placed on the exact line and column of the field it is about. Pure: text in,
 * diagnostics out, no files and no I/O, so the editor and its tests call the same code the runtime loads with.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node as YamlNode } from 'yaml';
import { RESOURCE_KINDS, type ResourceKind } from '@skein/proto';
import { ConfigError } from '@skein/core';
import { validateAgainstSchema } from './validate.js';
import { checkMcpServerResource } from '../mcp/mcpserver/mcp-server-spec.js';
import { compileToolPolicy, type CompiledToolPolicy } from '../policy/tool-policy.js';
import { compileResiliency } from '../resiliency/resiliency-config.js';
import { compileAccessControl } from '../acl/access-control.js';
import { compileWorkflowAccess } from '../workflow/access-policy.js';
import type { LoadedResource } from './load.js';
import type { ConfigurationResource, MCPServerResource, MCPToolPolicyResource, WorkflowAccessPolicyResource } from './types.js';

/** A position in a text: line and column, both from 0 (as editors count). */
export interface TextPosition {
  readonly line: number;
  readonly character: number;
}

/** One problem of a resource text. */
export interface ResourceDiagnostic {
  /** Where the problem is: the key of an unknown or wrong field, the value of a bad one. */
  readonly range: { readonly start: TextPosition; readonly end: TextPosition };
  /** What is wrong, in the words the runtime would use at load. */
  readonly message: string;
  /** JSON Pointer of the field in its document (`/` for the document itself). */
  readonly path: string;
  /** The document's kind, when it names a supported one. */
  readonly kind?: string;
  /** Which document of the text (from 0). */
  readonly document: number;
}

/** What a document of the text is checked as. */
export type DocumentKind = ResourceKind | 'run-template';

/** The kind a document's value says it is: its `kind`, or a run file (`version` and `apps`, no kind). */
export function documentKind(value: unknown): DocumentKind | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  if (typeof record['kind'] === 'string') return (RESOURCE_KINDS as readonly string[]).includes(record['kind']) ? (record['kind'] as ResourceKind) : undefined;
  return 'version' in record && 'apps' in record ? 'run-template' : undefined;
}

/** Splits a JSON Pointer into its segments. */
export function pointerSegments(path: string): string[] {
  if (path === '' || path === '/') return [];
  return path.replace(/^\//, '').split('/').map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'));
}

type Span = readonly [number, number];

/**
 * The text range of the field `segments` points at in `root`: the value of the deepest node that exists, or for
 * the last segment being a key of a mapping, that key (an unknown field is marked on its name). A pointer into
 * nothing (a missing required field) marks the key of the nearest mapping that exists. With `markKey`, a field
 * that exists is marked on its name rather than its value (an unknown field).
 */
export function rangeOf(root: YamlNode | null | undefined, segments: readonly string[], text: string, markKey = false): Span {
  let node: unknown = root;
  let keySpan: Span | undefined;
  for (const [index, segment] of segments.entries()) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === segment);
      if (!pair) break;
      keySpan = isScalar(pair.key) && pair.key.range ? [pair.key.range[0], pair.key.range[1]] : keySpan;
      if (markKey && index === segments.length - 1 && keySpan) return keySpan;
      if (pair.value === null || pair.value === undefined) return keySpan ?? [0, 0];
      node = pair.value;
    } else if (isSeq(node)) {
      const item = node.items[Number(segment)];
      if (item === undefined || !/^\d+$/.test(segment)) break;
      keySpan = undefined;
      node = item;
    } else {
      break;
    }
  }
  const range = (node as YamlNode | undefined)?.range;
  // A mapping or a list is long; its key (or its first line) says where it is without painting it all.
  if ((isMap(node) || isSeq(node)) && keySpan) return keySpan;
  if (range) {
    if (!isMap(node) && !isSeq(node)) return [range[0], range[1]];
    // A collection without a key (the document, a list item): its first line.
    const newline = text.indexOf('\n', range[0]);
    return [range[0], Math.min(range[1], newline === -1 ? text.length : newline)];
  }
  return keySpan ?? [0, 0];
}

/**
 * What a sidecar checks of one document beyond its schema, without files, secrets or the network: the compile of
 * its kind. Throws the ConfigError the runtime would throw at load.
 */
function compileDocument(kind: DocumentKind, value: unknown, file: string): void {
  switch (kind) {
    case 'MCPToolPolicy':
      compileToolPolicy(value as MCPToolPolicyResource, file);
      return;
    case 'MCPServer':
      checkMcpServerResource(value as MCPServerResource, file);
      return;
    case 'WorkflowAccessPolicy':
      compileWorkflowAccess([{ resource: value as WorkflowAccessPolicyResource, file }]);
      return;
    case 'Configuration':
      compileAccessControl((value as ConfigurationResource).spec?.accessControl, file);
      return;
    case 'Resiliency': {
      const resource = value as { metadata: { namespace?: string }; scopes?: string[] };
      compileResiliency({ appId: resource.scopes?.[0] ?? '', namespace: resource.metadata.namespace ?? 'default', resources: [{ file, kind: 'Resiliency', value } as LoadedResource] });
      return;
    }
    default:
      return;
  }
}

/** The problem a ConfigError names, or undefined for anything else (a bug, rethrown). */
function configProblem(error: unknown): { path: string; reason: string } | undefined {
  if (!(error instanceof ConfigError)) return undefined;
  const path = error.location?.path ?? '/';
  const prefix = `${error.location?.file ?? ''}: ${path || '/'}: `;
  return { path, reason: error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message };
}

/** File name the checks put in their messages; stripped again, since the editor shows the file itself. */
const IN_EDITOR = '<document>';

/**
 * Every problem of a resource text, one per document at most (the first the runtime would report), each at its
 * exact range. A text with no problem gives `[]`: the runtime would load it.
 */
export function checkResourceText(text: string): ResourceDiagnostic[] {
  const lines = new LineCounter();
  const documents: Document[] = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false });
  const position = (offset: number): TextPosition => {
    const { line, col } = lines.linePos(Math.max(0, Math.min(offset, text.length)));
    return { line: line - 1, character: col - 1 };
  };
  const diagnostics: ResourceDiagnostic[] = [];
  documents.forEach((document, index) => {
    const at = (span: Span, message: string, path: string, kind?: string): void => {
      diagnostics.push({ range: { start: position(span[0]), end: position(Math.max(span[1], span[0])) }, message, path, document: index, ...(kind ? { kind } : {}) });
    };
    const syntax = document.errors[0];
    if (syntax) {
      at([syntax.pos[0], syntax.pos[1]], `YAML syntax error: ${syntax.message.split('\n')[0] ?? ''}`, '/');
      return;
    }
    let value: unknown;
    try {
      value = document.toJS({ maxAliasCount: 100 });
    } catch (error) {
      at(rangeOf(document.contents, [], text), `YAML aliases cannot be resolved: ${(error as Error).message}`, '/');
      return;
    }
    if (value === null || value === undefined) return;
    const root = document.contents;
    if (typeof value !== 'object' || Array.isArray(value)) {
      at(rangeOf(root, [], text), 'a resource must be a YAML mapping', '/');
      return;
    }
    const written = (value as { kind?: unknown }).kind;
    const kind = documentKind(value);
    if (!kind) {
      if (written === undefined) at(rangeOf(root, [], text), 'missing required field "kind"', '/kind');
      else at(rangeOf(root, ['kind'], text), `kind ${JSON.stringify(written)} is not supported (supported: ${RESOURCE_KINDS.join(', ')})`, '/kind');
      return;
    }
    try {
      validateAgainstSchema(kind, value, IN_EDITOR);
      compileDocument(kind, value, IN_EDITOR);
    } catch (error) {
      const problem = configProblem(error);
      if (!problem) throw error;
      at(rangeOf(root, pointerSegments(problem.path), text, problem.reason.startsWith('unknown field')), problem.reason, problem.path || '/', kind);
    }
  });
  return diagnostics;
}

/** A document of a text that parses, with its value (aliases resolved, never expanded past 100). */
export interface ReadDocument {
  readonly contents: YamlNode | null;
  readonly value: unknown;
  /** Where it starts and ends in the text (offsets). */
  readonly range: readonly [number, number, number];
}

/** The documents of `text` that parse; the others (syntax errors, alias bombs) are left out. */
export function readDocuments(text: string, lineCounter?: LineCounter): ReadDocument[] {
  const out: ReadDocument[] = [];
  for (const document of parseAllDocuments(text, lineCounter ? { lineCounter } : {})) {
    if (document.errors.length > 0) continue;
    try {
      out.push({ contents: document.contents, value: document.toJS({ maxAliasCount: 100 }), range: document.range });
    } catch {
      // Aliases that cannot be resolved: not a document anyone can use.
    }
  }
  return out;
}

/** The MCPToolPolicies of a text, compiled as the sidecar compiles them; documents with problems are left out. */
export function compileToolPoliciesOfText(text: string): CompiledToolPolicy[] {
  const out: CompiledToolPolicy[] = [];
  for (const { value } of readDocuments(text)) {
    if (documentKind(value) !== 'MCPToolPolicy') continue;
    try {
      validateAgainstSchema('MCPToolPolicy', value, IN_EDITOR);
      out.push(compileToolPolicy(value as MCPToolPolicyResource, IN_EDITOR));
    } catch (error) {
      if (!configProblem(error)) throw error;
    }
  }
  return out;
}
