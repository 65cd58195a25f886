import { bearerChallenge, type BearerValidator } from '../auth/bearer.js';
import { formatSpiffeId, type HeaderList } from '@skein/core';
import type { DecisionSink } from './decisions.js';
import { jsonResponse } from './responses.js';
import type { Handler, Middleware, Call, CallResponse } from './pipeline.js';

/** The method path of RFC 9728 protected-resource metadata, with or without the resource's path appended. */
export const PROTECTED_RESOURCE_PATH = '.well-known/oauth-protected-resource';

function header(headers: HeaderList, name: string): string | undefined {
  return headers.find(([key]) => key === name)?.[1];
}


/**
 * `middleware.http.bearer` on the callee: the caller must present a valid JWT from the configured issuer, for our
 * audience. The token's claims flow to later stages (tool policy), and the token itself is removed: it is never
 * passed on to the app. As an MCP authorization server's resource server, the stage also answers RFC 9728
 * protected-resource metadata, and its 401s point clients at it.
 */
export class BearerMiddleware implements Middleware {
  readonly name = 'bearer';
  private readonly validator: BearerValidator;
  private readonly sink: DecisionSink;
  private readonly issuer: string;

  constructor(validator: BearerValidator, issuer: string, sink: DecisionSink) {
    this.validator = validator;
    this.issuer = issuer;
    this.sink = sink;
  }

  async handle(request: Call, next: Handler): Promise<CallResponse> {
    const location = this.locate(request);
    if (request.method === PROTECTED_RESOURCE_PATH || request.method.startsWith(`${PROTECTED_RESOURCE_PATH}/`)) {
      if (request.verb !== 'GET') return jsonResponse(405, { error: 'method_not_allowed' }, [['allow', 'GET']]);
      const resourcePath = request.method.slice(PROTECTED_RESOURCE_PATH.length + 1);
      return jsonResponse(200, { resource: `${location.base}/${resourcePath}`, authorization_servers: [this.issuer], bearer_methods_supported: ['header'] });
    }
    const result = await this.validator.validate(header(request.headers, 'authorization'), {
      ...(request.caller ? { caller: formatSpiffeId(request.caller) } : {}),
      target: request.target.appId,
      method: `${request.verb} /${request.method}`,
    });
    request.decisions.push(result.decision);
    this.sink.record(result.decision, request);
    if (!result.ok) {
      const challenge = bearerChallenge(result.failure, result.decision.reason, `${location.base}/${PROTECTED_RESOURCE_PATH}/${request.method}`);
      return jsonResponse(401, result.error.toBody(), [['www-authenticate', challenge]]);
    }
    request.claims = result.claims;
    // The token was for this server; passing it further would be token passthrough.
    request.headers = request.headers.filter(([name]) => name !== 'authorization');
    return next(request);
  }

  /** Where the caller reached this app: its sidecar's host and the invoke prefix it used (sent by that sidecar). */
  private locate(request: Call): { base: string } {
    const host = header(request.headers, 'x-forwarded-host') ?? 'localhost';
    const proto = header(request.headers, 'x-forwarded-proto') ?? 'http';
    const prefix = header(request.headers, 'x-forwarded-prefix') ?? '';
    return { base: `${proto}://${host}${prefix}` };
  }
}
