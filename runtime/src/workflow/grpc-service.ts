import { randomUUID } from 'node:crypto';
import type { ServerWritableStream } from '@grpc/grpc-js';
import { SkeinError, asSkeinError, logger } from '@skein/core';
import { durabletask as dt, taskHubService } from '@skein/proto';
import { errorTrailers, type GrpcApi } from '../api/grpc.js';
import { WorkflowStatus, type WorkflowState } from './api.js';
import { text, timestamp, millisOf } from './instance.js';
import type { WorkflowEngine } from './engine.js';

const log = logger('workflow');

/** The durabletask state of an instance (OrchestrationState). */
function orchestrationState(state: WorkflowState, withPayloads: boolean): dt.IOrchestrationState {
  return {
    instanceId: state.instanceId,
    name: state.name,
    orchestrationStatus: state.status,
    createdTimestamp: timestamp(state.createdAt.getTime()),
    lastUpdatedTimestamp: timestamp(state.lastUpdatedAt.getTime()),
    ...(withPayloads && state.input !== undefined ? { input: { value: state.input } } : {}),
    ...(withPayloads && state.output !== undefined ? { output: { value: state.output } } : {}),
    ...(state.customStatus !== undefined ? { customStatus: { value: state.customStatus } } : {}),
    ...(state.failure
      ? { failureDetails: { errorType: state.failure.errorType, errorMessage: state.failure.errorMessage, ...(state.failure.stackTrace ? { stackTrace: { value: state.failure.stackTrace } } : {}) } }
      : {}),
  };
}

function instanceResponse(state: WorkflowState | undefined, withPayloads: boolean): dt.IGetInstanceResponse {
  return state ? { exists: true, orchestrationState: orchestrationState(state, withPayloads) } : { exists: false };
}

/** The first text value of a gRPC metadata key. */
function metadataText(values: ReadonlyArray<string | Buffer>): string | undefined {
  const first = values[0];
  return typeof first === 'string' ? first : undefined;
}

/** An abort signal that fires when the unary call is cancelled (the client gave up or its deadline passed). */
function cancelled(call: { on(event: 'cancelled', listener: () => void): unknown }): AbortSignal {
  const controller = new AbortController();
  call.on('cancelled', () => controller.abort());
  return controller.signal;
}

/**
 * Serves `TaskHubSidecarService` on the sidecar's gRPC API port: Dapr's workflow SDKs (`@dapr/dapr`'s
 * `WorkflowRuntime` and `DaprWorkflowClient`, and the Python, Go, .NET and Java ones) use it unchanged.
 */
export function serveTaskHub(grpc: GrpcApi, engine: WorkflowEngine): void {
  const unary = grpc.unary.bind(grpc);
  grpc.serve(taskHubService, {
    hello: unary(async () => ({})),
    startInstance: unary<dt.ICreateInstanceRequest, dt.ICreateInstanceResponse>(async (request, call) => {
      const at = millisOf(request.scheduledStartTimestamp);
      const instanceId = await engine.start({
        name: request.name ?? '',
        instanceId: request.instanceId || undefined,
        input: text(request.input),
        scheduledStart: at > 0 ? new Date(at) : undefined,
        traceParent: metadataText(call.metadata.get('traceparent')),
        traceState: metadataText(call.metadata.get('tracestate')),
      });
      return { instanceId };
    }),
    getInstance: unary<dt.IGetInstanceRequest, dt.IGetInstanceResponse>(async (request) => instanceResponse(await engine.get(request.instanceId ?? ''), request.getInputsAndOutputs ?? false)),
    rewindInstance: unary<dt.IRewindInstanceRequest, dt.IRewindInstanceResponse>(async () => {
      throw new SkeinError('ERR_API_NOT_SUPPORTED', 'RewindInstance is not supported by Skein');
    }),
    waitForInstanceStart: unary<dt.IGetInstanceRequest, dt.IGetInstanceResponse>(async (request, call) =>
      instanceResponse(await engine.wait(request.instanceId ?? '', 'start', cancelled(call)), request.getInputsAndOutputs ?? false),
    ),
    waitForInstanceCompletion: unary<dt.IGetInstanceRequest, dt.IGetInstanceResponse>(async (request, call) =>
      instanceResponse(await engine.wait(request.instanceId ?? '', 'completion', cancelled(call)), request.getInputsAndOutputs ?? false),
    ),
    raiseEvent: unary<dt.IRaiseEventRequest, dt.IRaiseEventResponse>(async (request) => {
      await engine.raiseEvent(request.instanceId ?? '', request.name ?? '', text(request.input));
      return {};
    }),
    terminateInstance: unary<dt.ITerminateRequest, dt.ITerminateResponse>(async (request) => {
      await engine.terminate(request.instanceId ?? '', { output: text(request.output), recursive: request.recursive ?? false });
      return {};
    }),
    suspendInstance: unary<dt.ISuspendRequest, dt.ISuspendResponse>(async (request) => {
      await engine.suspend(request.instanceId ?? '', text(request.reason));
      return {};
    }),
    resumeInstance: unary<dt.IResumeRequest, dt.IResumeResponse>(async (request) => {
      await engine.resume(request.instanceId ?? '', text(request.reason));
      return {};
    }),
    queryInstances: unary<dt.IQueryInstancesRequest, dt.IQueryInstancesResponse>(async (request) => {
      const query = request.query ?? {};
      const from = millisOf(query.createdTimeFrom);
      const to = millisOf(query.createdTimeTo);
      const page = await engine.list({
        statuses: (query.runtimeStatus ?? []),
        createdFrom: from > 0 ? new Date(from) : undefined,
        createdTo: to > 0 ? new Date(to) : undefined,
        instanceIdPrefix: text(query.instanceIdPrefix),
        limit: query.maxInstanceCount || undefined,
        continuationToken: text(query.continuationToken),
      });
      return {
        orchestrationState: page.instances.map((state) => orchestrationState(state, query.fetchInputsAndOutputs ?? false)),
        ...(page.continuationToken ? { continuationToken: { value: page.continuationToken } } : {}),
      };
    }),
    // Dapr 1.17: instance ids a page at a time (at most 1,024), ordered by id, and an instance's raw history.
    listInstanceIDs: unary<dt.IListInstanceIDsRequest, dt.IListInstanceIDsResponse>(async (request) => {
      const page = await engine.list({ limit: request.pageSize || undefined, continuationToken: request.continuationToken || undefined });
      return { instanceIds: page.instances.map((state) => state.instanceId), ...(page.continuationToken ? { continuationToken: page.continuationToken } : {}) };
    }),
    getInstanceHistory: unary<dt.IGetInstanceHistoryRequest, dt.IGetInstanceHistoryResponse>(async (request) => {
      if (!request.instanceId) throw new SkeinError('ERR_INSTANCE_ID_PROVIDED_MISSING', 'no instance id was provided');
      return { events: await engine.historyEvents(request.instanceId) };
    }),
    purgeInstances: unary<dt.IPurgeInstancesRequest, dt.IPurgeInstancesResponse>(async (request) => {
      if (request.instanceId) return { deletedInstanceCount: (await engine.purge(request.instanceId, { recursive: true })) ? 1 : 0 };
      const filter = request.purgeInstanceFilter ?? {};
      const from = millisOf(filter.createdTimeFrom);
      const to = millisOf(filter.createdTimeTo);
      const statuses = (filter.runtimeStatus ?? []) as WorkflowStatus[];
      let deleted = 0;
      let continuationToken: string | undefined;
      do {
        const page = await engine.list({ statuses, createdFrom: from > 0 ? new Date(from) : undefined, createdTo: to > 0 ? new Date(to) : undefined, continuationToken });
        for (const state of page.instances) if (await engine.purge(state.instanceId, { recursive: true }).catch(() => false)) deleted++;
        continuationToken = page.continuationToken;
      } while (continuationToken);
      return { deletedInstanceCount: deleted };
    }),
    getWorkItems: (call: ServerWritableStream<dt.IGetWorkItemsRequest, dt.IWorkItem>) => {
      try {
        grpc.authorize(call.metadata);
      } catch (error) {
        const skeinError = asSkeinError(error);
        call.emit('error', { code: skeinError.grpcStatus, details: skeinError.message, metadata: errorTrailers(skeinError) });
        return;
      }
      const id = randomUUID();
      let open = true;
      const close = (): void => {
        if (!open) return;
        open = false;
        engine.removeWorker(id);
      };
      call.on('cancelled', close);
      call.on('close', close);
      call.on('error', close);
      engine.addWorker({
        id,
        send: (item) => {
          if (!open) return;
          call.write(item);
        },
      });
    },
    completeActivityTask: unary<dt.IActivityResponse, dt.ICompleteTaskResponse>(async (request) => {
      await engine.completeActivity(request);
      return {};
    }),
    completeOrchestratorTask: unary<dt.IOrchestratorResponse, dt.ICompleteTaskResponse>(async (request) => {
      engine.completeOrchestration(request);
      return {};
    }),
    completeWorkflowTask: unary<dt.IOrchestratorResponse, dt.ICompleteTaskResponse>(async (request) => {
      engine.completeOrchestration(request);
      return {};
    }),
  });
  log.debug('serving TaskHubSidecarService');
}
