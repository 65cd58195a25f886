/**
 * A workflow lifecycle event as published on the telemetry stream (schema:
 * `@skein/proto/schemas/workflow-event.schema.json`): one JSON object per history event the owner of an instance
 * recorded. Never carries inputs, outputs, event payloads or custom status (they may hold secrets), only their sizes.
 */

/** What happened, named after the history event that records it. */
export type WorkflowEventType =
  | 'workflow.created'
  | 'workflow.activity.scheduled'
  | 'workflow.activity.completed'
  | 'workflow.activity.failed'
  | 'workflow.timer.created'
  | 'workflow.timer.fired'
  | 'workflow.event.raised'
  | 'workflow.suspended'
  | 'workflow.resumed'
  | 'workflow.continued_as_new'
  | 'workflow.completed'
  | 'workflow.failed'
  | 'workflow.terminated';

/** Every event type, in a stable order (the schema's enum). */
export const WORKFLOW_EVENT_TYPES: readonly WorkflowEventType[] = Object.freeze([
  'workflow.created',
  'workflow.activity.scheduled',
  'workflow.activity.completed',
  'workflow.activity.failed',
  'workflow.timer.created',
  'workflow.timer.fired',
  'workflow.event.raised',
  'workflow.suspended',
  'workflow.resumed',
  'workflow.continued_as_new',
  'workflow.completed',
  'workflow.failed',
  'workflow.terminated',
]);

/** One workflow event as published on `skein.workflows.<namespace>.<appId>`. */
export interface WorkflowEvent {
  /** Schema version of this event shape. */
  readonly version: 1;
  readonly type: WorkflowEventType;
  /** When the history event was recorded (its timestamp in the history), RFC 3339 in UTC. */
  readonly time: string;
  /** App ID of the sidecar that recorded it (the instance's owner, an instance of the workflow's app). */
  readonly appId: string;
  readonly namespace: string;
  readonly instanceId: string;
  /** The workflow's registered name. */
  readonly workflowName: string;
  /** The execution of the instance (a new one after continue-as-new or a restart). */
  readonly executionId: string;
  /** W3C trace id of the instance's run: the same for every event of one execution. */
  readonly traceId: string;
  /** W3C span id of the span the event belongs to: the workflow's, or the activity's. */
  readonly spanId: string;
  /** The activity's name, for activity events. */
  readonly activityName?: string;
  /** The activity's task id (its TaskScheduled event id), for activity events. */
  readonly taskId?: number;
  /** The timer's id, for timer events. */
  readonly timerId?: number;
  /** When the timer fires, RFC 3339, for timer events. */
  readonly fireAt?: string;
  /** The raised event's name, for `workflow.event.raised`. */
  readonly eventName?: string;
  /** How long the activity ran (scheduled to completed or failed), or the instance (created to its end). */
  readonly durationMs?: number;
  /** Size in bytes of the payload the history event holds (input, output, event data); never the payload. */
  readonly payloadBytes?: number;
  /** Failure type and message of a failed activity or workflow (the message shortened to 256 characters). */
  readonly failure?: { readonly type: string; readonly message: string };
  /** The instance that started this one, for a child workflow's `workflow.created`. */
  readonly parentInstanceId?: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A message of the stream as a `WorkflowEvent` of version 1, or undefined when it is not one. Checks the fields
 * readers key on (type, time, app, instance, execution); optional fields of the wrong type are dropped.
 */
export function parseWorkflowEvent(data: unknown): WorkflowEvent | undefined {
  if (!isRecord(data) || data['version'] !== 1 || !WORKFLOW_EVENT_TYPES.includes(data['type'] as WorkflowEventType)) return undefined;
  for (const field of ['time', 'appId', 'namespace', 'instanceId', 'workflowName', 'executionId', 'traceId', 'spanId']) if (typeof data[field] !== 'string') return undefined;
  if (Number.isNaN(Date.parse(data['time'] as string))) return undefined;
  const event: Record<string, unknown> = { ...data };
  for (const field of ['activityName', 'fireAt', 'eventName', 'parentInstanceId']) if (event[field] !== undefined && typeof event[field] !== 'string') delete event[field];
  for (const field of ['taskId', 'timerId', 'durationMs', 'payloadBytes']) if (event[field] !== undefined && typeof event[field] !== 'number') delete event[field];
  const failure = event['failure'];
  if (failure !== undefined && !(isRecord(failure) && typeof failure['type'] === 'string' && typeof failure['message'] === 'string')) delete event['failure'];
  return event as unknown as WorkflowEvent;
}
