import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { logger, connectBus, type Bus, formatSpiffeId, SkeinError, asSkeinError, ensureTelemetryStream } from '@skein/core';
import { AppChannel } from './app/channel.js';
import { Discovery } from './bus/discovery.js';
import { WorkloadIdentity } from './identity/workload.js';
import { InternalServer } from './invoke/server.js';
import { Invoker } from './invoke/client.js';
import { RUNTIME_VERSION, UniversalApi } from './api/universal.js';
import { HttpApi } from './api/http.js';
import { GrpcApi } from './api/grpc.js';
import { watchForChanges } from './config/watch.js';
import { compose, type Handler, type Middleware } from './pipeline/pipeline.js';
import { AccessControlMiddleware } from './pipeline/access-control.js';
import { appTerminal } from './pipeline/app-terminal.js';
import { NatsDecisionSink, type DecisionSink } from './pipeline/decisions.js';
import { BearerMiddleware } from './pipeline/bearer.js';
import { traced } from './pipeline/traced.js';
import { McpInspectionMiddleware } from './pipeline/mcp-inspection.js';
import { ServerSpanMiddleware } from './pipeline/server-span.js';
import { McpSessionMiddleware } from './pipeline/mcp-sessions.js';
import { McpSessionRegistry } from './bus/mcp-sessions.js';
import { Tracing } from './telemetry/tracing.js';
import { NatsSpanExporter } from './telemetry/nats-exporter.js';
import { McpToolPolicyMiddleware } from './pipeline/mcp-tool-policy.js';
import { Metrics, MetricsMiddleware } from './telemetry/metrics.js';
import { MetricsServer } from './telemetry/metrics-server.js';
import type { InboundPolicies } from './pipeline/inbound-config.js';
import type { CompiledSidecarConfig } from './config/compile.js';
import { OutboundPipeline } from './outbound/outbound.js';
import { ActorRuntime } from './actors/actor-runtime.js';
import { actorServiceHandler, CALL_ACTOR_PATH } from './actors/actor-service.js';
import { AppActorHost } from './actors/actor-host-app.js';
import type { ActorHost, InternalTypeContext, InternalTypeSettings } from './actors/actor-host.js';
import { WorkflowAccessGuard } from './workflow/access-guard.js';
import { WorkflowEngine } from './workflow/engine.js';
import { serveTaskHub } from './workflow/grpc-service.js';
import { NatsWorkflowTelemetry } from './workflow/telemetry-publisher.js';
import type { McpServers } from './mcp-servers/mcp-servers.js';

const log = logger('sidecar');

/** How long start-up waits for the app's `/dapr/config` when the sidecar has no placement service. */
const PROBE_TIMEOUT_MS = 2000;

/** Everything a sidecar needs: where it listens and connects, and its resources compiled by `compileSidecarConfig`. */
export interface SidecarOptions {
  appId: string;
  namespace: string;
  /** Port of the app; undefined for apps that only make calls. */
  appPort: number | undefined;
  /** Address the HTTP and gRPC APIs listen on (loopback: only the app should reach them). */
  apiHost: string;
  httpPort: number;
  /** Port of the Dapr-compatible gRPC API; 0 picks a free one. */
  grpcPort: number;
  /** Address and port of the internal mTLS server other sidecars dial. */
  internalHost: string;
  internalPort: number;
  /** Host other sidecars reach this one at. */
  advertiseAddress: string;
  natsUrl: string;
  sentryAddress: string;
  trustAnchorsPem: string;
  joinToken: string | undefined;
  /** Every resource of this app, compiled once: inbound policies, outbound pipeline, resiliency, tracing. */
  config: CompiledSidecarConfig;
  /**
   * Reads the files and compiles them again, through `compileSidecarConfig`; throws ConfigError when anything is
   * invalid. A reload swaps the inbound policies in; the rest takes effect at the next start.
   */
  reloadConfig?: () => CompiledSidecarConfig;
  /** Files and folders whose changes trigger `reloadConfig`. */
  watchPaths?: readonly string[];
  maxBodyBytes: number;
  apiToken: string | undefined;
  appApiToken: string | undefined;
  heartbeatMs: number;
  instanceTtlMs: number;
  /** Placement replicas (`host:port`); without any, the sidecar has no actor runtime. */
  placementAddresses?: readonly string[];
  /** How long a workflow worker has to answer an orchestration work item before it is sent again (60 s by default). */
  workflowWorkItemTimeoutMs?: number;
  /** Port of the Prometheus `/metrics` endpoint; 0 (the default) picks a free one. */
  metricsPort?: number;
  /** Address the metrics endpoint listens on; 127.0.0.1 by default. */
  metricsAddress?: string;
}

/** Ports a started sidecar listens on. */
export interface SidecarPorts {
  http: number;
  grpc: number;
  internal: number;
  metrics: number;
}

/** The data plane beside one app. Create, `start()`, then `stop()`. */
export class Sidecar {
  readonly options: SidecarOptions;
  readonly instanceId = randomUUID();
  readonly identity: WorkloadIdentity;
  private readonly appChannel: AppChannel | undefined;
  private readonly internal: InternalServer;
  private watcher: { close(): void } | undefined;
  private inbound: Handler = () => Promise.reject(new SkeinError('ERR_HEALTH_NOT_READY', 'the sidecar is still starting'));
  private bus: Bus | undefined;
  private discovery: Discovery | undefined;
  private invoker: Invoker | undefined;
  private outbound: OutboundPipeline | undefined;
  private http: HttpApi | undefined;
  private grpc: GrpcApi | undefined;
  /** Workflows of this app: present when the sidecar has an actor runtime (instances are actors). */
  private workflows: WorkflowEngine | undefined;
  /** The WorkflowAccessPolicies the engine applies to other apps' calls; swapped on reload. */
  private workflowAccess: WorkflowAccessGuard | undefined;
  private registered = false;
  private appListening = false;
  /** The app as an actor host (its `/dapr/config` and actor routes); absent for apps that only make calls. */
  private readonly appHost: AppActorHost | undefined;
  /** Actor types the app declares that cannot be hosted: the sidecar has no placement service. */
  private unplacedActorTypes: readonly string[] = [];
  private readonly stopping = new AbortController();
  private readonly actors: ActorRuntime | undefined;
  /** Request counts, errors and durations, served on `/metrics`. */
  readonly metrics: Metrics;
  private readonly metricsServer: MetricsServer;
  /** Off until start() reads the Configuration's tracing section. */
  private sessions: McpSessionRegistry | undefined;
  private tracing = new Tracing({ appId: '', namespace: '', samplingRate: 0, otlpUrl: undefined });
  /** The MCPServers scoped to this app: connected, their tools discovered and cached, before the API listens. */
  private mcpServers: McpServers | undefined;

  constructor(options: SidecarOptions) {
    this.options = options;
    this.metrics = new Metrics({ constantLabels: { app_id: options.appId, namespace: options.namespace } });
    this.metricsServer = new MetricsServer(this.metrics, { host: options.metricsAddress ?? '127.0.0.1', port: options.metricsPort ?? 0 });
    this.identity = new WorkloadIdentity({
      sentryAddress: options.sentryAddress,
      trustAnchorsPem: options.trustAnchorsPem,
      appId: options.appId,
      namespace: options.namespace,
      ...(options.joinToken ? { token: options.joinToken } : {}),
    });
    this.appChannel = options.appPort === undefined ? undefined : new AppChannel({ appId: options.appId, host: '127.0.0.1', port: options.appPort });
    this.appHost = this.appChannel
      ? new AppActorHost({ appId: options.appId, namespace: options.namespace, channel: this.appChannel, appApiToken: options.appApiToken, maxBodyBytes: options.maxBodyBytes })
      : undefined;
    this.internal = new InternalServer({
      appId: options.appId,
      namespace: options.namespace,
      host: options.internalHost,
      port: options.internalPort,
      // Built in start(): its stages publish decisions on the bus, which does not exist yet.
      inbound: (request) => this.inbound(request),
    });
    if (options.placementAddresses && options.placementAddresses.length > 0) {
      this.actors = new ActorRuntime({
        appId: options.appId,
        namespace: options.namespace,
        instanceId: this.instanceId,
        placementAddresses: options.placementAddresses,
        identity: this.identity,
        appHost: this.appHost,
      });
      this.internal.route(CALL_ACTOR_PATH, actorServiceHandler(this.actors, { trustDomain: () => this.identity.current.id.trustDomain, namespace: options.namespace }));
    }
  }

  /**
   * Gets an SVID, joins NATS and starts the API. Returns once the API listens; the app may start then, and the
   * sidecar registers itself for discovery when `waitForApp()` sees the app listening.
   */
  async start(): Promise<SidecarPorts> {
    const { options } = this;
    // A server that cannot be loaded (and does not set ignoreErrors) stops the start before anything listens.
    // Loaded only by a sidecar that has MCPServers: the MCP client library is memory every other sidecar would carry.
    if (options.config.mcpServers.length > 0) {
      const { McpServers: Servers } = await import('./mcp-servers/mcp-servers.js');
      this.mcpServers = new Servers(options.config.mcpServers, { stores: options.config.secretStores, clientInfo: { name: 'skein', version: RUNTIME_VERSION } });
      await this.mcpServers.load();
    }
    const svid = await this.identity.start();
    const internalPort = await this.internal.start(svid);
    this.bus = await connectBus(options.natsUrl, { certPem: svid.certPem, keyPem: svid.keyPem, caPem: svid.bundlePem }, `skein-sidecar ${options.appId}`);
    // Telemetry must never keep traffic from flowing: without the stream, decisions and spans are still published.
    await ensureTelemetryStream(this.bus.nc).catch((error: unknown) => log.warn('the telemetry stream is unavailable', { reason: (error as Error).message }));
    this.actors?.start(this.bus.nc, this.internalAddress());
    // Spans go to the configured OTLP endpoint and to the telemetry stream, where `skein traces` reads them.
    this.tracing = new Tracing(options.config.tracing, [
      new NatsSpanExporter(this.bus.nc, { appId: options.appId, namespace: options.namespace }),
    ]);
    this.sessions = new McpSessionRegistry(this.bus.nc);
    const sink = new NatsDecisionSink(this.bus.nc, options.appId, options.namespace);
    this.inbound = this.buildInboundPipeline(options.config.inbound, sink);
    const { reloadConfig, watchPaths } = options;
    if (reloadConfig && watchPaths && watchPaths.length > 0) {
      this.watcher = watchForChanges(watchPaths, () => this.reload(reloadConfig, sink));
    }
    this.identity.onRotate((next) => {
      this.internal.rotate(next);
      this.bus?.rotate({ certPem: next.certPem, keyPem: next.keyPem, caPem: next.bundlePem });
    });
    this.discovery = new Discovery(this.bus.nc, { heartbeatMs: options.heartbeatMs, ttlMs: options.instanceTtlMs });
    await this.discovery.start();
    this.invoker = new Invoker(this.discovery, this.identity, this.tracing, this.sessions);
    const { actors } = this;
    if (actors) {
      this.workflowAccess = new WorkflowAccessGuard({ appId: options.appId, namespace: options.namespace }, options.config.workflowAccess, (decision) => sink.publish(decision));
      this.workflows = new WorkflowEngine({
        appId: options.appId,
        namespace: options.namespace,
        nc: this.bus.nc,
        registerActorType: (actorType, host) => this.registerInternalActorType(actorType, host),
        invokeActor: (actorType, actorId, call, signal) => actors.invoke(actorType, actorId, call, signal),
        access: this.workflowAccess,
        telemetry: new NatsWorkflowTelemetry(this.bus.nc, { appId: options.appId, namespace: options.namespace }, () => this.tracing),
        ...(options.workflowWorkItemTimeoutMs === undefined ? {} : { orchestrationTimeoutMs: options.workflowWorkItemTimeoutMs }),
      });
      // The MCPServers' ListTools and CallTool.<tool> workflows run on the sidecar's own worker.
      if (this.mcpServers) {
        const { ToolWorkflowWorker } = await import('./mcp-servers/tool-worker.js');
        this.workflows.attachInternalWorker(new ToolWorkflowWorker(this.mcpServers, options.appId, (made) => sink.publish(made)));
      }
    }
    this.outbound = new OutboundPipeline(options.config.outbound, this.invoker, { appId: options.appId, namespace: options.namespace, maxBodyBytes: options.maxBodyBytes }, {}, this.tracing, this.metrics);
    const universal = new UniversalApi(
      {
        appId: options.appId,
        namespace: options.namespace,
        appPort: options.appPort,
        apiToken: options.apiToken,
        maxBodyBytes: options.maxBodyBytes,
        ready: () => this.registered && (this.appChannel === undefined || this.appListening),
        notReadyReason: () => (this.appChannel && !this.appListening ? `app ${options.appId} is not listening on port ${options.appPort ?? ''} yet` : 'not registered yet'),
        spiffeId: () => formatSpiffeId(this.identity.current.id),
        enabledFeatures: [...options.config.features],
        components: options.config.components,
        httpEndpoints: [...options.config.outbound.endpoints.keys()].map((name) => ({ name })),
        unplacedActorTypes: () => this.unplacedActorTypes,
        mcpServers: () => this.mcpServers?.summaries() ?? [],
        ...(this.mcpServers && this.workflows ? { mcpEndpoint: (server: string, req: IncomingMessage, res: ServerResponse) => this.serveMcpEndpoint(server, req, res) } : {}),
      },
      this.outbound,
      this.actors,
      this.outbound.resiliency,
      this.workflows,
    );
    this.http = new HttpApi({ host: options.apiHost, port: options.httpPort }, universal);
    const http = await this.http.start();
    this.grpc = new GrpcApi({ host: options.apiHost, port: options.grpcPort }, universal);
    if (this.workflows) serveTaskHub(this.grpc, this.workflows);
    const grpc = await this.grpc.start();
    const metrics = await this.metricsServer.start();
    log.info('sidecar started', { appId: options.appId, namespace: options.namespace, httpPort: http, grpcPort: grpc, internalPort, metricsPort: metrics, spiffeId: formatSpiffeId(svid.id) });
    return { http, grpc, internal: internalPort, metrics };
  }

  /** The callee's stages, in order: App-ID access control, bearer tokens, MCP tool policy, then the app. */
  private buildInboundPipeline(policies: InboundPolicies, sink: DecisionSink): Handler {
    const { options } = this;
    const stages: Middleware[] = [];
    if (policies.accessControl?.configured) stages.push(new AccessControlMiddleware(policies.accessControl, sink));
    for (const bearer of policies.bearers) stages.push(new BearerMiddleware(bearer.validator, bearer.issuer, sink));
    if (policies.toolPolicy) stages.push(new McpToolPolicyMiddleware(policies.toolPolicy, sink, options.maxBodyBytes));
    // Actor calls from other apps pass the same App-ID access control (bearer tokens and tool policy are for calls
    // to the app's own routes: an actor call carries no token and no MCP message).
    this.actors?.useInboundStages(policies.accessControl?.configured ? [new AccessControlMiddleware(policies.accessControl, sink)] : []);
    // The body's MCP message is read once, first, for every stage after it. Metrics next and untraced: every call
    // is counted, denials included, without a span of its own. Then the server span, in which the policy stages
    // run. Session bookkeeping last, next to the app and untraced too: it records which instance owns each new MCP
    // session.
    return compose(
      [
        new McpInspectionMiddleware(options.maxBodyBytes),
        new MetricsMiddleware(this.metrics, 'inbound'),
        new ServerSpanMiddleware(this.tracing, 'inbound', options.appId),
        ...stages.map((stage) => traced(stage, this.tracing)),
        ...(this.sessions ? [new McpSessionMiddleware(this.sessions, this.instanceId)] : []),
      ],
      appTerminal(this.appChannel, options.appId, options.appApiToken, this.tracing),
    );
  }

  /**
   * Recompiles every resource from the files. All or nothing: the new pipeline replaces the old one only when
   * everything compiled; otherwise the previous policies stay in force and the reason is logged.
   */
  private reload(load: () => CompiledSidecarConfig, sink: DecisionSink): void {
    try {
      const config = load();
      this.inbound = this.buildInboundPipeline(config.inbound, sink);
      this.workflowAccess?.use(config.workflowAccess);
      log.info('policies reloaded', { appId: this.options.appId });
    } catch (error) {
      const skeinError = asSkeinError(error);
      log.error('policy reload rejected; the previous policies stay in force', { code: skeinError.code, reason: skeinError.message, ...skeinError.location });
    }
  }

  /** Waits for the app to listen (when it has a port), then registers this instance. */
  async waitForAppAndRegister(): Promise<void> {
    if (this.appChannel) {
      await this.appChannel.waitUntilListening(this.stopping.signal);
      this.appListening = true;
    }
    const { options } = this;
    await this.discovery?.register({
      appId: options.appId,
      namespace: options.namespace,
      instanceId: this.instanceId,
      address: `${options.advertiseAddress.includes(':') ? `[${options.advertiseAddress}]` : options.advertiseAddress}:${this.internal.port}`,
      spiffeId: formatSpiffeId(this.identity.current.id),
      hostname: hostname(),
      startedAt: new Date().toISOString(),
    });
    this.registered = true;
    await this.actors?.hostApp().catch((error: unknown) => log.error('the actor runtime could not start hosting', { reason: (error as Error).message }));
    if (!this.actors && this.appHost) {
      // Before the sidecar reports ready (so the app's request count settles first), but never for long.
      let timer: NodeJS.Timeout | undefined;
      const bounded = new Promise<void>((resolve) => (timer = setTimeout(resolve, PROBE_TIMEOUT_MS)));
      await Promise.race([this.checkActorsWithoutPlacement(), bounded]);
      clearTimeout(timer);
    }
  }

  /**
   * Without a placement service nothing can host the app's actors: an app that declares actor types all the same
   * (`GET /dapr/config`) would see every actor call fail with "no host serves ...". Say so at once, and in the
   * metadata, instead.
   */
  private async checkActorsWithoutPlacement(): Promise<void> {
    if (!this.appHost) return;
    const { options } = this;
    const { entities } = await this.appHost.readConfig(true);
    if (entities.length === 0 || this.stopping.signal.aborted) return;
    this.unplacedActorTypes = [...entities];
    log.error('the app declares actor types but this sidecar has no placement service, so none of them can be hosted; give it --placement-address, or start skein up first', { appId: options.appId, actorTypes: entities });
  }

  /**
   * Hosts an actor type of the sidecar itself (`dapr.internal.<...>`) in-process: placed by placement like the
   * app's types, with one turn at a time, state, reminders and timers. Throws when the sidecar has no actor runtime.
   */
  registerInternalActorType(actorType: string, host: ActorHost, settings?: InternalTypeSettings): InternalTypeContext {
    if (!this.actors) throw new SkeinError('ERR_ACTOR_RUNTIME_NOT_FOUND', 'the actor runtime is not enabled on this sidecar: start it with a placement address');
    return this.actors.registerInternalType(actorType, host, settings);
  }

  /** An MCPServer of this sidecar over MCP (the endpoint module loads on first use). */
  private async serveMcpEndpoint(server: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Wired only when both exist (see the UniversalApi state).
    const workflows = this.workflows as WorkflowEngine;
    const { serveMcpEndpoint } = await import('./mcp-servers/mcp-endpoint.js');
    const servers = this.mcpServers;
    const hooks = servers?.hooks(server);
    const listHooks = (hooks?.beforeListTools?.length ?? 0) + (hooks?.afterListTools?.length ?? 0);
    await serveMcpEndpoint(req, res, server, workflows, servers?.tools(server) !== undefined, listHooks === 0 ? () => servers?.tools(server) : undefined);
  }

  /** `host:port` other sidecars dial: this sidecar's key on the placement rings. */
  private internalAddress(): string {
    const host = this.options.advertiseAddress;
    return `${host.includes(':') ? `[${host}]` : host}:${this.internal.port}`;
  }

  /**
   * Hands this sidecar's actors over before the app stops: new actor calls are sent elsewhere, running turns finish,
   * the actors are deactivated and the host leaves placement.
   */
  async drain(): Promise<void> {
    await this.actors?.drain().catch((error: unknown) => log.warn('actor drain failed', { reason: (error as Error).message }));
  }

  /** Deregisters and closes everything; in-flight calls are cut. */
  async stop(): Promise<void> {
    this.watcher?.close();
    this.stopping.abort();
    this.workflows?.stop();
    await this.actors?.stop().catch(() => undefined);
    await this.discovery?.stop().catch(() => undefined);
    await this.http?.stop();
    await this.grpc?.stop();
    await this.metricsServer.stop();
    await this.internal.stop();
    this.invoker?.close();
    this.outbound?.close();
    this.appChannel?.close();
    await this.mcpServers?.close();
    // Spans still queued are exported before the bus closes.
    await this.tracing.shutdown();
    await this.bus?.nc.close().catch(() => undefined);
    this.identity.stop();
  }
}
