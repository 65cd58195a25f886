import { Readable } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { Metadata, Server, ServerCredentials, status as GrpcStatus, type handleUnaryCall, type sendUnaryData, type ServerUnaryCall, type ServiceDefinition, type StatusObject, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { daprService, dapr, google } from '@skein/proto';
import { SkeinError, asSkeinError, grpcStatusOfAppStatus, logger, forwardableHeaders, type HeaderList } from '@skein/core';
import { readWhole } from '../pipeline/read-body.js';
import { traceCarrierOf, type CallResponse } from '../pipeline/pipeline.js';
import { splitAppId, validateMethodPath } from '../invoke/method-path.js';
import { OVERLOAD_RETRY_AFTER_SECONDS, UNARY_BODY_LIMIT } from '../invoke/client.js';
import type { MetadataSnapshot, UniversalApi } from './universal.js';

const log = logger('api');

/** Options of the sidecar's Dapr-compatible gRPC API. */
export interface GrpcApiOptions {
  host: string;
  port: number;
}

type InvokeServiceRequest = dapr.proto.runtime.v1.IInvokeServiceRequest;
type InvokeServiceResponse = dapr.proto.common.v1.IInvokeResponse;
type GetMetadataRequest = dapr.proto.runtime.v1.IGetMetadataRequest;
type GetMetadataResponse = dapr.proto.runtime.v1.IGetMetadataResponse;

const Verb = dapr.proto.common.v1.HTTPExtension.Verb;

/** The verbs an HTTP app can be called with; NONE and CONNECT are refused, as Dapr's HTTP app channel does. */
const HTTP_VERBS = new Map<number, string>([
  [Verb.GET, 'GET'],
  [Verb.HEAD, 'HEAD'],
  [Verb.POST, 'POST'],
  [Verb.PUT, 'PUT'],
  [Verb.DELETE, 'DELETE'],
  [Verb.OPTIONS, 'OPTIONS'],
  [Verb.TRACE, 'TRACE'],
  [Verb.PATCH, 'PATCH'],
]);

/** Room for the protobuf envelope around a body of the maximum size. */
const ENVELOPE_BYTES = 64 * 1024;

/** Dapr truncates an app's error body to this many bytes in the ErrorInfo it attaches. */
const ERROR_INFO_BODY_BYTES = 63;

/** HTTP headers Dapr renames with a `dapr-` prefix when they travel back as gRPC metadata. */
const PERMANENT_HTTP_HEADERS = new Set([
  'accept', 'accept-charset', 'accept-language', 'accept-ranges', 'cache-control', 'content-type', 'content-length', 'cookie', 'date', 'expect',
  'from', 'if-match', 'if-modified-since', 'if-none-match', 'if-schedule-tag-match', 'if-unmodified-since', 'max-forwards', 'origin', 'pragma',
  'referer', 'via', 'warning',
]);

/** A reply head and body, or a failure, ready for grpc-js. */
interface Reply<T> {
  headers: Metadata;
  value?: T;
  error?: Partial<StatusObject>;
}

/**
 * The Dapr-compatible gRPC API of a sidecar (`dapr.proto.runtime.v1.Dapr`): `InvokeService` and `GetMetadata`,
 * each decoded, handed to the same universal operation the HTTP API calls, and encoded. Loopback only, like the
 * HTTP API: only the app should reach it.
 */
export class GrpcApi {
  private readonly options: GrpcApiOptions;
  private readonly api: UniversalApi;
  private readonly server: Server;
  port = 0;

  constructor(options: GrpcApiOptions, api: UniversalApi) {
    this.options = options;
    this.api = api;
    this.server = new Server({ 'grpc.max_receive_message_length': api.maxBodyBytes + ENVELOPE_BYTES });
    this.server.addService(daprService, {
      invokeService: (call: ServerUnaryCall<InvokeServiceRequest, InvokeServiceResponse>, callback: sendUnaryData<InvokeServiceResponse>) =>
        void this.answer(call, callback, () => this.invokeService(call)),
      getMetadata: (call: ServerUnaryCall<GetMetadataRequest, GetMetadataResponse>, callback: sendUnaryData<GetMetadataResponse>) =>
        void this.answer(call, callback, async () => ({ headers: new Metadata(), value: toGetMetadataResponse(this.api.metadata()) })),
    });
  }

  /** Serves another service on the API port (before `start`); build its unary handlers with `unary`. */
  serve(definition: ServiceDefinition, implementation: UntypedServiceImplementation): void {
    this.server.addService(definition, implementation);
  }

  /** A unary handler with the API's token check and error mapping around `work`. */
  unary<Req, Res>(work: (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>): handleUnaryCall<Req, Res> {
    return (call, callback) => void this.answer(call, callback, async () => ({ headers: new Metadata(), value: await work(call.request, call) }));
  }

  /** Checks the API token a streaming call carries; throws ERR_UNAUTHENTICATED like a unary call would answer. */
  authorize(metadata: Metadata): void {
    const token = metadata.get('dapr-api-token')[0];
    this.api.authorize(typeof token === 'string' ? token : undefined, 'metadata');
  }

  /** Listens; resolves with the bound port. */
  start(): Promise<number> {
    const { host, port } = this.options;
    return new Promise((resolve, reject) => {
      this.server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, ServerCredentials.createInsecure(), (error, bound) => {
        if (error) {
          reject(error);
          return;
        }
        this.port = bound;
        resolve(bound);
      });
    });
  }

  /** Cuts every open call and stops listening. */
  async stop(): Promise<void> {
    this.server.forceShutdown();
  }

  /** Checks the API token, runs `work`, and sends its reply; any failure becomes the gRPC status of its error code. */
  private async answer<Req, Res>(call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>, work: () => Promise<Reply<Res>>): Promise<void> {
    let reply: Reply<Res>;
    try {
      const token = call.metadata.get('dapr-api-token')[0];
      this.api.authorize(typeof token === 'string' ? token : undefined, 'metadata');
      reply = await work();
    } catch (error) {
      const skeinError = asSkeinError(error);
      log.debug('gRPC API call failed', { method: call.getPath(), code: skeinError.code, reason: skeinError.message });
      reply = { headers: new Metadata(), error: { code: skeinError.grpcStatus, details: skeinError.message, metadata: errorTrailers(skeinError) } };
    }
    if (call.cancelled) return;
    call.sendMetadata(reply.headers);
    if (reply.error) callback(reply.error);
    else callback(null, reply.value);
  }

  private async invokeService(call: ServerUnaryCall<InvokeServiceRequest, InvokeServiceResponse>): Promise<Reply<InvokeServiceResponse>> {
    const { id, message } = call.request;
    if (!id) throw new SkeinError('ERR_DIRECT_INVOKE_NO_APP_ID', 'failed getting app id: the id of the InvokeServiceRequest is empty');
    if (!message) throw new SkeinError('ERR_MALFORMED_REQUEST', 'the InvokeServiceRequest has no message');
    const extension = message.httpExtension;
    if (!extension) throw new SkeinError('ERR_MALFORMED_REQUEST', 'missing HTTP extension field: http_extension.verb names the HTTP verb to call the app with');
    const verb = HTTP_VERBS.get(extension.verb ?? Verb.NONE);
    if (!verb) throw new SkeinError('ERR_MALFORMED_REQUEST', `invalid HTTP verb: ${Verb[extension.verb ?? Verb.NONE] ?? String(extension.verb)}`);
    const { appId, namespace } = splitAppId(id, this.api.namespace);
    // The method is text, not a URL path: escape what a path cannot carry. A query after '?' is kept, as Dapr's
    // HTTP channel (which builds a URL from it) keeps it.
    const rawMethod = (message.method ?? '').replace(/^\/+/, '');
    const queryAt = rawMethod.indexOf('?');
    const methodText = queryAt === -1 ? rawMethod : rawMethod.slice(0, queryAt);
    if (!methodText) throw new SkeinError('ERR_MALFORMED_REQUEST', 'the method of the InvokeRequest is empty');
    const method = validateMethodPath(escapeForUrl(methodText));
    const query = [extension.querystring ?? '', queryAt === -1 ? '' : rawMethod.slice(queryAt + 1)].filter(Boolean).map(escapeForUrl).join('&');
    const data = message.data?.value ?? new Uint8Array(0);
    this.api.admitBodyLength(data.length);
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const headers = headersOf(call.metadata);
    if (message.contentType) headers.push(['content-type', message.contentType]);
    // The length is known; without it the app channel could not frame a GET or DELETE body at all.
    if (bytes.length > 0) headers.push(['content-length', String(bytes.length)]);
    const abort = new AbortController();
    call.once('cancelled', () => abort.abort());
    const traceCarrier = traceCarrierOf(headers);
    const response = await this.api.invoke({
      caller: undefined,
      target: { appId, namespace },
      verb,
      method,
      query,
      headers,
      // Small bodies go in one message (and may be retried on another instance); bigger ones stream, as over HTTP.
      body: bytes.length <= UNARY_BODY_LIMIT ? bytes : Readable.from(frames(bytes)),
      decisions: [],
      signal: abort.signal,
      ...(traceCarrier ? { traceCarrier } : {}),
    });
    // A unary reply cannot stream, so the answer is capped like a request body.
    const body = await readWhole(response.body, this.api.maxBodyBytes, `the response body of app ${appId}`).catch((error: unknown) => {
      abort.abort();
      throw error;
    });
    const replyHeaders = responseMetadata(response);
    const contentType = response.headers.find(([name]) => name === 'content-type')?.[1] ?? '';
    const grpcStatus = grpcStatusOfAppStatus(response.status);
    if (grpcStatus === undefined) return { headers: replyHeaders, value: { data: { type_url: '', value: body }, contentType } };
    // Dapr's shape: the status text as the message, the HTTP status and the start of the body in an ErrorInfo.
    const statusText = STATUS_CODES[response.status] ?? `HTTP ${response.status}`;
    const trailers = new Metadata();
    trailers.set(
      'grpc-status-details-bin',
      encodeStatus(grpcStatus, statusText, [
        errorInfo({
          reason: statusText,
          domain: 'dapr.io',
          metadata: { 'http.code': String(response.status), 'http.error_message': body.subarray(0, ERROR_INFO_BODY_BYTES).toString('utf8') },
        }),
      ]),
    );
    return { headers: replyHeaders, error: { code: grpcStatus, details: statusText, metadata: trailers } };
  }
}

/** Percent-encodes what an HTTP request target cannot carry, leaving existing %XX escapes and URL delimiters alone. */
function escapeForUrl(text: string): string {
  return text.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]+/g, (unsafe) => encodeURIComponent(unsafe));
}

/** A large body cut into frames for the streaming hop to the callee's sidecar. */
function* frames(body: Buffer): Iterable<Buffer> {
  for (let at = 0; at < body.length; at += UNARY_BODY_LIMIT) yield body.subarray(at, at + UNARY_BODY_LIMIT);
}

/**
 * The caller's gRPC metadata as the headers the app receives. Pseudo-headers and grpc-js's own transport headers
 * never reach the metadata; `grpc-*` and binary (`-bin`) entries are the gRPC hop's own, and the content type is
 * the message's, so those are dropped too. Hop-by-hop headers go as on the HTTP API.
 */
function headersOf(metadata: Metadata): HeaderList {
  const raw: string[] = [];
  for (const [name, values] of Object.entries(metadata.toJSON())) {
    if (name.startsWith(':') || name.startsWith('grpc-') || name.endsWith('-bin') || name === 'content-type' || name === 'content-length') continue;
    for (const value of values) if (typeof value === 'string') raw.push(name, value);
  }
  return forwardableHeaders(raw);
}

/** The app's response headers as gRPC metadata, named as Dapr names them, plus `dapr-http-status`. */
function responseMetadata(response: CallResponse): Metadata {
  const metadata = new Metadata();
  for (const [name, value] of response.headers) {
    if (name.endsWith('-bin')) continue;
    const key = PERMANENT_HTTP_HEADERS.has(name) || name.startsWith('grpc-') ? `dapr-${name}` : name;
    try {
      metadata.add(key, value);
    } catch {
      // A header gRPC metadata cannot carry (a name or value outside its character set) is left out.
    }
  }
  metadata.set('dapr-http-status', String(response.status));
  return metadata;
}

/**
 * The trailers of a call that failed with `error`: a `google.rpc.Status` whose ErrorInfo carries the catalogue's
 * code, so gRPC callers tell failures apart as HTTP callers do. A refusal worth retrying later (a 503: a peer at its
 * limit, a breaker open) adds a RetryInfo, the gRPC form of HTTP's `Retry-After`.
 */
export function errorTrailers(error: SkeinError): Metadata {
  const details = [errorInfo({ reason: error.wireCode(), domain: 'dapr.io', metadata: { errorCode: error.code, 'http.code': String(error.httpStatus) } })];
  if (error.httpStatus === 503) details.push(retryInfo(OVERLOAD_RETRY_AFTER_SECONDS));
  const trailers = new Metadata();
  trailers.set('grpc-status-details-bin', encodeStatus(error.grpcStatus, error.message, details));
  return trailers;
}

function errorInfo(info: google.rpc.IErrorInfo): google.protobuf.IAny {
  return { type_url: 'type.googleapis.com/google.rpc.ErrorInfo', value: google.rpc.ErrorInfo.encode(info).finish() };
}

function retryInfo(seconds: number): google.protobuf.IAny {
  return { type_url: 'type.googleapis.com/google.rpc.RetryInfo', value: google.rpc.RetryInfo.encode({ retryDelay: { seconds } }).finish() };
}

/** The bytes of a `google.rpc.Status`: what rich-error clients read from `grpc-status-details-bin`. */
function encodeStatus(code: GrpcStatus, message: string, details: google.protobuf.IAny[]): Buffer {
  const bytes = google.rpc.Status.encode({ code, message, details }).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const { ActorRuntimeStatus } = dapr.proto.runtime.v1.ActorRuntime;
const ACTOR_RUNTIME_STATUSES = new Map<string, dapr.proto.runtime.v1.ActorRuntime.ActorRuntimeStatus>([
  ['INITIALIZING', ActorRuntimeStatus.INITIALIZING],
  ['DISABLED', ActorRuntimeStatus.DISABLED],
  ['RUNNING', ActorRuntimeStatus.RUNNING],
]);

/** The metadata snapshot the HTTP API returns as JSON, in Dapr's GetMetadataResponse fields. */
function toGetMetadataResponse(snapshot: MetadataSnapshot): GetMetadataResponse {
  const activeActors = snapshot.actorRuntime.activeActors.map(({ type, count }) => ({ type, count }));
  return {
    id: snapshot.id,
    activeActorsCount: activeActors,
    registeredComponents: snapshot.components.map(({ name, type, version }) => ({ name, type, version, capabilities: [] })),
    extendedMetadata: { ...snapshot.extended },
    httpEndpoints: snapshot.httpEndpoints.map(({ name }) => ({ name })),
    appConnectionProperties: {
      port: snapshot.appConnectionProperties.port ?? 0,
      protocol: snapshot.appConnectionProperties.protocol,
      channelAddress: snapshot.appConnectionProperties.channelAddress,
    },
    runtimeVersion: snapshot.runtimeVersion,
    enabledFeatures: [...snapshot.enabledFeatures],
    actorRuntime: {
      runtimeStatus: ACTOR_RUNTIME_STATUSES.get(snapshot.actorRuntime.runtimeStatus) ?? ActorRuntimeStatus.INITIALIZING,
      activeActors,
      hostReady: snapshot.actorRuntime.hostReady,
      placement: snapshot.actorRuntime.placement,
    },
    mcpServers: snapshot.mcpServers.map(({ name }) => ({ name })),
    resiliencies: snapshot.resiliencies.map(({ name }) => ({ name })),
  };
}
