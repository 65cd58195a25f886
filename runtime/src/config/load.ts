import { readFileSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { parseAllDocuments, type Document } from 'yaml';
import { RESOURCE_KINDS, type ResourceKind } from '@skein/proto';
import { ConfigError } from '@skein/core';
import { validateAgainstSchema, deepFreeze } from './validate.js';
import { checkMcpServerResource } from '../mcp/mcpserver/mcp-server-spec.js';
import type { ComponentResource, ConfigurationResource, HTTPEndpointResource, MCPServerResource, MCPToolPolicyResource, ResiliencyResource, RunTemplate, WorkflowAccessPolicyResource } from './types.js';

/** The resource of each kind, by its `kind`. */
interface ResourcesByKind {
  Configuration: ConfigurationResource;
  Component: ComponentResource;
  MCPToolPolicy: MCPToolPolicyResource;
  HTTPEndpoint: HTTPEndpointResource;
  Resiliency: ResiliencyResource;
  WorkflowAccessPolicy: WorkflowAccessPolicyResource;
  MCPServer: MCPServerResource;
}

/** A resource read from a file and validated against the schema of its kind: a union discriminated by `kind`. */
export type LoadedResource = { [K in ResourceKind]: { file: string; kind: K; name: string; value: ResourcesByKind[K] } }[ResourceKind];
/** A loaded resource of one kind. */
export type LoadedOf<K extends ResourceKind> = Extract<LoadedResource, { kind: K }>;

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, '/', `cannot read the file: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** Parses every YAML document in a file; a syntax error names its line and column. */
export function parseYamlDocuments(file: string, text = readText(file)): unknown[] {
  const documents: Document[] = parseAllDocuments(text);
  const values: unknown[] = [];
  for (const document of documents) {
    const error = document.errors[0];
    if (error) {
      const position = error.linePos?.[0];
      throw new ConfigError(file, position ? `line ${position.line}, column ${position.col}` : '/', `YAML syntax error: ${error.message.split('\n')[0]}`);
    }
    let value: unknown;
    try {
      value = document.toJS({ maxAliasCount: 100 });
    } catch (error) {
      // An alias bomb (aliases of aliases, each expanding the last) or an alias to nothing: refused, never expanded.
      throw new ConfigError(file, '/', `YAML aliases cannot be resolved: ${(error as Error).message}`);
    }
    if (value !== null && value !== undefined) values.push(value);
  }
  return values;
}

function kindOf(value: unknown, file: string): ResourceKind {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(file, '/', 'a resource must be a YAML mapping');
  const kind = (value as { kind?: unknown }).kind;
  if (typeof kind !== 'string') throw new ConfigError(file, '/kind', 'missing required field "kind"');
  if (!(RESOURCE_KINDS as readonly string[]).includes(kind)) {
    throw new ConfigError(file, '/kind', `kind "${kind}" is not supported (supported: ${RESOURCE_KINDS.join(', ')})`);
  }
  return kind as ResourceKind;
}

/** Reads one resource file (one or more YAML documents), validating each document against its kind's schema. */
export function loadResourceFile(file: string): LoadedResource[] {
  return parseYamlDocuments(file).map((value, index, all) => {
    const where = all.length > 1 ? `${file} (document ${index + 1})` : file;
    const kind = kindOf(value, where);
    const validated = deepFreeze(validateAgainstSchema<ResourcesByKind[typeof kind]>(kind, value, where));
    // What a JSON Schema cannot say clearly is checked here, still at load.
    if (kind === 'MCPServer') checkMcpServerResource(validated as MCPServerResource, where);
    return { file: where, kind, name: validated.metadata.name, value: validated } as LoadedResource;
  });
}

/** Reads every `.yaml`/`.yml` file of the given folders (or files). Any invalid document fails the whole load. */
export function loadResources(paths: readonly string[]): LoadedResource[] {
  const files: string[] = [];
  for (const path of paths) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch {
      throw new ConfigError(path, '/', 'no such file or folder');
    }
    if (!isDirectory) files.push(path);
    else for (const name of readdirSync(path).sort()) if (['.yaml', '.yml'].includes(extname(name))) files.push(join(path, name));
  }
  return files.flatMap((file) => loadResourceFile(file));
}

/** Reads the Configuration file given by `--config`. */
export function loadConfiguration(file: string): ConfigurationResource {
  const resources = loadResourceFile(file);
  const configuration = resources.find((resource) => resource.kind === 'Configuration');
  if (configuration?.kind !== 'Configuration' || resources.length !== 1) throw new ConfigError(file, '/', 'expected exactly one Configuration document');
  return configuration.value;
}

/** Reads and validates a multi-app run file. */
export function loadRunTemplate(file: string): RunTemplate {
  const documents = parseYamlDocuments(file);
  if (documents.length !== 1) throw new ConfigError(file, '/', 'a run file holds exactly one YAML document');
  return deepFreeze(validateAgainstSchema<RunTemplate>('run-template', documents[0], file));
}
