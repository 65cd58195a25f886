import { Client, experimental, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { actorService, type skein } from '@skein/proto';
import { type RingMember, ERROR_CATALOGUE, SkeinError, type ErrorCode, logger, formatSpiffeId, spiffeIdOfCertificate } from '@skein/core';
import type { WorkloadIdentity } from '../identity/workload.js';
import { ERROR_CODE_METADATA, ERROR_STATUS_METADATA } from '../invoke/server.js';

const log = logger('actors');

/** How an actor call to another sidecar failed. */
export type PeerFailure =
  /** The call provably never started on the peer (refused connection, or the peer is leaving): retry elsewhere. */
  | { kind: 'retry'; reason: string }
  /** The peer answered with an error, or the call broke off after it may have started: report it. */
  | { kind: 'error'; error: SkeinError };

/** True when grpc-js says the connection could not be made at all, so no byte of the call reached the peer. */
function neverConnected(error: ServiceError): boolean {
  return error.code === status.UNAVAILABLE && /No connection established|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|failed to connect/i.test(error.details ?? '');
}

/** Sorts out a failed call to `member`. */
export function classifyPeerFailure(error: unknown, member: RingMember): PeerFailure {
  if (error instanceof SkeinError) return { kind: 'error', error };
  const serviceError = error as ServiceError;
  const code = serviceError.metadata?.get(ERROR_CODE_METADATA)[0];
  if (typeof code === 'string' && code in ERROR_CATALOGUE) {
    if (code === 'ERR_ACTOR_HOST_LEAVING') return { kind: 'retry', reason: `${member.address} is leaving` };
    const httpStatus = Number(serviceError.metadata?.get(ERROR_STATUS_METADATA)[0]);
    return { kind: 'error', error: new SkeinError(code as ErrorCode, serviceError.details, { cause: error, ...(Number.isInteger(httpStatus) && httpStatus > 0 ? { httpStatus } : {}) }) };
  }
  if (neverConnected(serviceError)) return { kind: 'retry', reason: `${member.address} is unreachable: ${serviceError.details}` };
  if (serviceError.code === status.CANCELLED) return { kind: 'error', error: new SkeinError('ERR_ACTOR_INVOKE_METHOD', 'error invoke actor method: the call was cancelled', { cause: error }) };
  return {
    kind: 'error',
    error: new SkeinError(
      'ERR_ACTOR_INVOKE_METHOD',
      `error invoke actor method: the sidecar that owns the actor (${member.appId} at ${member.address}) failed during the call, which may or may not have run: ${serviceError.details ?? String(error)}`,
      { cause: error },
    ),
  };
}

/**
 * gRPC clients to the sidecars that own actors, one per address, each verifying that the peer's SVID is the App ID
 * the placement table names for that address (same trust domain and namespace as this sidecar).
 */
export class ActorPeers {
  private readonly identity: WorkloadIdentity;
  private readonly namespace: string;
  private readonly clients = new Map<string, Client>();

  constructor(identity: WorkloadIdentity, namespace: string) {
    this.identity = identity;
    this.namespace = namespace;
  }

  /** Sends one actor operation to `member`; rejects with the gRPC error (see `classifyPeerFailure`). */
  call(member: RingMember, request: skein.internal.v1.IActorRequest, deadline: number, signal: AbortSignal): Promise<skein.internal.v1.IActorResponse> {
    const method = actorService.callActor;
    return new Promise((resolve, reject) => {
      const call = this.client(member).makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, request, new Metadata(), { deadline }, (error, response) => {
        signal.removeEventListener('abort', onAbort);
        if (error || !response) reject(error ?? new Error('empty response'));
        else resolve(response);
      });
      const onAbort = (): void => call.cancel();
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private client(member: RingMember): Client {
    const key = `${member.address}|${member.appId}`;
    let client = this.clients.get(key);
    if (!client) {
      const channelCredentials = experimental.createCertificateProviderChannelCredentials(this.identity.caProvider, this.identity.identityProvider, {
        checkServerIdentity: (_host, cert) => {
          const expected = formatSpiffeId({ trustDomain: this.identity.current.id.trustDomain, namespace: this.namespace, appId: member.appId });
          const id = spiffeIdOfCertificate(cert);
          if (id && formatSpiffeId(id) === expected) return undefined;
          log.warn('actor host presented an unexpected identity', { address: member.address, expected, got: id ? formatSpiffeId(id) : cert.subjectaltname });
          return new Error(`actor host at ${member.address} is not ${expected}`);
        },
      });
      client = new Client(member.address, channelCredentials, {
        // SNI carries a name, not the dialled IP; the peer is verified by its SPIFFE ID above.
        'grpc.ssl_target_name_override': `${member.appId}.skein.internal`,
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.max_receive_message_length': 8 * 1024 * 1024,
        'grpc.max_send_message_length': 8 * 1024 * 1024,
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1000,
      });
      this.clients.set(key, client);
    }
    return client;
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
