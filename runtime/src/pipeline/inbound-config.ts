import { ConfigError } from '@skein/core';
import { SecretStores } from '../secrets/secret-stores.js';
import { compileAccessControl, type CompiledAccessControl } from '../acl/access-control.js';
import { compileBearerOptions, BearerValidator, BEARER_COMPONENT_TYPE } from '../auth/bearer.js';
import { compileToolPolicy, toolPolicyAppliesTo, type CompiledToolPolicy } from '../policy/tool-policy.js';
import type { LoadedResource } from '../config/load.js';
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

/**
 * Resolves `spec.appHttpPipeline.handlers` to Component resources and compiles them, and picks the MCPToolPolicy
 * that applies to `appId`. Every problem is a ConfigError naming the file and path: a handler naming no loaded
 * component, a type mismatch, a middleware type Skein does not run inbound, two tool policies for one app.
 */
export function compileInboundPolicies(appId: string, configuration: ConfigurationResource | undefined, configFile: string, resources: readonly LoadedResource[]): InboundPolicies {
  const accessControl = configuration ? compileAccessControl(configuration.spec.accessControl, configFile, { target: appId }) : undefined;
  const components = new Map<string, LoadedResource>();
  for (const resource of resources) if (resource.kind === 'Component') components.set(resource.name, resource);
  const bearers: Array<{ validator: BearerValidator; issuer: string }> = [];
  const secrets = SecretStores.load([...components.values()].map((loaded) => ({ component: loaded.value as ComponentResource, file: loaded.file })));
  (configuration?.spec.appHttpPipeline?.handlers ?? []).forEach((handler, index) => {
    const at = `/spec/appHttpPipeline/handlers/${index}`;
    const loaded = components.get(handler.name);
    if (!loaded) throw new ConfigError(configFile, `${at}/name`, `no Component named "${handler.name}" was loaded (check --resources-path)`);
    const component = loaded.value as ComponentResource;
    if (component.spec.type !== handler.type) throw new ConfigError(configFile, `${at}/type`, `Component "${handler.name}" is ${component.spec.type}, not ${handler.type}`);
    if (handler.type !== BEARER_COMPONENT_TYPE) throw new ConfigError(configFile, `${at}/type`, `${handler.type} is not an inbound middleware Skein runs (supported: ${BEARER_COMPONENT_TYPE}; MCP tool policy comes from MCPToolPolicy resources)`);
    const options = compileBearerOptions(component, loaded.file, { secret: (ref) => secrets.lookup(ref), env: process.env });
    bearers.push({ validator: new BearerValidator(options), issuer: options.issuer });
  });
  const policies = resources.filter((resource) => resource.kind === 'MCPToolPolicy');
  const applicable = policies
    .map((resource) => ({ resource, compiled: compileToolPolicy(resource.value as MCPToolPolicyResource, resource.file, { target: appId }) }))
    .filter(({ compiled }) => toolPolicyAppliesTo(compiled, appId));
  if (applicable.length > 1) {
    const second = applicable[1]?.resource;
    throw new ConfigError(second?.file ?? configFile, '/metadata/name', `two MCPToolPolicy resources apply to ${appId} (${applicable.map(({ resource }) => resource.name).join(', ')}); scope each to one app`);
  }
  return { accessControl, bearers, toolPolicy: applicable[0]?.compiled };
}
