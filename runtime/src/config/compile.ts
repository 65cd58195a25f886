/**
 * One compile of every resource a sidecar loads, at `skein run` and again on each reload: the Configuration,
 * Components (middleware, secret stores), HTTPEndpoints, MCPToolPolicies, MCPServers and Resiliency resources become frozen
 * compiled values, and the Sidecar receives only those.
 *
 * Dapr's scoping is applied here, once, for every kind: a resource whose `metadata.namespace` is another namespace,
 * or whose non-empty `scopes` do not name the app, is not used (and may then share its name with the one that is).
 * Two resources of one kind with one name in scope, a Component type Skein does not run, or a Configuration given
 * with `--config` that is scoped elsewhere are ConfigErrors naming the file, the JSON path and the reason. Each part
 * keeps its own compile-then-evaluate module; this is the one entry that calls them all.
 */
import { ConfigError } from '@skein/core';
import { BEARER_COMPONENT_TYPE } from '../auth/bearer.js';
import { OAUTH2_CLIENT_CREDENTIALS_TYPE } from '../outbound/oauth2-client-credentials.js';
import { LOCAL_FILE_SECRET_STORE, SecretStores } from '../secrets/secret-stores.js';
import { compileInboundPolicies, type InboundPolicies } from '../pipeline/inbound-config.js';
import { compileOutbound, type CompiledOutbound, type ComponentSummary } from '../outbound/outbound-config.js';
import type { CompiledResiliency } from '../resiliency/resiliency-config.js';
import { tracingOptionsFrom, type TracingOptions } from '../telemetry/tracing.js';
import { envRefNames } from '../cli/app-environment.js';
import { compileWorkflowAccess, type CompiledWorkflowAccess } from '../workflow/access-policy.js';
import { loadConfiguration, loadResources, type LoadedOf, type LoadedResource } from './load.js';
import { inScope } from './scope.js';
import type { McpServerEntry } from '../mcp-servers/mcp-servers.js';
import type { ComponentResource, ConfigurationResource } from './types.js';

/** Component types Skein runs, and where each one goes. */
export const SUPPORTED_COMPONENT_TYPES: Readonly<Record<string, string>> = Object.freeze({
  [BEARER_COMPONENT_TYPE]: 'spec.appHttpPipeline: validates bearer JWTs on calls to the app',
  [OAUTH2_CLIENT_CREDENTIALS_TYPE]: 'spec.httpPipeline: adds an OAuth2 token to calls the app makes to HTTPEndpoints',
  [LOCAL_FILE_SECRET_STORE]: 'secretKeyRef values of the other resources',
});

/** Dapr Component types people reach for that Skein does not run, and what does the job instead. */
const ALTERNATIVES: Readonly<Record<string, string>> = Object.freeze({
  'middleware.http.opa': 'an MCPToolPolicy resource (per-tool and per-argument rules with CEL conditions) and Configuration spec.accessControl (App-ID access control)',
  'middleware.http.oauth2': `${OAUTH2_CLIENT_CREDENTIALS_TYPE} (the authorization-code flow needs a browser; a sidecar uses client credentials)`,
});

/** Why a Component type is refused, naming what to use instead. */
function unsupportedReason(type: string): string {
  const supported = Object.keys(SUPPORTED_COMPONENT_TYPES).join(', ');
  const instead = ALTERNATIVES[type]
    ?? (type.startsWith('secretstores.') ? LOCAL_FILE_SECRET_STORE : undefined)
    ?? (type.startsWith('middleware.http.') ? `${BEARER_COMPONENT_TYPE} (calls to the app) or ${OAUTH2_CLIENT_CREDENTIALS_TYPE} (calls from the app), with MCPToolPolicy for MCP tool rules` : undefined);
  return `Component type ${type} is not supported by Skein${instead ? `; use ${instead}` : ''} (supported: ${supported})`;
}

/** Everything a sidecar runs with, compiled once from its resources and frozen. */
export interface CompiledSidecarConfig {
  readonly appId: string;
  readonly namespace: string;
  /** App-ID access control, bearer validators and the MCP tool policy of calls to this app. */
  readonly inbound: InboundPolicies;
  /** HTTPEndpoints, `spec.httpPipeline` and the Resiliency policies of calls this app makes. */
  readonly outbound: CompiledOutbound;
  /** The same Resiliency policies as `outbound.resiliency`, for the parts (actors) that are not outbound calls. */
  readonly resiliency: CompiledResiliency | undefined;
  /** The secret stores in scope, loaded. */
  readonly secretStores: SecretStores;
  /** Every Component in scope, for the metadata API. */
  readonly components: readonly ComponentSummary[];
  /** `spec.tracing` of the Configuration, read into options. */
  readonly tracing: TracingOptions;
  /** The WorkflowAccessPolicies scoped to this app: who else may act on its workflows (none loaded: everyone). */
  readonly workflowAccess: CompiledWorkflowAccess;
  /** The MCPServers scoped to this app, validated; connected and discovered when the sidecar starts. */
  readonly mcpServers: readonly McpServerEntry[];
  /** Names of the preview features the Configuration switches on. */
  readonly features: readonly string[];
  /** Environment variables the resources read through `envRef`: the sidecar's secrets, never handed to the app. */
  readonly envRefNames: readonly string[];
}

/** Inputs of `compileSidecarConfig`. */
export interface SidecarConfigInputs {
  appId: string;
  namespace: string;
  /** The Configuration given with `--config`, and its file; absent without `--config`. */
  configuration?: { resource: ConfigurationResource; file: string } | undefined;
  /** Every resource read from `--resources-path`, in scope or not. */
  resources: readonly LoadedResource[];
  /** Resolves `envRef`s; default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** An article for a kind name in a sentence. */
function article(kind: string): string {
  return /^[AEIOUH]/.test(kind) ? 'an' : 'a';
}

/**
 * Compiles every resource the sidecar of `appId` in `namespace` uses. Pure but for reading secret files and the
 * environment; throws a ConfigError on the first problem, so a sidecar never starts (or reloads) half-configured.
 */
export function compileSidecarConfig(inputs: SidecarConfigInputs): CompiledSidecarConfig {
  const { appId, namespace, resources } = inputs;
  const configuration = inputs.configuration?.resource;
  const configFile = inputs.configuration?.file ?? '';
  if (configuration && !inScope(configuration, appId, namespace)) {
    const path = configuration.metadata.namespace !== undefined && configuration.metadata.namespace !== namespace ? '/metadata/namespace' : '/scopes';
    throw new ConfigError(configFile, path, `Configuration "${configuration.metadata.name}" does not apply to app ${appId} in namespace ${namespace}; the sidecar would run without its access control and pipelines`);
  }

  // A Component Skein cannot run is refused wherever it is scoped: the same files serve every app.
  for (const resource of resources) {
    if (resource.kind === 'Component' && !(resource.value.spec.type in SUPPORTED_COMPONENT_TYPES)) {
      throw new ConfigError(resource.file, '/spec/type', unsupportedReason(resource.value.spec.type));
    }
  }

  const scoped: LoadedResource[] = [];
  const seen = new Map<string, string>();
  const outOfScope = new Set<string>();
  for (const resource of resources) {
    // Configurations in a resources folder are not this sidecar's: it uses the one given with --config.
    if (resource.kind === 'Configuration') continue;
    if (!inScope(resource.value, appId, namespace)) {
      if (resource.kind === 'Component') outOfScope.add(resource.name);
      continue;
    }
    const key = `${resource.kind}/${resource.name}`;
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      throw new ConfigError(resource.file, '/metadata/name', `${article(resource.kind)} ${resource.kind} named "${resource.name}" is already loaded from ${earlier}; names are unique per kind among the resources of app ${appId} in namespace ${namespace}`);
    }
    seen.set(key, resource.file);
    scoped.push(resource);
  }
  const ofKind = <K extends LoadedResource['kind']>(kind: K): Array<LoadedOf<K>> => scoped.filter((resource): resource is LoadedOf<K> => resource.kind === kind);

  const components = new Map<string, { component: ComponentResource; file: string }>();
  for (const { name, value, file } of ofKind('Component')) components.set(name, { component: value, file });
  // A name that is in scope here is not "scoped elsewhere", even when another copy of it is.
  for (const name of components.keys()) outOfScope.delete(name);
  const secretStores = SecretStores.load([...components.values()]);
  const env = inputs.env ?? process.env;

  const inbound = compileInboundPolicies({
    appId,
    namespace,
    configuration,
    configFile,
    components,
    outOfScope,
    toolPolicies: ofKind('MCPToolPolicy').map(({ value, file }) => ({ resource: value, file })),
    secrets: secretStores,
    env,
  });
  const outbound = compileOutbound({ appId, namespace, configuration, configFile, resources: scoped, stores: secretStores, env, outOfScope });

  return Object.freeze({
    appId,
    namespace,
    inbound,
    outbound,
    resiliency: outbound.resiliency,
    secretStores,
    components: outbound.components,
    tracing: Object.freeze(tracingOptionsFrom(configuration?.spec.tracing, appId, namespace)),
    workflowAccess: compileWorkflowAccess(ofKind('WorkflowAccessPolicy').map(({ value, file }) => ({ resource: value, file }))),
    mcpServers: Object.freeze(ofKind('MCPServer').map(({ value, file }) => Object.freeze({ resource: value, file }))),
    features: Object.freeze((configuration?.spec.features ?? []).filter((feature) => feature.enabled).map((feature) => feature.name)),
    envRefNames: Object.freeze([...envRefNames([configuration, ...resources.map((resource) => resource.value)])].sort()),
  });
}

/** Where a sidecar's resources are read from. */
export interface SidecarConfigFiles {
  /** `--config`: one Configuration. */
  configFile?: string | undefined;
  /** `--resources-path`: folders (or files) of resources. */
  resourcePaths: readonly string[];
}

/** Reads and validates the files, then compiles them with `compileSidecarConfig`: what `skein run` and reloads call. */
export function loadSidecarConfig(target: { appId: string; namespace: string }, files: SidecarConfigFiles, env?: Readonly<Record<string, string | undefined>>): CompiledSidecarConfig {
  const configuration = files.configFile ? { resource: loadConfiguration(files.configFile), file: files.configFile } : undefined;
  return compileSidecarConfig({ ...target, configuration, resources: loadResources(files.resourcePaths), ...(env ? { env } : {}) });
}
