import { pipeline as pipe } from 'node:stream';
import type { AppChannel } from '../app/channel.js';
import type { IncomingMessage } from 'node:http';
import { SkeinError, forwardableHeaders, stampIdentity, type HeaderList } from '@skein/core';
import type { Handler, Call, CallResponse } from './pipeline.js';
import { SpanKind, failSpan, type Tracing } from '../telemetry/tracing.js';
import { endWithBody, recordStatus, withTraceHeaders } from '../telemetry/spans.js';

/**
 * The end of the callee's inbound pipeline: the call goes to the app over loopback, carrying the identity
 * stamped from the verified caller (never what the caller wrote) and, when configured, the app's API token.
 */
export function appTerminal(channel: AppChannel | undefined, appId: string, appApiToken: string | undefined, tracing?: Tracing): Handler {
  return async (request: Call): Promise<CallResponse> => {
    if (!channel) throw new SkeinError('ERR_DIRECT_INVOKE_APP_UNAVAILABLE', `app ${appId} has no app port: it only makes calls`);
    const caller = request.caller;
    if (!caller) throw new SkeinError('ERR_UNAUTHENTICATED', 'the caller has no verified identity');
    let headers = stampIdentity(request.headers, { callerAppId: caller.appId, callerNamespace: caller.namespace, calleeAppId: appId }, appApiToken);
    const path = `/${request.method}${request.query ? `?${request.query}` : ''}`;
    const scope = tracing?.enabled && request.trace ? tracing.start(`call app ${appId}`, SpanKind.CLIENT, request.trace.context, { 'http.request.method': request.verb, 'url.path': `/${request.method}` }) : undefined;
    if (scope && tracing) headers = withTraceHeaders(headers, tracing.inject(scope.context));
    let answer;
    try {
      answer = await send(channel, request.verb, path, headers, request);
    } catch (error) {
      if (scope) {
        failSpan(scope.span, (error as SkeinError).code ?? 'error', (error as Error).message);
        scope.span.end();
      }
      throw error;
    }
    if (scope) {
      recordStatus(scope.span, answer.statusCode ?? 502);
      endWithBody(scope.span, answer);
    }
    return { status: answer.statusCode ?? 502, headers: forwardableHeaders(answer.rawHeaders), body: answer };
  };
}

/** A whole body may be sent again on a new connection when a reused one was stale; a streamed body goes once. */
function send(channel: AppChannel, verb: string, path: string, headers: HeaderList, request: Call): Promise<IncomingMessage> {
  if (Buffer.isBuffer(request.body)) return channel.exchange(verb, path, headers, request.body, request.signal);
  const { request: outgoing, response } = channel.send(verb, path, headers, request.signal);
  pipe(request.body, outgoing, () => undefined);
  return response;
}
