/**
 * The caller's side of service invocation: every call the app makes through its sidecar runs the outbound
 * pipeline (the Configuration's `httpPipeline`), then goes either straight to an HTTPEndpoint or, for any other
 * App ID, through the mesh. Built from the compiled options when the sidecar starts; `close()` stops token refreshes
 * and closes pooled connections.
 */
import type { Invoker } from '../invoke/client.js';
import { compose, type Call, type CallResponse, type Handler, type Middleware } from '../pipeline/pipeline.js';
import { McpInspectionMiddleware } from '../pipeline/mcp-inspection.js';
import { ServerSpanMiddleware } from '../pipeline/server-span.js';
import type { CompiledHttpEndpoint } from './http-endpoint.js';
import { HttpEndpointClient } from './endpoint-client.js';
import { ClientCredentialsMiddleware, ClientCredentialsTokenSource, type TokenSourceDependencies } from './oauth2-client-credentials.js';
import type { CompiledOutbound } from './outbound-config.js';
import { SpanKind, failSpan, type Tracing } from '../telemetry/tracing.js';
import { endWithBody, recordStatus, withTraceHeaders } from '../telemetry/spans.js';
import { MetricsMiddleware, type Metrics } from '../telemetry/metrics.js';
import { ResiliencyMiddleware } from '../resiliency/resiliency-middleware.js';

/** Largest body the inspection stage reads when the sidecar names no limit (Dapr's default). */
const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

/** The sidecar whose app makes the calls. */
export interface OutboundOwner {
  namespace: string;
  appId?: string;
  maxBodyBytes?: number;
}

/** The outbound pipeline of one sidecar; it answers `invoke` as the Invoker does, so the API layers need not know. */
export class OutboundPipeline {
  private readonly compiled: CompiledOutbound;
  private readonly namespace: string;
  private readonly client = new HttpEndpointClient();
  private readonly tokenSources: ClientCredentialsTokenSource[] = [];
  private readonly handler: Handler;
  /** The Resiliency policies in force for this app's calls; actor calls use them too. */
  readonly resiliency: ResiliencyMiddleware | undefined;

  constructor(compiled: CompiledOutbound, mesh: Pick<Invoker, 'invoke'>, own: OutboundOwner, dependencies: TokenSourceDependencies = {}, tracing?: Tracing, metrics?: Metrics) {
    const { namespace } = own;
    this.compiled = compiled;
    this.namespace = namespace;
    const leavesMesh = (request: Call): boolean => this.endpointFor(request.target) !== undefined;
    const stages: Middleware[] = compiled.stages.map((stage) => {
      const source = new ClientCredentialsTokenSource(stage.options, dependencies);
      this.tokenSources.push(source);
      return new ClientCredentialsMiddleware(source, leavesMesh);
    });
    const terminal: Handler = async (request) => {
      const endpoint = this.endpointFor(request.target);
      // One client span per hop, ended when the response body has been relayed.
      const hop = tracing && request.trace ? tracing.start(`invoke ${request.target.appId}`, SpanKind.CLIENT, request.trace.context, { 'skein.target.app_id': request.target.appId, 'skein.target.kind': endpoint ? 'http-endpoint' : 'app' }) : undefined;
      try {
        let response;
        if (endpoint) {
          if (hop && tracing) request.headers = withTraceHeaders(request.headers, tracing.inject(hop.context));
          response = await this.client.send(endpoint, request);
        } else {
          // The hop's span travels to the peer as its parent; the call's own span stays the caller's.
          response = await mesh.invoke(hop ? { ...request, trace: hop } : request);
        }
        if (hop) {
          recordStatus(hop.span, response.status);
          endWithBody(hop.span, response.body);
        }
        return response;
      } catch (error) {
        if (hop) {
          failSpan(hop.span, (error as { code?: string }).code ?? 'error', (error as Error).message);
          hop.span.end();
        }
        throw error;
      }
    };
    // Innermost, around the terminal: each retry is a new hop (its own client span), sent with the stages' headers.
    if (compiled.resiliency) {
      this.resiliency = new ResiliencyMiddleware(compiled.resiliency, { namespace, isEndpoint: (target) => this.endpointFor(target) !== undefined, ...(metrics ? { metrics } : {}) });
      stages.push(this.resiliency);
    }
    // Outermost: the body's MCP message read once; every call the app makes counted, including those refused or
    // failed by the stages; then the call's server span, in which the stages run.
    stages.unshift(
      new McpInspectionMiddleware(own.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES),
      ...(metrics ? [new MetricsMiddleware(metrics, 'outbound')] : []),
      ...(tracing ? [new ServerSpanMiddleware(tracing, 'outbound', own.appId ?? '')] : []),
    );
    this.handler = compose(stages, terminal);
  }

  /**
   * The HTTPEndpoint a target names, if any. `<name>` or `<name>.<namespace>` both reach an endpoint of this
   * namespace; the API layer has already split the dot, so a name that holds one is joined back.
   */
  endpointFor(target: { appId: string; namespace: string }): CompiledHttpEndpoint | undefined {
    const { endpoints } = this.compiled;
    if (target.namespace === this.namespace) {
      const plain = endpoints.get(target.appId);
      if (plain) return plain;
    }
    return endpoints.get(`${target.appId}.${target.namespace}`);
  }

  /** Runs one call from the app through the pipeline. */
  invoke(call: Call): Promise<CallResponse> {
    return this.handler(call);
  }

  /** Stops token refreshes and closes pooled connections to endpoints. */
  close(): void {
    for (const source of this.tokenSources) source.close();
    this.resiliency?.close();
    this.client.close();
  }
}
