import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { SkeinError, asSkeinError, logger, forwardableHeaders, headersObject } from '@skein/core';
import { splitAppId, validateMethodPath } from '../invoke/method-path.js';
import { OVERLOAD_RETRY_AFTER_SECONDS, UNARY_BODY_LIMIT } from '../invoke/client.js';
import { traceCarrierOf } from '../pipeline/pipeline.js';
import { readWhole } from '../pipeline/read-body.js';
import type { UniversalApi } from './universal.js';
import { ACTORS_PREFIX, serveActorRequest } from './http-actors.js';
import { WORKFLOWS_PATH, serveWorkflowRequest } from './http-workflows.js';

/** `/v1.0/mcp/<server>`: an MCPServer served back over MCP. */
const MCP_ENDPOINT = /^\/v1\.0\/mcp\/([^/]+)\/?$/;

const log = logger('api');

/** Options of the sidecar's HTTP API. */
export interface HttpApiOptions {
  host: string;
  port: number;
}

/** Pending connections the kernel may queue for the API (Linux caps it at net.core.somaxconn). */
const LISTEN_BACKLOG = 4096;
const INVOKE_PREFIX = /^\/v1\.0\/invoke\/([^/?]*)(?:\/method\/(.*)|\/?(.*))$/s;
const WELL_KNOWN_PREFIX = '/.well-known/oauth-protected-resource/';
/** Set by this sidecar alone; whatever the app sent under these names is dropped. */
const FORWARDED = new Set(['x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-prefix']);
/**
 * Copies a response body to the client with backpressure. Written out rather than with `stream.pipeline`, which
 * costs an AbortController and a DOMException per call on this hot path.
 */
function relay(body: Readable, res: ServerResponse, appId: string): void {
  body.on('data', (chunk: Buffer) => {
    if (!res.write(chunk)) {
      body.pause();
      res.once('drain', () => body.resume());
    }
  });
  body.once('end', () => res.end());
  body.once('error', (error: Error) => {
    log.debug('response stream ended early', { appId, reason: error.message });
    res.destroy(error);
  });
  res.once('close', () => {
    if (!res.writableFinished) body.destroy();
  });
}

const LOOPBACK_HOST = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d{1,5})?$/i;
const LOOPBACK_ORIGIN = /^https?:\/\/(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d{1,5})?$/i;
const NO_APP_ID = 'failed getting app id either from the URL path or the header dapr-app-id';

/** Counts streamed body bytes and fails the stream once the limit is passed. */
class BodyLimit extends Transform {
  private seen = 0;
  exceeded = false;
  private readonly limit: number;

  constructor(limit: number) {
    super();
    this.limit = limit;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) {
      this.exceeded = true;
      callback(new SkeinError('ERR_BODY_TOO_LARGE', `the request body is larger than the limit of ${this.limit} bytes`));
      return;
    }
    callback(null, chunk);
  }
}

/** Dapr building-block APIs Skein does not offer, by their path segment; answered 501 naming the API. */
const API_NAMES: Readonly<Record<string, string>> = Object.freeze({
  state: 'state management',
  publish: 'publish',
  subscribe: 'subscribe',
  bindings: 'bindings',
  secrets: 'secrets',
  configuration: 'configuration',
  lock: 'distributed lock',
  unlock: 'distributed lock',
  crypto: 'cryptography',
  workflows: 'workflow',
  jobs: 'jobs',
  conversation: 'conversation',
  shutdown: 'shutdown',
});
const UNSUPPORTED_API = new RegExp(`^/(v1\\.0(?:-alpha1|-alpha2|-beta1)?)/(${Object.keys(API_NAMES).join('|')})(?:/|$)`);

/**
 * Why a workflow path is not served: the sidecar runs no workflow engine (its instances are actors, so it needs a
 * placement service), or the path names a version Dapr serves no workflows under.
 */
function workflowsNotServed(version: string, engineRuns: boolean): SkeinError {
  if (engineRuns) return new SkeinError('ERR_API_NOT_SUPPORTED', `the Dapr workflow API is served under /v1.0/workflows, /v1.0-beta1/workflows and /v1.0-alpha1/workflows, not /${version}/workflows`);
  return new SkeinError('ERR_API_NOT_SUPPORTED', `the Dapr workflow API (/${version}/workflows) needs the workflow engine, which runs only when the sidecar has a placement service (workflow instances are actors): give it --placement-address, or start skein up first`);
}

/** More bytes than the request's own content-length said: a malformed request, not one over the size limit. */
function bodyLongerThanDeclared(): SkeinError {
  return new SkeinError('ERR_MALFORMED_REQUEST', 'the request body is longer than its content-length');
}

/** Sends a Dapr-shaped error body. A 503 (a peer at its limit, a breaker open) says when to try again. */
function sendError(res: ServerResponse, error: SkeinError): void {
  if (res.headersSent) {
    res.destroy(error);
    return;
  }
  const body = JSON.stringify(error.toBody());
  res.writeHead(error.httpStatus, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...(error.httpStatus === 503 ? { 'retry-after': String(OVERLOAD_RETRY_AFTER_SECONDS) } : {}),
  });
  res.end(body);
}

/** The Dapr-compatible HTTP API of a sidecar: invocation (path or `dapr-app-id` header), health and metadata. */
export class HttpApi {
  private readonly options: HttpApiOptions;
  private readonly api: UniversalApi;
  private server: Server | undefined;
  port = 0;

  constructor(options: HttpApiOptions, api: UniversalApi) {
    this.options = options;
    this.api = api;
  }

  async start(): Promise<number> {
    const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0, noDelay: true }, (req, res) => void this.route(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // A burst of new connections beyond Node's default backlog of 511 is reset by the kernel before the sidecar
      // sees it; a deeper queue lets the sidecar answer each call itself (503 when it must refuse).
      server.listen({ port: this.options.port, host: this.options.host, backlog: LISTEN_BACKLOG }, () => resolve());
    });
    const address = server.address();
    this.port = typeof address === 'object' && address ? address.port : this.options.port;
    return this.port;
  }

  /**
   * The API serves the app beside it on loopback only. A browser page could still reach it through DNS rebinding
   * or a cross-site request, so a non-loopback Host, or any Origin that is not loopback, is refused.
   */
  private localOnly(req: IncomingMessage): void {
    const host = req.headers.host ?? '';
    if (!LOOPBACK_HOST.test(host)) throw new SkeinError('ERR_PERMISSION_DENIED', `the sidecar API answers only loopback hosts, not "${host.slice(0, 100)}"`);
    const origin = req.headers.origin;
    if (origin !== undefined && !LOOPBACK_ORIGIN.test(origin)) throw new SkeinError('ERR_PERMISSION_DENIED', 'cross-origin requests to the sidecar API are refused');
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const path = queryAt === -1 ? url : url.slice(0, queryAt);
    const query = queryAt === -1 ? '' : url.slice(queryAt + 1);
    try {
      this.localOnly(req);
      if (path === '/v1.0/healthz' || path === '/v1.0/healthz/outbound') {
        this.api.healthz();
        res.writeHead(204).end();
        return;
      }
      const token = req.headers['dapr-api-token'];
      this.api.authorize(typeof token === 'string' ? token : undefined, 'header');
      if (path === '/v1.0/metadata') {
        if (req.method !== 'GET') throw new SkeinError('ERR_METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed on /v1.0/metadata`);
        const body = JSON.stringify(this.api.metadata());
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
        return;
      }
      if (path.startsWith(ACTORS_PREFIX)) {
        await serveActorRequest(this.api.actors, req, res, path, this.api.maxBodyBytes);
        return;
      }
      const { workflows } = this.api;
      if (workflows && WORKFLOWS_PATH.test(path)) {
        await serveWorkflowRequest(workflows, req, res, path, query, { appId: this.api.appId, maxBodyBytes: this.api.maxBodyBytes });
        return;
      }
      const mcpServer = MCP_ENDPOINT.exec(path);
      if (mcpServer) {
        const serve = this.api.mcpEndpoint();
        if (!serve) throw new SkeinError('ERR_API_NOT_SUPPORTED', 'MCPServers are served at /v1.0/mcp/<server> by a sidecar that loads them and runs the workflow engine (it needs a placement service)');
        await serve(decodeURIComponent(mcpServer[1] ?? ''), req, res);
        return;
      }
      // RFC 9728's path-inserted form of an MCP server reached through this sidecar: fetch the metadata the callee serves.
      const metadataPath = path.startsWith(WELL_KNOWN_PREFIX) ? path.slice(WELL_KNOWN_PREFIX.length - 1) : undefined;
      const match = INVOKE_PREFIX.exec(metadataPath ?? path);
      if (match && match[1]) {
        if (match[2] === undefined) throw new SkeinError('ERR_MALFORMED_REQUEST', `no method in "${path}": use /v1.0/invoke/<appId>/method/<method>`);
        const method = metadataPath === undefined ? match[2] : `${WELL_KNOWN_PREFIX.slice(1)}${match[2]}`;
        await this.invoke(req, res, decodeURIComponent(match[1]), method, query, `/v1.0/invoke/${match[1]}/method`);
        return;
      }
      const unsupported = UNSUPPORTED_API.exec(path);
      if (unsupported) {
        const api = unsupported[2] ?? '';
        if (api === 'workflows') throw workflowsNotServed(unsupported[1] ?? '', workflows !== undefined);
        throw new SkeinError('ERR_API_NOT_SUPPORTED', `the Dapr ${API_NAMES[api] ?? api} API (/${unsupported[1]}/${api}) is not supported by Skein; it offers service invocation, actors, metadata and health`);
      }
      const headerAppId = req.headers['dapr-app-id'];
      if (typeof headerAppId === 'string' && headerAppId.length > 0) {
        // With the header, the whole path is the method.
        await this.invoke(req, res, headerAppId, path.slice(1), query, '');
        return;
      }
      throw new SkeinError('ERR_DIRECT_INVOKE_NO_APP_ID', NO_APP_ID);
    } catch (error) {
      req.resume();
      sendError(res, asSkeinError(error));
    }
  }

  private async invoke(req: IncomingMessage, res: ServerResponse, appIdText: string, rawMethod: string, query: string, prefix: string): Promise<void> {
    const target = splitAppId(appIdText, this.api.namespace);
    const method = validateMethodPath(rawMethod);
    const maxBodyBytes = this.api.maxBodyBytes;
    const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
    if (declared !== undefined) this.api.admitBodyLength(declared);
    const chunked = req.headers['transfer-encoding'] !== undefined;
    let limiter: BodyLimit | undefined;
    let body: Buffer | BodyLimit;
    if (!chunked && (declared === undefined || declared <= UNARY_BODY_LIMIT)) {
      body = declared ? await readWhole(req, declared, 'the request body', bodyLongerThanDeclared) : Buffer.alloc(0);
    } else {
      limiter = new BodyLimit(maxBodyBytes);
      req.pipe(limiter);
      body = limiter;
    }
    const abort = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const headers = forwardableHeaders(req.rawHeaders).filter(([name]) => !FORWARDED.has(name));
    const traceCarrier = traceCarrierOf(headers);
    // Where the caller reached us, so the callee can name URLs the caller can use (RFC 9728 metadata).
    headers.push(['x-forwarded-host', req.headers.host ?? `127.0.0.1:${this.port}`], ['x-forwarded-proto', 'http'], ['x-forwarded-prefix', prefix]);
    let response;
    try {
      response = await this.api.invoke({
        caller: undefined,
        target,
        verb: req.method ?? 'GET',
        method,
        query,
        headers,
        body,
        decisions: [],
        signal: abort.signal,
        ...(traceCarrier ? { traceCarrier } : {}),
      });
    } catch (error) {
      throw limiter?.exceeded ? new SkeinError('ERR_BODY_TOO_LARGE', `the request body is larger than the limit of ${maxBodyBytes} bytes`) : error;
    }
    res.writeHead(response.status, headersObject(response.headers));
    // A streamed answer (no length: SSE and the like) must show its head at once; otherwise head and body go out
    // together in one write.
    if (!response.headers.some(([name]) => name === 'content-length')) res.flushHeaders();
    relay(response.body, res, target.appId);
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
