/**
 * An MCPServer resource read into what the sidecar connects with: its transport, its resolved headers and its
 * timeouts. The checks a JSON Schema cannot state clearly (`mutate` on `beforeListTools`) run at load; header
 * values are resolved at start, from the sidecar's secret stores and environment. No network I/O here.
 */
import { ConfigError, parseGoDuration } from '@skein/core';
import { resolveNamedValue, type SecretStores } from '../../secrets/secret-stores.js';
import type { MCPServerResource } from '../../config/types.js';

/** The transports an MCPServer can name under `spec.endpoint`. */
export type McpServerTransportKind = 'streamableHTTP' | 'sse' | 'stdio';

/** Time allowed for each MCP request when the transport sets no `timeout`. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** An HTTP MCPServer ready to connect to: frozen, header values resolved. */
export interface McpServerTarget {
  readonly name: string;
  /** The resource file, for errors. */
  readonly file: string;
  readonly ignoreErrors: boolean;
  readonly transport: 'streamableHTTP' | 'sse';
  readonly url: URL;
  readonly protocolVersion: string | undefined;
  readonly requestTimeoutMs: number;
  /** Header names and values; the values are registered as secrets when they come from a store or the environment. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

/** Refuses, naming file, JSON path and reason, what the schema lets through but an MCPServer cannot mean. */
export function checkMcpServerResource(resource: MCPServerResource, file: string): void {
  const transport = transportOf(resource);
  const auth = transport === 'stdio' ? undefined : resource.spec.endpoint[transport]?.auth;
  if (auth?.oauth2 && auth.spiffe) throw new ConfigError(file, `/spec/endpoint/${transport}/auth`, 'auth has both oauth2 and spiffe; give one of them');
  const hooks = resource.spec.middleware?.beforeListTools ?? [];
  hooks.forEach((hook, index) => {
    if (hook.mutate !== undefined) {
      throw new ConfigError(file, `/spec/middleware/beforeListTools/${index}/mutate`, 'mutate is not supported on beforeListTools: a beforeListTools hook has no data to replace (use afterListTools with mutate: true to change the tool list)');
    }
  });
}

/** The transport `spec.endpoint` names (the schema allows exactly one). */
export function transportOf(resource: MCPServerResource): McpServerTransportKind {
  const { endpoint } = resource.spec;
  if (endpoint.streamableHTTP) return 'streamableHTTP';
  if (endpoint.sse) return 'sse';
  return 'stdio';
}

/**
 * Reads an MCPServer into a target, resolving its headers (`value`, `secretKeyRef` from `auth.secretStore` or the
 * only store loaded, `envRef`). Throws a ConfigError naming file, JSON path and reason for anything it cannot do.
 */
export function compileMcpServerTarget(
  resource: MCPServerResource,
  file: string,
  context: { stores: SecretStores; env?: Readonly<Record<string, string | undefined>> },
): McpServerTarget {
  const transport = transportOf(resource);
  const name = resource.metadata.name;
  const base = `/spec/endpoint/${transport}`;
  if (transport === 'stdio') throw new ConfigError(file, base, `MCPServer "${name}": the stdio transport is not supported yet; serve the MCP server over streamableHTTP or sse`);
  const http = transport === 'sse' ? resource.spec.endpoint.sse : resource.spec.endpoint.streamableHTTP;
  if (!http) throw new ConfigError(file, base, `MCPServer "${name}": missing ${transport}`);
  if (http.auth?.oauth2) throw new ConfigError(file, `${base}/auth/oauth2`, `MCPServer "${name}": auth.oauth2 is not supported yet; send a token with a header and secretKeyRef`);
  if (http.auth?.spiffe) throw new ConfigError(file, `${base}/auth/spiffe`, `MCPServer "${name}": auth.spiffe is not supported yet (it needs JWT SVIDs); send a token with a header and secretKeyRef`);
  let requestTimeoutMs = DEFAULT_REQUEST_TIMEOUT_MS;
  if (http.timeout !== undefined) {
    const parsed = parseGoDuration(http.timeout);
    if (parsed === undefined || parsed <= 0) throw new ConfigError(file, `${base}/timeout`, `"${http.timeout}" is not a positive duration such as 30s`);
    requestTimeoutMs = parsed;
  }
  const headers = (http.headers ?? []).map((header, index) => {
    const value = resolveNamedValue(header, { file, path: `${base}/headers/${index}` }, { stores: context.stores, secretStore: http.auth?.secretStore, sensitive: true, ...(context.env ? { env: context.env } : {}) });
    return Object.freeze([header.name, value] as const);
  });
  return Object.freeze({
    name,
    file,
    ignoreErrors: resource.spec.ignoreErrors === true,
    transport,
    url: new URL(http.url),
    protocolVersion: transport === 'streamableHTTP' ? resource.spec.endpoint.streamableHTTP?.protocolVersion : undefined,
    requestTimeoutMs,
    headers: Object.freeze(headers),
  });
}
