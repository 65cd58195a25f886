/**
 * The runtime's names for the resource shapes. Every type here is generated from the JSON Schemas in
 * `@skein/proto` (proto/schemas/ → proto/src/gen/schemas/); nothing is written out a second time, so a schema change
 * reaches the type checker at the next build.
 */
import type { Component, Configuration, HTTPEndpoint, MCPServer, MCPToolPolicy, MultiAppRunFile, Resiliency, WorkflowAccessPolicy } from '@skein/proto';
import type { AccessControl, App, CircuitBreaker, Common, ComponentPolicies, Retry, Rule, TlsDocument, Tracing } from '@skein/proto';

/** A Dapr-compatible Configuration resource. */
export type ConfigurationResource = Configuration;
/** A Dapr-compatible Component resource (middleware, secret stores). */
export type ComponentResource = Component;
/** A Dapr-compatible HTTPEndpoint: a service outside the mesh that apps invoke by name. */
export type HTTPEndpointResource = HTTPEndpoint;
/** Skein's per-tool, per-argument MCP policy (`skein.dev/v1alpha1`, kind `MCPToolPolicy`). */
export type MCPToolPolicyResource = MCPToolPolicy;
/** A Dapr-compatible Resiliency resource: named timeout, retry and circuit-breaker policies, and their targets. */
export type ResiliencyResource = Resiliency;
/** Dapr's WorkflowAccessPolicy (`dapr.io/v1alpha1`): which other apps may act on the workflows of the apps it scopes. */
export type WorkflowAccessPolicyResource = WorkflowAccessPolicy;
/** Dapr's MCPServer (`dapr.io/v1alpha1`): an MCP server the sidecar connects to as a client and discovers the tools of. */
export type MCPServerResource = MCPServer;
/** Every resource kind a sidecar loads, discriminated by `kind`. */
export type Resource = ConfigurationResource | ComponentResource | HTTPEndpointResource | MCPToolPolicyResource | ResiliencyResource | WorkflowAccessPolicyResource | MCPServerResource;

/** `metadata` of any resource: name, namespace, labels, annotations. */
export type ResourceMetadata = Resource['metadata'];

/** `spec.accessControl` of a Configuration. */
export type AccessControlSpec = AccessControl;
/** One per-caller policy of `spec.accessControl`. */
export type AccessControlPolicy = NonNullable<AccessControlSpec['policies']>[number];
/** One per-operation rule of an access-control policy. */
export type AccessControlOperation = NonNullable<AccessControlPolicy['operations']>[number];
/** `spec.tracing` of a Configuration. */
export type TracingSpec = Tracing;
/** `spec.httpPipeline` / `spec.appHttpPipeline` of a Configuration. */
export type PipelineSpec = NonNullable<ConfigurationResource['spec']['httpPipeline']>;

/** One `spec.metadata` entry: a plain value, or a reference to a secret or an environment variable. */
export type ComponentMetadataItem = NonNullable<ComponentResource['spec']['metadata']>[number];
/** A PEM document of `clientTLS`: inline, from a secret, or from a file (relative to the resource file). */
export type TLSDocument = TlsDocument;

/** The rules of an MCPToolPolicy, and what happens when none matches. */
export type MCPToolPolicySpec = MCPToolPolicyResource['spec'];
/** One MCPToolPolicy rule: every field it writes must match; a field left out matches everything. */
export type MCPToolPolicyRule = Rule;

/** Dapr's multi-app run file. */
export type RunTemplate = MultiAppRunFile;
/** Settings every app of a run file shares. */
export type RunTemplateCommon = Common;
/** One app of a run file. */
export type RunTemplateApp = App;

/** `spec.policies`: policies by name. */
export type ResiliencyPolicies = ResiliencyResource['spec']['policies'];
/** One retry policy, as written. */
export type RetrySpec = Retry;
/** One circuit-breaker policy, as written. */
export type CircuitBreakerSpec = CircuitBreaker;
/** The policy names of one target. */
export type TargetPolicyNames = ComponentPolicies;
/** `spec.targets`. HTTPEndpoints are named under `apps`. */
export type ResiliencyTargets = NonNullable<ResiliencyResource['spec']['targets']>;
