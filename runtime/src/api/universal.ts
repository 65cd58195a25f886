import type { IncomingMessage, ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { SkeinError } from '@skein/core';
import type { Call, CallResponse } from '../pipeline/pipeline.js';
import type { ActorRuntime } from '../actors/actor-runtime.js';
import { ActorOperations } from './universal-actors.js';
import type { ResiliencyMiddleware } from '../resiliency/resiliency-middleware.js';
import type { WorkflowClients } from '../workflow/api.js';
import type { McpServerSummary } from '../mcp-servers/mcp-servers.js';

/** Version reported by the metadata API. */
export const RUNTIME_VERSION = '0.1.0';

/** What the metadata API reports; Dapr's shape, so the official clients accept it. */
export interface MetadataSnapshot {
  id: string;
  runtimeVersion: string;
  enabledFeatures: string[];
  components: Array<{ name: string; type: string; version: string }>;
  httpEndpoints: Array<{ name: string }>;
  appConnectionProperties: { port?: number; protocol: string; channelAddress: string };
  actorRuntime: { runtimeStatus: string; activeActors: Array<{ type: string; count: number }>; hostReady: boolean; placement: string };
  /** MCPServers loaded at start: name, transport, status and the names of the tools discovered. */
  mcpServers: McpServerSummary[];
  resiliencies: Array<{ name: string }>;
  extended: Record<string, string>;
}

/** Facts the universal API reads from the running sidecar. */
export interface SidecarState {
  appId: string;
  namespace: string;
  appPort: number | undefined;
  ready(): boolean;
  notReadyReason(): string;
  spiffeId(): string;
  enabledFeatures: string[];
  /** When set, every call but health checks must carry it (`dapr-api-token`, as a header or gRPC metadata). */
  apiToken?: string | undefined;
  /** Largest request body accepted, whatever the front end. */
  maxBodyBytes?: number;
  /** Components and HTTPEndpoints the sidecar loaded: names and types only, never their settings. */
  components?: ReadonlyArray<{ name: string; type: string; version: string }>;
  httpEndpoints?: ReadonlyArray<{ name: string }>;
  /** The MCPServers the sidecar loaded, and what was discovered. */
  mcpServers?(): McpServerSummary[];
  /** Serves `/v1.0/mcp/<server>`: the MCPServer as an MCP endpoint over its workflows (needs the workflow engine). */
  mcpEndpoint?: (server: string, req: IncomingMessage, res: ServerResponse) => Promise<void>;
  /** Actor types the app declares that this sidecar cannot host, because it has no placement service. */
  unplacedActorTypes?(): readonly string[];
}

/** Anything that runs a call from the app: the outbound pipeline, or (in tests) the mesh Invoker itself. */
export interface CallRunner {
  invoke(call: Call): Promise<CallResponse>;
}

/**
 * Each API operation, written once; the HTTP and gRPC front ends only decode, call and encode. What every front
 * end must do the same way — the API token, the body limit, service invocation through the outbound pipeline (whose
 * stages read the MCP message, count, and open the server span) — is here.
 */
export class UniversalApi {
  private readonly state: SidecarState;

  /** `/v1.0/mcp/<server>`, when the sidecar serves its MCPServers over MCP; undefined otherwise. */
  mcpEndpoint(): ((server: string, req: IncomingMessage, res: ServerResponse) => Promise<void>) | undefined {
    const serve = this.state.mcpEndpoint;
    return serve ? (server, req, res) => serve.call(this.state, server, req, res) : undefined;
  }
  private readonly invoker: CallRunner;

  /** The actor API; fails with ERR_ACTOR_RUNTIME_NOT_FOUND when the sidecar runs without actors. */
  readonly actors: ActorOperations;

  /** The workflow engine's client side; undefined when the sidecar runs without one (it has no placement service). */
  readonly workflows: WorkflowClients | undefined;

  /** The actor runtime's status; without placement, it says so when the app declares actor types all the same. */
  private actorRuntimeStatus(): MetadataSnapshot['actorRuntime'] {
    const status = this.actors.status();
    const unplaced = this.state.unplacedActorTypes?.() ?? [];
    if (unplaced.length === 0) return status;
    return { ...status, placement: `no placement service: the app declares actor types ${unplaced.join(', ')}, which this sidecar cannot host (give it --placement-address, or start skein up first)` };
  }

  /**
   * `invoker` is the caller's outbound pipeline, or the mesh Invoker itself; `actorRuntime` is absent without
   * placement, and so is `workflows` (its instances are actors).
   */
  constructor(state: SidecarState, invoker: CallRunner, actorRuntime?: ActorRuntime, resiliency?: ResiliencyMiddleware, workflows?: WorkflowClients) {
    this.state = state;
    this.invoker = invoker;
    this.actors = new ActorOperations(actorRuntime, resiliency);
    this.workflows = workflows;
  }

  /** The App ID of the app beside this sidecar. */
  get appId(): string {
    return this.state.appId;
  }

  get namespace(): string {
    return this.state.namespace;
  }

  /**
   * Refuses a call without the API token, when one is set; the same check and message on every front end
   * (`what` names where the token travels: "header" or "metadata").
   */
  authorize(given: string | undefined, what: 'header' | 'metadata'): void {
    const expected = this.state.apiToken;
    if (!expected) return;
    if (typeof given !== 'string' || given.length !== expected.length || !timingSafeEqual(Buffer.from(given), Buffer.from(expected))) {
      throw new SkeinError('ERR_UNAUTHENTICATED', `missing or wrong dapr-api-token ${what}`);
    }
  }

  /** The largest request body accepted, in bytes. */
  get maxBodyBytes(): number {
    return this.state.maxBodyBytes ?? 4 * 1024 * 1024;
  }

  /** Refuses a body whose (declared or actual) length is past the limit, before any of it is sent on. */
  admitBodyLength(bytes: number): void {
    const limit = this.maxBodyBytes;
    if (bytes > limit) throw new SkeinError('ERR_BODY_TOO_LARGE', `the request body of ${bytes} bytes is larger than the limit of ${limit} bytes`);
  }

  /** Service invocation by App ID: the call runs the outbound pipeline, then the mesh or an HTTPEndpoint. */
  invoke(call: Call): Promise<CallResponse> {
    return this.invoker.invoke(call);
  }

  /** Throws ERR_HEALTH_NOT_READY until the sidecar is registered and its app listens. */
  healthz(): void {
    if (!this.state.ready()) throw new SkeinError('ERR_HEALTH_NOT_READY', `dapr is not ready: ${this.state.notReadyReason()}`);
  }

  metadata(): MetadataSnapshot {
    const { appId, appPort, namespace } = this.state;
    return {
      id: appId,
      runtimeVersion: RUNTIME_VERSION,
      enabledFeatures: [...this.state.enabledFeatures],
      components: (this.state.components ?? []).map(({ name, type, version }) => ({ name, type, version })),
      httpEndpoints: (this.state.httpEndpoints ?? []).map(({ name }) => ({ name })),
      appConnectionProperties: { ...(appPort === undefined ? {} : { port: appPort }), protocol: 'http', channelAddress: '127.0.0.1' },
      actorRuntime: this.actorRuntimeStatus(),
      mcpServers: this.state.mcpServers?.() ?? [],
      resiliencies: [],
      extended: { namespace, spiffeId: this.state.spiffeId(), runtime: 'skein' },
    };
  }
}
