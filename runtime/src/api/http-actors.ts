import type { IncomingMessage, ServerResponse } from 'node:http';
import { readRequestBody } from '../pipeline/read-body.js';
import { SkeinError, forwardableHeaders, headersObject } from '@skein/core';
import type { ActorOperations } from './universal-actors.js';

/** Every actor route starts with this. */
export const ACTORS_PREFIX = '/v1.0/actors/';

/** Headers the sidecar answers itself and never passes from the client to the app. */
const NOT_FORWARDED = new Set(['host', 'dapr-api-token', 'content-length']);

function methodNotAllowed(verb: string, route: string): SkeinError {
  return new SkeinError('ERR_METHOD_NOT_ALLOWED', `${verb} is not allowed on ${route}`);
}

/** Reads a whole body up to `limit` bytes (actor calls are not streamed, as in Dapr). */
function send(res: ServerResponse, status: number, body?: string | Buffer, headers: Record<string, string | string[]> = {}): void {
  if (body === undefined || status === 204) {
    res.writeHead(status, headers).end();
    return;
  }
  res.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(body)) }).end(body);
}

/** The path segments after the prefix, percent-decoded; a broken encoding is the caller's mistake. */
function segmentsOf(path: string): string[] {
  return path.slice(ACTORS_PREFIX.length).split('/').map((segment) => {
    try {
      return decodeURIComponent(segment);
    } catch {
      throw new SkeinError('ERR_BAD_REQUEST', `invalid request: "${segment}" has invalid percent-encoding`);
    }
  });
}

/**
 * The HTTP front end of the actor API: `/v1.0/actors/<type>/<id>/method|state|reminders|timers/...`. It only
 * decodes the request, calls the operation and encodes the answer; errors are thrown for the caller's
 * error handler, which sends Dapr's `{"errorCode","message"}` body.
 */
export async function serveActorRequest(actors: ActorOperations, req: IncomingMessage, res: ServerResponse, path: string, maxBodyBytes: number): Promise<void> {
  const verb = (req.method ?? 'GET').toUpperCase();
  const [actorType = '', actorId = '', kind = '', ...rest] = segmentsOf(path);
  const name = rest.join('/');
  const abort = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) abort.abort(new Error('the client went away'));
  });
  const route = `/v1.0/actors/{actorType}/{actorId}/${kind}${rest.length > 0 ? '/{name}' : ''}`;
  switch (kind) {
    case 'method': {
      if (!['GET', 'POST', 'PUT', 'DELETE'].includes(verb)) throw methodNotAllowed(verb, route);
      if (rest.length !== 1) throw new SkeinError('ERR_BAD_REQUEST', 'invalid request: the actor method must be one path segment: /v1.0/actors/<type>/<id>/method/<method>');
      const body = await readRequestBody(req, maxBodyBytes);
      const headers = forwardableHeaders(req.rawHeaders).filter(([header]) => !NOT_FORWARDED.has(header));
      const reply = await actors.invoke(actorType, actorId, { method: name, verb, headers, body }, abort.signal);
      send(res, reply.status, reply.body, headersObject(reply.headers));
      return;
    }
    case 'state': {
      if (rest.length === 0) {
        if (verb !== 'POST' && verb !== 'PUT') throw methodNotAllowed(verb, route);
        await actors.stateTransaction(actorType, actorId, await readRequestBody(req, maxBodyBytes));
        send(res, 204);
        return;
      }
      if (verb !== 'GET') throw methodNotAllowed(verb, route);
      req.resume();
      const value = await actors.getState(actorType, actorId, name);
      if (value === undefined) send(res, 204);
      else send(res, 200, value, { 'content-type': 'application/json' });
      return;
    }
    case 'reminders':
    case 'timers': {
      if (rest.length !== 1) throw new SkeinError('ERR_BAD_REQUEST', `invalid request: use /v1.0/actors/<type>/<id>/${kind}/<name>`);
      const timer = kind === 'timers';
      if (verb === 'POST' || verb === 'PUT') {
        const body = await readRequestBody(req, maxBodyBytes);
        if (timer) await actors.createTimer(actorType, actorId, name, body, abort.signal);
        else await actors.createReminder(actorType, actorId, name, body);
        send(res, 204);
        return;
      }
      req.resume();
      if (verb === 'DELETE') {
        if (timer) await actors.deleteTimer(actorType, actorId, name, abort.signal);
        else await actors.deleteReminder(actorType, actorId, name);
        send(res, 204);
        return;
      }
      if (verb === 'GET' && !timer) {
        send(res, 200, JSON.stringify(await actors.getReminder(actorType, actorId, name)), { 'content-type': 'application/json' });
        return;
      }
      throw methodNotAllowed(verb, route);
    }
    default:
      throw new SkeinError('ERR_NOT_FOUND', `method "${verb} ${path}" is not found: use /v1.0/actors/<type>/<id>/method|state|reminders|timers/...`);
  }
}
