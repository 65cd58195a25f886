import { ConfigError } from '@skein/core';
import type { SecretStores } from '../secrets/secret-stores.js';
import { compileAccessControl, type CompiledAccessControl } from '../acl/access-control.js';
import { compileBearerOptions, BearerValidator, BEARER_COMPONENT_TYPE } from '../auth/bearer.js';
import { compileToolPolicy, type CompiledToolPolicy } from '../policy/tool-policy.js';
import type { ComponentResource, ConfigurationResource, MCPToolPolicyResource } from '../config/types.js';

/** Every inbound policy of a sidecar, compiled together (at start, and again on each reload). */
export interface InboundPolicies {
  /** Compiled `Configuration.spec.accessControl`; undefined (or not `configured`) lets every verified caller in. */
  accessControl: CompiledAccessControl | undefined;
  /** Bearer validators, in the order of `spec.appHttpPipeline.handlers`. */
  bearers: ReadonlyArray<{ validator: BearerValidator; issuer: string }>;
  /** The MCPToolPolicy scoped to this app, if any. */
  toolPolicy: CompiledToolPolicy | undefined;
}

/** Inputs of `compileInboundPolicies`: resources already scoped to the app (see `compileSidecarConfig`). */
export interface InboundInputs {
  appId: string;
  namespace: string;
  configuration: ConfigurationResource | undefined;
  configFile: string;
  /** The Components in scope, by name. */
  components: ReadonlyMap<string, { component: ComponentResource; file: string }>;
  /** Names of Components that were loaded but are scoped to other apps or namespaces, for a clearer error. */
  outOfScope: ReadonlySet<string>;
  /** The MCPToolPolicy resources in scope. */
  toolPolicies: ReadonlyArray<{ resource: MCPToolPolicyResource; file: string }>;
  secrets: SecretStores;
  /** Resolves `envRef`s; default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * Resolves `spec.appHttpPipeline.handlers` to Component resources and compiles them, and compiles the MCPToolPolicy
 * of the app. Every problem is a ConfigError naming the file and path: a handler naming no Component in scope, a
 * type mismatch, a middleware type Skein does not run inbound, two tool policies for one app.
 */
export function compileInboundPolicies(inputs: InboundInputs): InboundPolicies {
  const { appId, namespace, configuration, configFile, components, outOfScope, secrets } = inputs;
  const accessControl = configuration ? compileAccessControl(configuration.spec.accessControl, configFile, { target: appId }) : undefined;
  const bearers: Array<{ validator: BearerValidator; issuer: string }> = [];
  (configuration?.spec.appHttpPipeline?.handlers ?? []).forEach((handler, index) => {
    const at = `/spec/appHttpPipeline/handlers/${index}`;
    const found = components.get(handler.name);
    if (!found) {
      const why = outOfScope.has(handler.name) ? `Component "${handler.name}" is not scoped to app ${appId} in namespace ${namespace}` : `no Component named "${handler.name}" was loaded (check --resources-path)`;
      throw new ConfigError(configFile, `${at}/name`, why);
    }
    const { component, file } = found;
    if (component.spec.type !== handler.type) throw new ConfigError(configFile, `${at}/type`, `Component "${handler.name}" is ${component.spec.type}, not ${handler.type}`);
    if (handler.type !== BEARER_COMPONENT_TYPE) throw new ConfigError(configFile, `${at}/type`, `${handler.type} is not an inbound middleware Skein runs (supported: ${BEARER_COMPONENT_TYPE}; MCP tool policy comes from MCPToolPolicy resources)`);
    const options = compileBearerOptions(component, file, { secret: (ref) => secrets.lookup(ref), env: inputs.env ?? process.env });
    bearers.push({ validator: new BearerValidator(options), issuer: options.issuer });
  });
  const compiled = inputs.toolPolicies.map(({ resource, file }) => ({ resource, compiled: compileToolPolicy(resource, file, { target: appId }) }));
  if (compiled.length > 1) {
    const second = inputs.toolPolicies[1];
    throw new ConfigError(second?.file ?? configFile, '/metadata/name', `two MCPToolPolicy resources apply to ${appId} (${compiled.map(({ resource }) => resource.metadata.name).join(', ')}); scope each to one app`);
  }
  return Object.freeze({ accessControl, bearers: Object.freeze(bearers), toolPolicy: compiled[0]?.compiled });
}
