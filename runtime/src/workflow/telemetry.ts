import { createHash } from 'node:crypto';
import { truncate, type WorkflowEvent, type WorkflowEventType } from '@skein/core';
import type { durabletask as dt, skein } from '@skein/proto';
import { SpanKind, type FinishedSpan } from '../telemetry/tracing.js';
import { WorkflowStatus, statusName } from './api.js';
import { millisOf, text, type InstanceState } from './instance.js';

/**
 * What a recorded history record means for telemetry: the workflow events to publish and the spans that ended.
 * Pure (no clock, no I/O): every time and id comes from the history, so whichever sidecar owns the instance when a
 * record lands publishes the same events and spans, and a span begun under one owner and ended under the next is
 * still one span of one trace.
 *
 * The trace of an execution: when the start carried a W3C `traceparent` (kept in the ExecutionStarted event's
 * `parentTraceContext`, so it survives in the history), the run is a child of the caller's span in the caller's
 * trace; otherwise its trace id is a hash of the instance and execution ids. The workflow span's and each activity
 * span's ids are hashes too, so no sidecar needs to remember an id another one chose, and a failover between an
 * activity's scheduling and its result cannot split the trace. An execution (not the instance) is the unit: after
 * continue-as-new or a restart of a finished instance, the new execution is a new trace.
 *
 * Spans are recorded whole when they end, with the start time from the history: the workflow span (`workflow
 * <name>`) at completion, failure or termination, an activity span (`activity <name>`) when its result is recorded.
 * A run that never ends has no workflow span; its events are on the stream meanwhile.
 */

/** Where a workflow event was recorded. */
export interface TelemetrySource {
  appId: string;
  namespace: string;
}

/** What one record produced. */
export interface RecordTelemetry {
  events: WorkflowEvent[];
  spans: FinishedSpan[];
}

/** The trace of one execution. */
export interface RunTrace {
  traceId: string;
  /** The workflow span's id. */
  spanId: string;
  /** The caller's span, when the start carried a `traceparent`. */
  parentSpanId?: string | undefined;
  /** The caller's sampling flag, when the start carried a `traceparent`. */
  sampled?: boolean | undefined;
}

/** Failure messages are repeated in events and spans only this far: they may quote whatever the activity was given. */
const MAX_FAILURE_TYPE = 128;
const MAX_FAILURE_MESSAGE = 256;

const TRACE_PARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

function hashHex(parts: readonly string[], length: number): string {
  const hex = createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, length);
  // An all-zero id is invalid in W3C trace context; a hash gives one with negligible odds, but never mind the odds.
  return /^0+$/.test(hex) ? `${hex.slice(0, -1)}1` : hex;
}

/** The trace of execution `executionId` of `instanceId`, a child of `parent` when it carries a valid `traceparent`. */
export function runTrace(instanceId: string, executionId: string, parent?: dt.IExecutionStartedEvent['parentTraceContext']): RunTrace {
  const spanId = hashHex(['skein-workflow', instanceId, executionId, 'workflow'], 16);
  const match = TRACE_PARENT.exec(parent?.traceParent ?? '');
  if (match?.[1] && match[2] && match[3] && !/^0+$/.test(match[1]) && !/^0+$/.test(match[2])) {
    return { traceId: match[1], spanId, parentSpanId: match[2], sampled: (Number.parseInt(match[3], 16) & 1) === 1 };
  }
  return { traceId: hashHex(['skein-workflow', instanceId, executionId], 32), spanId };
}

/** The span id of activity `taskId` of the run. */
export function activitySpanId(instanceId: string, executionId: string, taskId: number): string {
  return hashHex(['skein-workflow', instanceId, executionId, 'activity', String(taskId)], 16);
}

/** The `traceparent` that makes a run (a child workflow's, say) a child of `run`'s workflow span. */
export function traceParentOf(run: RunTrace): string {
  return `00-${run.traceId}-${run.spanId}-${run.sampled === false ? '00' : '01'}`;
}

/** The ExecutionStarted of the instance's current execution, in its history or still in its inbox. */
function startedEvent(state: InstanceState): dt.IHistoryEvent | undefined {
  return state.startEvent;
}

function bytes(value: { value?: string | null } | null | undefined): number | undefined {
  const payload = text(value);
  return payload === undefined ? undefined : Buffer.byteLength(payload);
}

function iso(value: dt.IHistoryEvent['timestamp']): string {
  return new Date(millisOf(value)).toISOString();
}

function failureOf(details: dt.ITaskFailureDetails | null | undefined): { type: string; message: string } {
  // Both come from the app's code: bounded like every other caller-chosen string in telemetry.
  return { type: truncate(details?.errorType || 'Error', MAX_FAILURE_TYPE), message: truncate(details?.errorMessage ?? '', MAX_FAILURE_MESSAGE) };
}

/** One execution as the mapping needs it. */
interface Run {
  instanceId: string;
  executionId: string;
  name: string;
  startedAtMs: number;
  trace: RunTrace;
}

function runOf(instanceId: string, started: dt.IHistoryEvent | undefined, executionId: string): Run {
  const start = started?.executionStarted;
  const id = start?.orchestrationInstance?.executionId?.value || executionId;
  return { instanceId, executionId: id, name: start?.name ?? '', startedAtMs: millisOf(started?.timestamp), trace: runTrace(instanceId, id, start?.parentTraceContext) };
}

type Extra = Omit<WorkflowEvent, 'version' | 'type' | 'time' | 'appId' | 'namespace' | 'instanceId' | 'workflowName' | 'executionId' | 'traceId' | 'spanId'>;

function eventOf(source: TelemetrySource, run: Run, type: WorkflowEventType, at: dt.IHistoryEvent['timestamp'], extra: Extra = {}, spanId = run.trace.spanId): WorkflowEvent {
  const event: WorkflowEvent = {
    version: 1,
    type,
    time: iso(at),
    appId: source.appId,
    namespace: source.namespace,
    instanceId: run.instanceId,
    workflowName: run.name,
    executionId: run.executionId,
    traceId: run.trace.traceId,
    spanId,
    ...Object.fromEntries(Object.entries(extra).filter(([, value]) => value !== undefined)),
  };
  return Object.freeze(event);
}

function workflowSpan(run: Run, endMs: number, status: number, failure?: { type: string; message: string }): FinishedSpan {
  return {
    name: `workflow ${run.name}`,
    kind: SpanKind.INTERNAL,
    traceId: run.trace.traceId,
    spanId: run.trace.spanId,
    parentSpanId: run.trace.parentSpanId,
    sampled: run.trace.sampled,
    startMs: run.startedAtMs,
    endMs,
    attributes: { 'workflow.instance_id': run.instanceId, 'workflow.name': run.name, 'workflow.execution_id': run.executionId, 'workflow.status': statusName(status) },
    error: failure,
  };
}

/** The events (and ended activity spans) of events delivered to the instance: a `received` record. */
function received(state: InstanceState, source: TelemetrySource, events: readonly dt.IHistoryEvent[], out: RecordTelemetry): void {
  for (const event of events) {
    if (event.executionStarted) {
      const run = runOf(state.instanceId, event, '');
      const parent = event.executionStarted.parentInstance?.orchestrationInstance?.instanceId ?? undefined;
      out.events.push(eventOf(source, run, 'workflow.created', event.timestamp, { payloadBytes: bytes(event.executionStarted.input), parentInstanceId: parent || undefined }));
      continue;
    }
    // The engine never appends a duplicate; the instance would skip one anyway, so its telemetry does too.
    if (state.delivered(event)) continue;
    const run = runOf(state.instanceId, startedEvent(state), state.executionId);
    const result = event.taskCompleted ?? event.taskFailed;
    if (result) {
      const taskId = result.taskScheduledId ?? 0;
      const scheduled = state.scheduledTask(taskId);
      const activityName = scheduled?.taskScheduled?.name ?? '';
      const startMs = scheduled ? millisOf(scheduled.timestamp) : millisOf(event.timestamp);
      const endMs = millisOf(event.timestamp);
      const spanId = activitySpanId(run.instanceId, run.executionId, taskId);
      const failure = event.taskFailed ? failureOf(event.taskFailed.failureDetails) : undefined;
      const extra = { activityName, taskId, durationMs: Math.max(0, endMs - startMs), ...(event.taskCompleted ? { payloadBytes: bytes(event.taskCompleted.result) } : { failure }) };
      out.events.push(eventOf(source, run, failure ? 'workflow.activity.failed' : 'workflow.activity.completed', event.timestamp, extra, spanId));
      out.spans.push({
        name: `activity ${activityName}`,
        kind: SpanKind.INTERNAL,
        traceId: run.trace.traceId,
        spanId,
        parentSpanId: run.trace.spanId,
        sampled: run.trace.sampled,
        startMs,
        endMs,
        attributes: { 'workflow.instance_id': run.instanceId, 'workflow.name': run.name, 'workflow.activity.name': activityName, 'workflow.task_id': taskId },
        error: failure,
      });
    } else if (event.timerFired) {
      out.events.push(eventOf(source, run, 'workflow.timer.fired', event.timestamp, { timerId: event.timerFired.timerId ?? 0, fireAt: iso(event.timerFired.fireAt) }));
    } else if (event.eventRaised) {
      out.events.push(eventOf(source, run, 'workflow.event.raised', event.timestamp, { eventName: event.eventRaised.name ?? '', payloadBytes: bytes(event.eventRaised.input) }));
    } else if (event.executionSuspended) {
      out.events.push(eventOf(source, run, 'workflow.suspended', event.timestamp));
    } else if (event.executionResumed) {
      out.events.push(eventOf(source, run, 'workflow.resumed', event.timestamp));
    }
  }
}

/** The events (and the ended workflow span) of what one orchestration step produced: a `stepped` record. */
function stepped(state: InstanceState, source: TelemetrySource, step: skein.workflow.v1.IStepped, out: RecordTelemetry): void {
  const events = step.events ?? [];
  // A step's events are the OrchestratorStarted, the inbox events it consumed (their telemetry was published when
  // they were received), the activity results it recorded itself, then what the orchestrator's actions produced.
  const produced = events.slice((events[0]?.orchestratorStarted ? 1 : 0) + (step.consumed ?? 0));
  const run = runOf(state.instanceId, startedEvent(state), state.executionId);
  for (const event of produced) {
    // An activity result the owner held and recorded with this step alone: reported as if received.
    if (event.taskCompleted || event.taskFailed) {
      received(state, source, [event], out);
    } else if (event.taskScheduled) {
      const taskId = event.eventId ?? 0;
      out.events.push(eventOf(source, run, 'workflow.activity.scheduled', event.timestamp, { activityName: event.taskScheduled.name ?? '', taskId, payloadBytes: bytes(event.taskScheduled.input) }, activitySpanId(run.instanceId, run.executionId, taskId)));
    } else if (event.timerCreated) {
      out.events.push(eventOf(source, run, 'workflow.timer.created', event.timestamp, { timerId: event.eventId ?? 0, fireAt: iso(event.timerCreated.fireAt) }));
    } else if (event.executionCompleted) {
      const status: number = event.executionCompleted.orchestrationStatus ?? WorkflowStatus.COMPLETED;
      const endMs = millisOf(event.timestamp);
      const durationMs = Math.max(0, endMs - run.startedAtMs);
      if (status === WorkflowStatus.FAILED) {
        const failure = failureOf(event.executionCompleted.failureDetails);
        out.events.push(eventOf(source, run, 'workflow.failed', event.timestamp, { durationMs, failure }));
        out.spans.push(workflowSpan(run, endMs, status, failure));
      } else {
        const type = status === WorkflowStatus.TERMINATED ? 'workflow.terminated' : 'workflow.completed';
        out.events.push(eventOf(source, run, type, event.timestamp, { durationMs, payloadBytes: bytes(event.executionCompleted.result) }));
        out.spans.push(workflowSpan(run, endMs, status));
      }
    }
  }
  if (step.newExecutionId) {
    const at = events[0]?.timestamp;
    const endMs = millisOf(at);
    out.events.push(eventOf(source, run, 'workflow.continued_as_new', at, { durationMs: Math.max(0, endMs - run.startedAtMs) }));
    out.spans.push(workflowSpan(run, endMs, WorkflowStatus.CONTINUED_AS_NEW));
    const restarted = (step.restartEvents ?? []).find((event) => event.executionStarted);
    if (restarted) received(state, source, [restarted], out);
  }
}

/**
 * The telemetry of `record`, about to be applied to `state` (call it before `state.apply`, publish it once the
 * record is in JetStream). Never reads inputs, outputs, event data or custom status beyond their length.
 */
export function recordTelemetry(state: InstanceState, record: skein.workflow.v1.IHistoryRecord, source: TelemetrySource): RecordTelemetry {
  const out: RecordTelemetry = { events: [], spans: [] };
  if (record.received) received(state, source, record.received.events ?? [], out);
  else if (record.stepped) stepped(state, source, record.stepped, out);
  return out;
}
