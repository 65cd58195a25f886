import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { dapr, skein } from './gen/skein.js';
import * as dt from './durabletask.js';

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

/** A unary method of the durabletask service: no proto package, so its path is `/TaskHubSidecarService/<name>`. */
function taskHub<Req, Res>(name: string, requestType: Codec<Req>, responseType: Codec<Res>): MethodDefinition<Req, Res> {
  return method(`/TaskHubSidecarService/${name}`, requestType, responseType, false, false);
}

/**
 * gRPC definition of `TaskHubSidecarService`, the durabletask protocol Dapr's workflow SDKs speak to the sidecar:
 * clients start and manage instances, workers stream work items and complete them.
 */
export const taskHubService = {
  hello: taskHub<dt.google.protobuf.IEmpty, dt.google.protobuf.IEmpty>('Hello', dt.google.protobuf.Empty, dt.google.protobuf.Empty),
  startInstance: taskHub<dt.ICreateInstanceRequest, dt.ICreateInstanceResponse>('StartInstance', dt.CreateInstanceRequest, dt.CreateInstanceResponse),
  getInstance: taskHub<dt.IGetInstanceRequest, dt.IGetInstanceResponse>('GetInstance', dt.GetInstanceRequest, dt.GetInstanceResponse),
  rewindInstance: taskHub<dt.IRewindInstanceRequest, dt.IRewindInstanceResponse>('RewindInstance', dt.RewindInstanceRequest, dt.RewindInstanceResponse),
  waitForInstanceStart: taskHub<dt.IGetInstanceRequest, dt.IGetInstanceResponse>('WaitForInstanceStart', dt.GetInstanceRequest, dt.GetInstanceResponse),
  waitForInstanceCompletion: taskHub<dt.IGetInstanceRequest, dt.IGetInstanceResponse>('WaitForInstanceCompletion', dt.GetInstanceRequest, dt.GetInstanceResponse),
  raiseEvent: taskHub<dt.IRaiseEventRequest, dt.IRaiseEventResponse>('RaiseEvent', dt.RaiseEventRequest, dt.RaiseEventResponse),
  terminateInstance: taskHub<dt.ITerminateRequest, dt.ITerminateResponse>('TerminateInstance', dt.TerminateRequest, dt.TerminateResponse),
  suspendInstance: taskHub<dt.ISuspendRequest, dt.ISuspendResponse>('SuspendInstance', dt.SuspendRequest, dt.SuspendResponse),
  resumeInstance: taskHub<dt.IResumeRequest, dt.IResumeResponse>('ResumeInstance', dt.ResumeRequest, dt.ResumeResponse),
  queryInstances: taskHub<dt.IQueryInstancesRequest, dt.IQueryInstancesResponse>('QueryInstances', dt.QueryInstancesRequest, dt.QueryInstancesResponse),
  purgeInstances: taskHub<dt.IPurgeInstancesRequest, dt.IPurgeInstancesResponse>('PurgeInstances', dt.PurgeInstancesRequest, dt.PurgeInstancesResponse),
  // Dapr 1.17's listing and history methods (durabletask/instance_listing.proto).
  listInstanceIDs: taskHub<dt.IListInstanceIDsRequest, dt.IListInstanceIDsResponse>('ListInstanceIDs', dt.ListInstanceIDsRequest, dt.ListInstanceIDsResponse),
  getInstanceHistory: taskHub<dt.IGetInstanceHistoryRequest, dt.IGetInstanceHistoryResponse>('GetInstanceHistory', dt.GetInstanceHistoryRequest, dt.GetInstanceHistoryResponse),
  getWorkItems: method<dt.IGetWorkItemsRequest, dt.IWorkItem>('/TaskHubSidecarService/GetWorkItems', dt.GetWorkItemsRequest, dt.WorkItem, false, true),
  completeActivityTask: taskHub<dt.IActivityResponse, dt.ICompleteTaskResponse>('CompleteActivityTask', dt.ActivityResponse, dt.CompleteTaskResponse),
  completeOrchestratorTask: taskHub<dt.IOrchestratorResponse, dt.ICompleteTaskResponse>('CompleteOrchestratorTask', dt.OrchestratorResponse, dt.CompleteTaskResponse),
  // The newer name of CompleteOrchestratorTask (Dapr 1.16+ SDKs); same messages.
  completeWorkflowTask: taskHub<dt.IOrchestratorResponse, dt.ICompleteTaskResponse>('CompleteWorkflowTask', dt.OrchestratorResponse, dt.CompleteTaskResponse),
} satisfies ServiceDefinition;
