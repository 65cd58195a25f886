import { SkeinError } from '@skein/core';
import type { Invoker, InvokeRequest, InvokeResponse } from '../invoke/client.js';
import type { ActorRuntime } from '../actors/actor-runtime.js';
import { ActorOperations } from './universal-actors.js';
import type { ResiliencyMiddleware } from '../resiliency/resiliency-middleware.js';

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
  mcpServers: Array<{ name: string }>;
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
  /** Components and HTTPEndpoints the sidecar loaded: names and types only, never their settings. */
  components?: ReadonlyArray<{ name: string; type: string; version: string }>;
  httpEndpoints?: ReadonlyArray<{ name: string }>;
}

/** Each API operation, written once; the HTTP (and any other) front end only decodes, calls and encodes. */
export class UniversalApi {
  private readonly state: SidecarState;
  private readonly invoker: Pick<Invoker, 'invoke'>;

  /** The actor API; fails with ERR_ACTOR_RUNTIME_NOT_FOUND when the sidecar runs without actors. */
  readonly actors: ActorOperations;

  /** `invoker` is the caller's outbound pipeline, or the mesh Invoker itself; `actorRuntime` is absent without placement. */
  constructor(state: SidecarState, invoker: Pick<Invoker, 'invoke'>, actorRuntime?: ActorRuntime, resiliency?: ResiliencyMiddleware) {
    this.state = state;
    this.invoker = invoker;
    this.actors = new ActorOperations(actorRuntime, resiliency);
  }

  get namespace(): string {
    return this.state.namespace;
  }

  /** Service invocation by App ID. */
  invoke(request: InvokeRequest, signal: AbortSignal): Promise<InvokeResponse> {
    return this.invoker.invoke(request, signal);
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
      actorRuntime: this.actors.status(),
      mcpServers: [],
      resiliencies: [],
      extended: { namespace, spiffeId: this.state.spiffeId(), runtime: 'skein' },
    };
  }
}
