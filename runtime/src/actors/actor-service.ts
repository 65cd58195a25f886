import { skein } from '@skein/proto';
import { SkeinError, asSkeinError, logger, formatSpiffeId } from '@skein/core';
import { failCall } from '../invoke/server.js';
import type { GrpcHandler } from '../transport/grpc-server.js';
import type { ActorRuntime } from './actor-runtime.js';

const log = logger('actors');

/** gRPC path of `skein.internal.v1.Actors/CallActor` (actors.proto). */
export const CALL_ACTOR_PATH = '/skein.internal.v1.Actors/CallActor';

/** What the service checks callers against: this sidecar's own trust domain and namespace. */
export interface ActorServiceIdentity {
  trustDomain(): string;
  namespace: string;
}

/**
 * The callee side of `skein.internal.v1.Actors`, served on the internal mTLS port next to Invocation. Only sidecars
 * of this sidecar's trust domain and namespace may call (actors are per namespace); the runtime decides where the
 * operation runs. Errors travel as the catalogue's gRPC status with the Skein code in a trailer.
 */
export function actorServiceHandler(runtime: ActorRuntime, own: ActorServiceIdentity): GrpcHandler {
  const { ActorRequest, ActorResponse } = skein.internal.v1;
  return (call) => {
    const abort = new AbortController();
    call.onCancel(() => abort.abort(new Error('the caller cancelled the actor call')));
    let request: skein.internal.v1.ActorRequest | undefined;
    call.receive(
      (message) => {
        request ??= ActorRequest.decode(message);
      },
      (error) => {
        if (error) return;
        void (async () => {
          try {
            // The identity of the connection, read from its verified certificate when it was admitted.
            const caller = call.caller;
            if (caller.trustDomain !== own.trustDomain() || caller.namespace !== own.namespace) {
              throw new SkeinError('ERR_PERMISSION_DENIED', `caller ${formatSpiffeId(caller)} may not call actors of namespace ${own.namespace}`);
            }
            if (!request) throw new SkeinError('ERR_MALFORMED_REQUEST', 'an actor call without a request');
            const response = await runtime.handleRemote(request, caller, abort.signal);
            call.finish(0, undefined, undefined, ActorResponse.encode(response).finish());
          } catch (failure) {
            if (abort.signal.aborted) return;
            const skeinError = asSkeinError(failure);
            if (skeinError.httpStatus >= 500 && skeinError.code !== 'ERR_ACTOR_HOST_LEAVING') log.warn('actor call failed', { code: skeinError.code, reason: skeinError.message });
            failCall(call, skeinError);
          }
        })();
      },
    );
  };
}
