import { skein } from '@skein/proto';
import { type RingMember, ERROR_CATALOGUE, SkeinError, type ErrorCode, GrpcStatus, logger, formatSpiffeId } from '@skein/core';
import type { WorkloadIdentity } from '../identity/workload.js';
import { ERROR_CODE_METADATA, ERROR_STATUS_METADATA } from '../invoke/server.js';
import { PeerChannels } from '../invoke/client.js';
import { ChannelOverloadedError, ClientCall, GrpcCallError } from '../transport/grpc-channel.js';
import { CALL_ACTOR_PATH } from './actor-service.js';

const log = logger('actors');

/** How an actor call to another sidecar failed. */
export type PeerFailure =
  /** The call provably never started on the peer (refused connection, or the peer is leaving): retry elsewhere. */
  | { kind: 'retry'; reason: string }
  /** The peer answered with an error, or the call broke off after it may have started: report it. */
  | { kind: 'error'; error: SkeinError };

/** Sorts out a failed call to `member`. */
export function classifyPeerFailure(error: unknown, member: RingMember): PeerFailure {
  if (error instanceof SkeinError) return { kind: 'error', error };
  if (error instanceof ChannelOverloadedError) {
    return { kind: 'error', error: new SkeinError('ERR_ACTOR_INVOKE_METHOD', `error invoke actor method: the sidecar that owns the actor (${member.appId} at ${member.address}) is at its limit of calls in flight; retry later`, { cause: error, httpStatus: 503 }) };
  }
  if (!(error instanceof GrpcCallError)) {
    return { kind: 'error', error: new SkeinError('ERR_ACTOR_INVOKE_METHOD', `error invoke actor method: ${String(error)}`, { cause: error }) };
  }
  const code = error.trailers[ERROR_CODE_METADATA];
  if (code !== undefined && code in ERROR_CATALOGUE) {
    if (code === 'ERR_ACTOR_HOST_LEAVING') return { kind: 'retry', reason: `${member.address} is leaving` };
    const httpStatus = Number(error.trailers[ERROR_STATUS_METADATA]);
    return { kind: 'error', error: new SkeinError(code as ErrorCode, error.details, { cause: error, ...(Number.isInteger(httpStatus) && httpStatus > 0 ? { httpStatus } : {}) }) };
  }
  if (error.unsent) return { kind: 'retry', reason: `${member.address} is unreachable: ${error.details}` };
  if (error.code === GrpcStatus.CANCELLED) return { kind: 'error', error: new SkeinError('ERR_ACTOR_INVOKE_METHOD', 'error invoke actor method: the call was cancelled', { cause: error }) };
  return {
    kind: 'error',
    error: new SkeinError(
      'ERR_ACTOR_INVOKE_METHOD',
      `error invoke actor method: the sidecar that owns the actor (${member.appId} at ${member.address}) failed during the call, which may or may not have run: ${error.details}`,
      { cause: error },
    ),
  };
}

/**
 * Channels to the sidecars that own actors, one per address, each verifying that the peer's SVID is the App ID the
 * placement table names for that address (same trust domain and namespace as this sidecar).
 */
export class ActorPeers {
  private readonly identity: WorkloadIdentity;
  private readonly namespace: string;
  private readonly channels: PeerChannels;

  constructor(identity: WorkloadIdentity, namespace: string) {
    this.identity = identity;
    this.namespace = namespace;
    this.channels = new PeerChannels(identity, log, 'actor host');
  }

  /** Sends one actor operation to `member`; rejects with the transport's error (see `classifyPeerFailure`). */
  async call(member: RingMember, request: skein.internal.v1.IActorRequest, deadline: number, signal: AbortSignal): Promise<skein.internal.v1.IActorResponse> {
    const expected = formatSpiffeId({ trustDomain: this.identity.current.id.trustDomain, namespace: this.namespace, appId: member.appId });
    const channel = this.channels.get(member.address, member.appId, expected);
    let call: ClientCall | undefined;
    const onAbort = (): void => call?.cancel('the actor call was cancelled');
    const answer = new Promise<skein.internal.v1.IActorResponse>((resolve, reject) => {
      let response: skein.internal.v1.IActorResponse | undefined;
      const started = channel.start(
        CALL_ACTOR_PATH,
        {
          message: (bytes) => {
            response ??= skein.internal.v1.ActorResponse.decode(bytes);
          },
          end: (error) => {
            signal.removeEventListener('abort', onAbort);
            if (error) reject(error);
            else if (response) resolve(response);
            else reject(new GrpcCallError(GrpcStatus.INTERNAL, `${member.address} answered the actor call with no response`));
          },
        },
        { deadline },
      );
      const send = (opened: ClientCall): void => {
        call = opened;
        if (signal.aborted) opened.cancel('the actor call was cancelled');
        else signal.addEventListener('abort', onAbort, { once: true });
        opened.end(skein.internal.v1.ActorRequest.encode(request).finish());
      };
      if (started instanceof ClientCall) send(started);
      else started.then(send, reject);
    });
    return answer;
  }

  close(): void {
    this.channels.close();
  }
}
