/**
 * Everything the caller's side of a sidecar needs, compiled once at `skein run`: the secret stores, the
 * HTTPEndpoints this app may call, the `spec.httpPipeline.handlers` of its Configuration resolved to Component
 * resources, and the Resiliency policies of the calls it makes. Any problem — a handler naming no Component, a secret that does not resolve, a bad certificate — is a
 * ConfigError naming the file, the path and the reason, so the sidecar never starts half-configured.
 */
import { ConfigError } from '@skein/core';
import type { LoadedResource } from '../config/load.js';
import type { ComponentResource, ConfigurationResource } from '../config/types.js';
import { inScope } from '../config/scope.js';
import { SecretStores } from '../secrets/secret-stores.js';
import { compileHttpEndpoint, type CompiledHttpEndpoint } from './http-endpoint.js';
import { compileClientCredentialsOptions, OAUTH2_CLIENT_CREDENTIALS_TYPE, type ClientCredentialsOptions } from './oauth2-client-credentials.js';
import { compileResiliency, type CompiledResiliency } from '../resiliency/resiliency-config.js';

/** What the metadata API lists of a Component: never its settings. */
export interface ComponentSummary {
  readonly name: string;
  readonly type: string;
  readonly version: string;
}

/** One stage of the outbound pipeline, in Configuration order. */
export type OutboundStageOptions = { readonly type: typeof OAUTH2_CLIENT_CREDENTIALS_TYPE; readonly options: ClientCredentialsOptions };

/** The compiled outbound side of one sidecar. */
export interface CompiledOutbound {
  /** HTTPEndpoints this app may invoke, by name. */
  readonly endpoints: ReadonlyMap<string, CompiledHttpEndpoint>;
  /** `spec.httpPipeline.handlers`, resolved and compiled, in order. */
  readonly stages: readonly OutboundStageOptions[];
  /** Every Component this app loads, for the metadata API. */
  readonly components: readonly ComponentSummary[];
  /** Timeouts, retries and circuit breakers of the Resiliency resources this app loads; absent: none. */
  readonly resiliency?: CompiledResiliency;
}

/** Middleware types Skein runs on the caller's side. */
const OUTBOUND_TYPES: readonly string[] = [OAUTH2_CLIENT_CREDENTIALS_TYPE];

/** Inputs of `compileOutbound`. */
export interface OutboundInputs {
  appId: string;
  namespace: string;
  configuration: ConfigurationResource | undefined;
  configFile: string;
  resources: readonly LoadedResource[];
  /** Resolves `envRef`s; default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** The secret stores in scope, when the caller loaded them already; otherwise loaded here. */
  stores?: SecretStores;
  /** Names of Components scoped elsewhere that the caller already left out of `resources`, for a clearer error. */
  outOfScope?: ReadonlySet<string>;
}

/** Compiles the outbound side of the sidecar of `appId`. Throws a ConfigError on the first problem. */
export function compileOutbound(inputs: OutboundInputs): CompiledOutbound {
  const { appId, namespace, configuration, configFile, resources, env } = inputs;
  const components = new Map<string, { component: ComponentResource; file: string }>();
  const outOfScope = new Set<string>(inputs.outOfScope);
  for (const resource of resources) {
    if (resource.kind !== 'Component') continue;
    const component = resource.value;
    if (!inScope(component, appId, namespace)) {
      outOfScope.add(resource.name);
      continue;
    }
    const earlier = components.get(resource.name);
    if (earlier) throw new ConfigError(resource.file, '/metadata/name', `a Component named "${resource.name}" is already loaded from ${earlier.file}`);
    components.set(resource.name, { component, file: resource.file });
  }
  const stores = inputs.stores ?? SecretStores.load([...components.values()]);

  const credentials = new Map<string, ClientCredentialsOptions>();
  for (const { component, file } of components.values()) {
    if (component.spec.type === OAUTH2_CLIENT_CREDENTIALS_TYPE) credentials.set(component.metadata.name, compileClientCredentialsOptions(component, file, stores, env));
  }

  const endpoints = new Map<string, CompiledHttpEndpoint>();
  const endpointFiles = new Map<string, string>();
  for (const resource of resources) {
    if (resource.kind !== 'HTTPEndpoint') continue;
    const endpoint = resource.value;
    if (!inScope(endpoint, appId, namespace)) continue;
    const earlier = endpointFiles.get(resource.name);
    if (earlier) throw new ConfigError(resource.file, '/metadata/name', `an HTTPEndpoint named "${resource.name}" is already loaded from ${earlier}`);
    endpointFiles.set(resource.name, resource.file);
    endpoints.set(resource.name, compileHttpEndpoint(endpoint, resource.file, stores, env));
  }

  const stages: OutboundStageOptions[] = [];
  (configuration?.spec.httpPipeline?.handlers ?? []).forEach((handler, index) => {
    const at = `/spec/httpPipeline/handlers/${index}`;
    const found = components.get(handler.name);
    if (!found) {
      const why = outOfScope.has(handler.name) ? `Component "${handler.name}" is not scoped to app ${appId} in namespace ${namespace}` : `no Component named "${handler.name}" was loaded (check --resources-path)`;
      throw new ConfigError(configFile, `${at}/name`, why);
    }
    if (found.component.spec.type !== handler.type) throw new ConfigError(configFile, `${at}/type`, `Component "${handler.name}" is ${found.component.spec.type}, not ${handler.type}`);
    const options = credentials.get(handler.name);
    if (!options) {
      const hint = handler.type === 'middleware.http.oauth2' ? ' (the authorization-code flow needs a browser; a sidecar uses client credentials)' : '';
      throw new ConfigError(configFile, `${at}/type`, `${handler.type} is not a middleware Skein runs on calls from the app${hint} (supported: ${OUTBOUND_TYPES.join(', ')})`);
    }
    stages.push(Object.freeze({ type: OAUTH2_CLIENT_CREDENTIALS_TYPE, options }));
  });

  return Object.freeze({
    endpoints,
    stages: Object.freeze(stages),
    resiliency: compileResiliency({ appId, namespace, resources }),
    components: Object.freeze([...components.values()].map(({ component }) => Object.freeze({ name: component.metadata.name, type: component.spec.type, version: component.spec.version }))),
  });
}
