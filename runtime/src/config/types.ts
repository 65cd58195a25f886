/** Typed shapes of the resources Skein loads, matching the JSON Schemas in `@skein/proto`. */

export interface ResourceMetadata {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface AccessControlOperation {
  name: string;
  httpVerb?: string[];
  action: 'allow' | 'deny';
}

export interface AccessControlPolicy {
  appId: string;
  namespace: string;
  /** Absent: the spec's own trust domain (Dapr's docs: "Trust domain in which the policy applies"). */
  trustDomain?: string;
  defaultAction?: 'allow' | 'deny' | '';
  operations?: AccessControlOperation[];
}

export interface AccessControlSpec {
  defaultAction?: 'allow' | 'deny' | '';
  trustDomain?: string;
  policies?: AccessControlPolicy[];
}

export interface TracingSpec {
  samplingRate?: string;
  stdout?: boolean;
  otel?: { endpointAddress: string; isSecure?: boolean; protocol?: 'http' | 'grpc' };
  zipkin?: { endpointAddress: string };
}

export interface PipelineSpec {
  handlers?: Array<{ name: string; type: string }>;
}

/** A Dapr-compatible Configuration resource. */
export interface ConfigurationResource {
  apiVersion: string;
  kind: 'Configuration';
  metadata: ResourceMetadata;
  scopes?: string[];
  spec: {
    accessControl?: AccessControlSpec;
    tracing?: TracingSpec;
    metric?: { enabled?: boolean };
    httpPipeline?: PipelineSpec;
    appHttpPipeline?: PipelineSpec;
    features?: Array<{ name: string; enabled: boolean }>;
    mtls?: { enabled?: true; workloadCertTTL?: string; allowedClockSkew?: string };
  };
}

/** A Dapr-compatible Component resource (middleware, and later other building blocks). */
export interface ComponentResource {
  apiVersion: string;
  kind: 'Component';
  metadata: ResourceMetadata;
  scopes?: string[];
  auth?: { secretStore: string };
  spec: {
    type: string;
    version: string;
    ignoreErrors?: boolean;
    initTimeout?: string;
    metadata?: ComponentMetadataItem[];
  };
}

/** One `spec.metadata` entry: a plain value, or a reference to a secret or an environment variable. */
export interface ComponentMetadataItem {
  name: string;
  value?: string | number | boolean;
  secretKeyRef?: { name: string; key?: string };
  envRef?: string;
}

/** A Dapr-compatible HTTPEndpoint: a service outside the mesh that apps invoke by name. */
export interface HTTPEndpointResource {
  apiVersion: string;
  kind: 'HTTPEndpoint';
  metadata: ResourceMetadata;
  scopes?: string[];
  auth?: { secretStore: string };
  spec: {
    baseUrl: string;
    version?: string;
    headers?: ComponentMetadataItem[];
    clientTLS?: {
      rootCA?: TLSDocument;
      certificate?: TLSDocument;
      privateKey?: TLSDocument;
      renegotiation?: 'Never';
    };
  };
}

/** A PEM document of `clientTLS`: inline, from a secret, or from a file (relative to the resource file). */
export interface TLSDocument {
  value?: string;
  secretKeyRef?: { name: string; key?: string };
  file?: string;
}

/** Skein's per-tool, per-argument MCP policy (`skein.dev/v1alpha1`, kind `MCPToolPolicy`). */
export interface MCPToolPolicyResource {
  apiVersion: 'skein.dev/v1alpha1';
  kind: 'MCPToolPolicy';
  metadata: ResourceMetadata;
  /** App IDs of the MCP servers this policy protects; absent means every app that loads it. */
  scopes?: string[];
  spec: MCPToolPolicySpec;
}

/** The rules of an MCPToolPolicy, and what happens when none matches. */
export interface MCPToolPolicySpec {
  /** What happens when no rule matches (default `deny`). */
  defaultAction?: 'allow' | 'deny';
  /** Tried top to bottom; the first rule that matches decides. */
  rules?: MCPToolPolicyRule[];
}

/** One MCPToolPolicy rule: every field it writes must match; a field left out matches everything. */
export interface MCPToolPolicyRule {
  /** Unique in the policy; named in every decision the rule makes. */
  name: string;
  description?: string;
  action: 'allow' | 'deny';
  callers?: {
    /** Caller App ID globs (the verified identity). */
    appIds?: string[];
    /** JWT claim name → glob or globs; all named claims must match. */
    claims?: Record<string, string | string[]>;
  };
  /** JSON-RPC method globs. */
  methods?: string[];
  /** Tool name globs; the rule then applies to `tools/call` only. */
  tools?: string[];
  /** CEL condition over `args`, `tool`, `method`, `caller`, `claims`. */
  when?: string;
  /** Scopes the bearer token must carry for this allow rule to allow. */
  requiredScopes?: string[];
}

/** Dapr's multi-app run file. */
export interface RunTemplate {
  version: 1;
  common?: RunTemplateCommon;
  apps: RunTemplateApp[];
}

export interface RunTemplateCommon {
  resourcesPath?: string;
  resourcesPaths?: string[];
  configFilePath?: string;
  namespace?: string;
  env?: Record<string, string | number | boolean>;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

export interface RunTemplateApp extends RunTemplateCommon {
  appID: string;
  appDirPath?: string;
  appPort?: number;
  command?: string[];
  daprHTTPPort?: number;
  daprGRPCPort?: number;
}

/** A Dapr-compatible Resiliency resource: named timeout, retry and circuit-breaker policies, and their targets. */
export interface ResiliencyResource {
  apiVersion: string;
  kind: 'Resiliency';
  metadata: ResourceMetadata;
  /** App IDs whose sidecars load it; absent means every app that loads it. */
  scopes?: string[];
  spec: {
    policies: ResiliencyPolicies;
    targets?: ResiliencyTargets;
  };
}

/** `spec.policies`: policies by name. */
export interface ResiliencyPolicies {
  /** Name → Go-style duration. */
  timeouts?: Record<string, string>;
  retries?: Record<string, RetrySpec>;
  circuitBreakers?: Record<string, CircuitBreakerSpec>;
}

/** One retry policy, as written. */
export interface RetrySpec {
  policy?: 'constant' | 'exponential';
  duration?: string;
  maxInterval?: string;
  /** -1 (default): until the caller gives up; 0: never. */
  maxRetries?: number;
  matching?: { httpStatusCodes?: string; gRPCStatusCodes?: string };
}

/** One circuit-breaker policy, as written. */
export interface CircuitBreakerSpec {
  maxRequests?: number;
  interval?: string;
  timeout?: string;
  /** CEL over Dapr's counters. */
  trip?: string;
}

/** The policy names of one target. */
export interface TargetPolicyNames {
  timeout?: string;
  retry?: string;
  circuitBreaker?: string;
}

/** `spec.targets`. HTTPEndpoints are named under `apps`. */
export interface ResiliencyTargets {
  apps?: Record<string, TargetPolicyNames & { circuitBreakerCacheSize?: number }>;
  actors?: Record<string, TargetPolicyNames & { circuitBreakerScope?: 'type' | 'id' | 'both'; circuitBreakerCacheSize?: number }>;
  components?: Record<string, { outbound?: TargetPolicyNames; inbound?: TargetPolicyNames }>;
}
