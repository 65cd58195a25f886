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
