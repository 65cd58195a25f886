import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { skein } from './gen/skein.js';

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
