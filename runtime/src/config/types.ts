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
  trustDomain: string;
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
