/**
 * The end of the outbound pipeline for HTTPEndpoints: the call goes straight to the endpoint's base URL (HTTP, or
 * HTTPS with its client TLS), not through the mesh. Bodies stream both ways (SSE included), statuses pass through,
 * redirects are not followed. A connection that cannot be made is a 502 naming the endpoint, never its headers.
 */
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { pipeline } from 'node:stream';
import { SkeinError, logger, maskSecretValues, forwardableHeaders, headersObject, IDENTITY_HEADERS, type HeaderList } from '@skein/core';
import type { Call, CallResponse } from '../pipeline/pipeline.js';
import type { CompiledHttpEndpoint } from './http-endpoint.js';

const log = logger('outbound');

/** Headers meant for this sidecar or stamped inside the mesh; they mean nothing to an outside service. */
// x-forwarded-* describe the caller's sidecar to mesh peers; a server outside the mesh has no use for them.
const NOT_FORWARDED = new Set<string>(['dapr-app-id', 'dapr-api-token', ...IDENTITY_HEADERS, 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-prefix']);

/** How long a new connection (TCP and TLS) may take; an unanswered SYN would otherwise hang for minutes. */
const CONNECT_TIMEOUT_MS = 10_000;

/** The request line's path: the base URL's path, then the method, then the caller's raw query. Pure. */
export function endpointPath(baseUrl: URL, method: string, query: string): string {
  const base = baseUrl.pathname === '/' ? '' : baseUrl.pathname;
  return `${base}/${method}${query ? `?${query}` : ''}`;
}

/** The headers sent to an endpoint: the caller's (minus sidecar and mesh identity headers), then the resource's. Pure. */
export function endpointHeaders(callerHeaders: HeaderList, configured: CompiledHttpEndpoint['headers']): HeaderList {
  const replaced = new Set(configured.map(([name]) => name));
  const out: HeaderList = callerHeaders.filter(([name]) => !NOT_FORWARDED.has(name) && !replaced.has(name));
  for (const [name, value] of configured) out.push([name, value]);
  return out;
}

/** Sends calls to HTTPEndpoints, one keep-alive agent per endpoint. */
export class HttpEndpointClient {
  private readonly agents = new Map<string, HttpAgent>();

  /** Sends `request` to `endpoint`; resolves with the response head once it arrives, its body still streaming. */
  send(endpoint: CompiledHttpEndpoint, request: Call): Promise<CallResponse> {
    const secure = endpoint.baseUrl.protocol === 'https:';
    const options = {
      method: request.verb,
      hostname: endpoint.baseUrl.hostname.replace(/^\[|\]$/g, ''),
      port: endpoint.baseUrl.port || (secure ? 443 : 80),
      path: endpointPath(endpoint.baseUrl, request.method, request.query),
      headers: headersObject(endpointHeaders(request.headers, endpoint.headers)),
      agent: this.agentFor(endpoint),
    };
    return new Promise<CallResponse>((resolve, reject) => {
      let outgoing: ClientRequest;
      try {
        outgoing = secure ? httpsRequest(options) : httpRequest(options);
      } catch (error) {
        reject(unreachable(endpoint, error));
        return;
      }
      const onAbort = (): void => void outgoing.destroy(new SkeinError('ERR_DIRECT_INVOKE', `call to ${endpoint.name} was cancelled`));
      if (request.signal.aborted) onAbort();
      else request.signal.addEventListener('abort', onAbort, { once: true });
      outgoing.once('socket', (socket: Socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(() => outgoing.destroy(Object.assign(new Error('connection timed out'), { code: 'ETIMEDOUT' })), CONNECT_TIMEOUT_MS);
        socket.once(secure ? 'secureConnect' : 'connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      outgoing.on('error', (error) => {
        request.signal.removeEventListener('abort', onAbort);
        const failure = error instanceof SkeinError ? error : unreachable(endpoint, error);
        if (failure.code === 'ERR_DIRECT_INVOKE_ENDPOINT_UNAVAILABLE') log.warn('HTTP endpoint unreachable', { endpoint: endpoint.name, reason: failure.message });
        reject(failure);
      });
      outgoing.once('response', (answer: IncomingMessage) => {
        request.signal.removeEventListener('abort', onAbort);
        request.signal.addEventListener('abort', () => answer.destroy(), { once: true });
        log.debug('endpoint answered', { endpoint: endpoint.name, verb: request.verb, status: answer.statusCode ?? 0 });
        resolve({ status: answer.statusCode ?? 502, headers: forwardableHeaders(answer.rawHeaders), body: answer });
      });
      if (Buffer.isBuffer(request.body)) outgoing.end(request.body);
      else pipeline(request.body, outgoing, () => undefined);
    });
  }

  private agentFor(endpoint: CompiledHttpEndpoint): HttpAgent {
    let agent = this.agents.get(endpoint.name);
    if (!agent) {
      const tls = endpoint.tls;
      agent = tls
        ? new HttpsAgent({ keepAlive: true, rejectUnauthorized: true, ...(tls.ca ? { ca: tls.ca } : {}), ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}) })
        : new HttpAgent({ keepAlive: true });
      this.agents.set(endpoint.name, agent);
    }
    return agent;
  }

  /** Closes every pooled connection. */
  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}

function unreachable(endpoint: CompiledHttpEndpoint, error: unknown): SkeinError {
  const reason = maskSecretValues(error instanceof Error ? error.message : String(error));
  return new SkeinError('ERR_DIRECT_INVOKE_ENDPOINT_UNAVAILABLE', `failed to invoke, id: ${endpoint.name}, err: HTTP endpoint ${endpoint.name} at ${endpoint.display} cannot be reached: ${reason}`, { cause: error });
}
