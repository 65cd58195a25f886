/**
 * The caller's side of service invocation: every call the app makes through its sidecar runs the outbound
 * pipeline (the Configuration's `httpPipeline`), then goes either straight to an HTTPEndpoint or, for any other
 * App ID, through the mesh. Built from the compiled options when the sidecar starts; `close()` stops token refreshes
 * and closes pooled connections.
 */
import type { Invoker, InvokeRequest, InvokeResponse } from '../invoke/client.js';
import { compose, type Handler, type Middleware, type PipelineRequest } from '../pipeline/pipeline.js';
import type { CompiledHttpEndpoint } from './http-endpoint.js';
import { HttpEndpointClient } from './endpoint-client.js';
import { ClientCredentialsMiddleware, ClientCredentialsTokenSource, type TokenSourceDependencies } from './oauth2-client-credentials.js';
import type { CompiledOutbound } from './outbound-config.js';
import { SpanKind, failSpan, type Tracing } from '../telemetry/tracing.js';
import { endWithBody, recordStatus, withTraceHeaders } from '../telemetry/spans.js';
import { MetricsMiddleware, type Metrics } from '../telemetry/metrics.js';
import { mcpInfoOf } from '../telemetry/mcp-info.js';
import { ResiliencyMiddleware } from '../resiliency/resiliency-middleware.js';

/** The outbound pipeline of one sidecar; it answers `invoke` as the Invoker does, so the API layers need not know. */
export class OutboundPipeline {
  private readonly compiled: CompiledOutbound;
  private readonly namespace: string;
  private readonly client = new HttpEndpointClient();
  private readonly tokenSources: ClientCredentialsTokenSource[] = [];
  private readonly handler: Handler;
  /** The Resiliency policies in force for this app's calls; actor calls use them too. */
  readonly resiliency: ResiliencyMiddleware | undefined;

  constructor(compiled: CompiledOutbound, mesh: Pick<Invoker, 'invoke'>, namespace: string, dependencies: TokenSourceDependencies = {}, tracing?: Tracing, metrics?: Metrics) {
    this.compiled = compiled;
    this.namespace = namespace;
    const leavesMesh = (request: PipelineRequest): boolean => this.endpointFor(request.target) !== undefined;
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
          const { target, verb, method, query, headers, body } = request;
          response = await mesh.invoke({ appId: target.appId, namespace: target.namespace, verb, method, query, headers, body, ...(hop ? { trace: hop } : {}) }, request.signal);
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
    // Outermost: every call the app makes is counted, including those refused or failed by the stages.
    if (metrics) stages.unshift(new MetricsMiddleware(metrics, 'outbound'));
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
  invoke(request: InvokeRequest, signal: AbortSignal): Promise<InvokeResponse> {
    const mcp = Buffer.isBuffer(request.body) ? mcpInfoOf(request.body, request.headers.find(([name]) => name === 'content-type')?.[1]) : undefined;
    return this.handler({
      ...(request.trace ? { trace: request.trace } : {}),
      ...(mcp ? { mcp: { method: mcp.method, ...(mcp.tool ? { tool: mcp.tool } : {}) } } : {}),
      caller: undefined,
      target: { appId: request.appId, namespace: request.namespace },
      verb: request.verb,
      method: request.method,
      query: request.query,
      headers: request.headers,
      body: request.body,
      decisions: [],
      signal,
    });
  }

  /** Stops token refreshes and closes pooled connections to endpoints. */
  close(): void {
    for (const source of this.tokenSources) source.close();
    this.resiliency?.close();
    this.client.close();
  }
}
