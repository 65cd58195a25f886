import { Metadata, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { skein } from '@skein/proto';
import { ERROR_CATALOGUE, SkeinError, asSkeinError, logger, formatSpiffeId, spiffeIdOfCertificate } from '@skein/core';
import { ERROR_CODE_METADATA, ERROR_STATUS_METADATA } from '../invoke/server.js';
import type { ActorRuntime } from './actor-runtime.js';

const log = logger('actors');

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
export function actorServiceImplementation(runtime: ActorRuntime, own: ActorServiceIdentity): UntypedServiceImplementation {
  return {
    callActor: (call: ServerUnaryCall<skein.internal.v1.IActorRequest, skein.internal.v1.IActorResponse>, callback: sendUnaryData<skein.internal.v1.IActorResponse>) => {
      const abort = new AbortController();
      call.once('cancelled', () => abort.abort(new Error('the caller cancelled the actor call')));
      void (async () => {
        try {
          const cert = call.getAuthContext().sslPeerCertificate;
          const caller = cert ? spiffeIdOfCertificate(cert) : undefined;
          if (!caller) throw new SkeinError('ERR_UNAUTHENTICATED', 'the caller presented no verified SPIFFE identity');
          if (caller.trustDomain !== own.trustDomain() || caller.namespace !== own.namespace) {
            throw new SkeinError('ERR_PERMISSION_DENIED', `caller ${formatSpiffeId(caller)} may not call actors of namespace ${own.namespace}`);
          }
          callback(null, await runtime.handleRemote(call.request, caller, abort.signal));
        } catch (error) {
          if (abort.signal.aborted) return;
          const skeinError = asSkeinError(error);
          if (skeinError.httpStatus >= 500 && skeinError.code !== 'ERR_ACTOR_HOST_LEAVING') log.warn('actor call failed', { code: skeinError.code, reason: skeinError.message });
          const metadata = new Metadata();
          metadata.set(ERROR_CODE_METADATA, skeinError.code);
          if (skeinError.httpStatus !== ERROR_CATALOGUE[skeinError.code].http) metadata.set(ERROR_STATUS_METADATA, String(skeinError.httpStatus));
          callback({ code: skeinError.grpcStatus, details: skeinError.message, metadata });
        }
      })();
    },
  };
}
