import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { dapr, skein } from './gen/skein.js';

/** Encoder/decoder pair every generated message type provides. */
interface Codec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(bytes: Uint8Array): T;
}

function method<Req, Res>(
  path: string,
  requestType: Codec<Req>,
  responseType: Codec<Res>,
  requestStream: boolean,
  responseStream: boolean,
): MethodDefinition<Req, Res> {
  const toBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    path,
    requestStream,
    responseStream,
    requestSerialize: (value: Req) => toBuffer(requestType.encode(value).finish()),
    requestDeserialize: (bytes: Buffer) => requestType.decode(bytes),
    responseSerialize: (value: Res) => toBuffer(responseType.encode(value).finish()),
    responseDeserialize: (bytes: Buffer) => responseType.decode(bytes),
  };
}

const sentry = skein.sentry.v1;
const internal = skein.internal.v1;
const placement = skein.placement.v1;

/** gRPC definition of `skein.sentry.v1.Sentry`. */
export const sentryService = {
  signCertificate: method<skein.sentry.v1.ISignCertificateRequest, skein.sentry.v1.ISignCertificateResponse>(
    '/skein.sentry.v1.Sentry/SignCertificate',
    sentry.SignCertificateRequest,
    sentry.SignCertificateResponse,
    false,
    false,
  ),
} satisfies ServiceDefinition;

/** gRPC definition of `skein.internal.v1.Invocation`, the sidecar-to-sidecar hop. */
export const invocationService = {
  invoke: method<skein.internal.v1.IInvokeRequest, skein.internal.v1.IResponseFrame>(
    '/skein.internal.v1.Invocation/Invoke',
    internal.InvokeRequest,
    internal.ResponseFrame,
    false,
    true,
  ),
  invokeStream: method<skein.internal.v1.IRequestFrame, skein.internal.v1.IResponseFrame>(
    '/skein.internal.v1.Invocation/InvokeStream',
    internal.RequestFrame,
    internal.ResponseFrame,
    true,
    true,
  ),
} satisfies ServiceDefinition;

/** gRPC definition of `skein.internal.v1.Actors`: actor operations sent to the sidecar that owns the actor. */
export const actorService = {
  callActor: method<skein.internal.v1.IActorRequest, skein.internal.v1.IActorResponse>(
    '/skein.internal.v1.Actors/CallActor',
    internal.ActorRequest,
    internal.ActorResponse,
    false,
    false,
  ),
} satisfies ServiceDefinition;

/** gRPC definition of `skein.placement.v1.Placement`: sidecars report their host, the leader streams table rounds. */
export const placementService = {
  reportHost: method<skein.placement.v1.IHostMessage, skein.placement.v1.IPlacementOrder>(
    '/skein.placement.v1.Placement/ReportHost',
    placement.HostMessage,
    placement.PlacementOrder,
    true,
    true,
  ),
} satisfies ServiceDefinition;

/**
 * gRPC definition of Dapr's `dapr.proto.runtime.v1.Dapr`, limited to the methods the sidecar's gRPC API serves;
 * paths and messages are Dapr's, so Dapr's own clients call it unchanged.
 */
export const daprService = {
  invokeService: method<dapr.proto.runtime.v1.IInvokeServiceRequest, dapr.proto.common.v1.IInvokeResponse>(
    '/dapr.proto.runtime.v1.Dapr/InvokeService',
    dapr.proto.runtime.v1.InvokeServiceRequest,
    dapr.proto.common.v1.InvokeResponse,
    false,
    false,
  ),
  getMetadata: method<dapr.proto.runtime.v1.IGetMetadataRequest, dapr.proto.runtime.v1.IGetMetadataResponse>(
    '/dapr.proto.runtime.v1.Dapr/GetMetadata',
    dapr.proto.runtime.v1.GetMetadataRequest,
    dapr.proto.runtime.v1.GetMetadataResponse,
    false,
    false,
  ),
} satisfies ServiceDefinition;
