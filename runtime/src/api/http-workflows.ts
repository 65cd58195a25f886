import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { SkeinError, isValidAppId, type ErrorCode } from '@skein/core';
import { readRequestBody } from '../pipeline/read-body.js';
import { WorkflowStatus, statusName, validateInstanceId, type HistoryEntry, type ListQuery, type WorkflowClients, type WorkflowState, type Workflows } from '../workflow/api.js';

/**
 * Dapr serves the same workflow handlers under these three versions (`pkg/api/http/workflow.go`); the component
 * segment that follows (`dapr` by convention) is never checked.
 */
export const WORKFLOWS_PATH = /^\/(v1\.0(?:-alpha1|-beta1)?)\/workflows(?:\/|$)/;

/** What the workflow routes need to know about the sidecar serving them. */
export interface WorkflowRouteContext {
  /** The sidecar's own App ID: an `appID` query parameter naming it is a local call. */
  appId: string;
  maxBodyBytes: number;
}

/** Dapr's `GetWorkflowResponse` as JSON (protojson names; timestamps in RFC 3339). */
export interface WorkflowStateJson {
  instanceID: string;
  workflowName: string;
  createdAt: string;
  lastUpdatedAt: string;
  runtimeStatus: string;
  properties: Record<string, string>;
}

/** One event of `GET <id>/history`. */
export interface HistoryEventJson {
  eventId: number;
  timestamp: string;
  kind: string;
  details: Record<string, unknown>;
}

/**
 * An instance as Dapr's HTTP API shows it. Each property is present only when the engine has its value, as in
 * Dapr's `GetWorkflow`; a failed instance has no `dapr.workflow.output`, its failure is under `dapr.workflow.failure.*`.
 */
export function workflowStateJson(state: WorkflowState): WorkflowStateJson {
  const properties: Record<string, string> = {};
  if (state.input !== undefined) properties['dapr.workflow.input'] = state.input;
  if (state.customStatus !== undefined) properties['dapr.workflow.custom_status'] = state.customStatus;
  if (state.failure) {
    properties['dapr.workflow.failure.error_type'] = state.failure.errorType;
    properties['dapr.workflow.failure.error_message'] = state.failure.errorMessage;
    if (state.failure.stackTrace !== undefined) properties['dapr.workflow.failure.stack_trace'] = state.failure.stackTrace;
  } else if (state.output !== undefined) {
    properties['dapr.workflow.output'] = state.output;
  }
  return {
    instanceID: state.instanceId,
    workflowName: state.name,
    createdAt: state.createdAt.toISOString(),
    lastUpdatedAt: state.lastUpdatedAt.toISOString(),
    runtimeStatus: statusName(state.status),
    properties,
  };
}

function historyEventJson(entry: HistoryEntry): HistoryEventJson {
  return { eventId: entry.eventId, timestamp: entry.timestamp.toISOString(), kind: entry.kind, details: entry.details };
}

const ROUTES = '/v1.0/workflows/<component>/<name>/start, /v1.0/workflows/<component>/<instanceID>[/terminate|purge|pause|resume|raiseEvent/<event>|history]';

function methodNotAllowed(verb: string, route: string): SkeinError {
  return new SkeinError('ERR_METHOD_NOT_ALLOWED', `${verb} is not allowed on ${route}`);
}

function notFound(verb: string, path: string): SkeinError {
  return new SkeinError('ERR_NOT_FOUND', `method "${verb} ${path}" is not found: use ${ROUTES}`);
}

/** Reads a whole body up to `limit` bytes; an empty body is no payload, anything else is passed on as sent. */
async function readPayload(req: IncomingMessage, limit: number): Promise<string | undefined> {
  const body = await readRequestBody(req, limit);
  return body.length === 0 ? undefined : body.toString('utf8');
}

/** A header's value when it was sent once. */
function headerText(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function send(res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) }).end(text);
}

/** The path segments after the version and `workflows`, percent-decoded; a broken encoding is the caller's mistake. */
function segmentsOf(rest: string): string[] {
  return rest.split('/').map((segment) => {
    try {
      return decodeURIComponent(segment);
    } catch {
      throw new SkeinError('ERR_BAD_REQUEST', `invalid request: "${segment.slice(0, 100)}" has invalid percent-encoding`);
    }
  });
}

/** Dapr checks only that an id is there on every call but start; the engine answers for an id it does not know. */
function requireInstanceId(instanceId: string): string {
  if (instanceId === '') throw new SkeinError('ERR_INSTANCE_ID_PROVIDED_MISSING', 'no instance ID was provided');
  return instanceId;
}

/**
 * The workflows the optional `appID` query parameter names. Empty or the sidecar's own App ID: its own app's. Any
 * other valid App ID: that app's instances in the sidecar's namespace, reached as their actors with this sidecar's
 * verified identity, so the target's WorkflowAccessPolicy judges the call.
 */
function targetWorkflows(workflows: WorkflowClients, params: URLSearchParams, ownAppId: string): Workflows {
  const appId = params.get('appID');
  if (appId === null || appId === '' || appId === ownAppId) return workflows;
  if (!isValidAppId(appId)) throw new SkeinError('ERR_WORKFLOW_APP_ID_INVALID', `workflow app ID '${appId.slice(0, 100)}' is invalid: use letters, digits, '-' and '_' (at most 63)`);
  return workflows.forApp(appId);
}

/** Runs an engine call; a SkeinError passes through, anything else becomes the operation's Dapr code. */
async function engineCall<T>(code: ErrorCode, what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof SkeinError) throw error;
    throw new SkeinError(code, `${what}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/**
 * An RFC 3339 time from the query. An unencoded `+` of an offset arrives as a space (form decoding), so a
 * trailing ` hh:mm` is read as `+hh:mm`.
 */
function parseTime(name: string, value: string): Date {
  const text = value.replace(/ (\d{2}:\d{2})$/, '+$1');
  const time = RFC3339.test(text) ? new Date(text.replace(' ', 'T')) : undefined;
  if (!time || Number.isNaN(time.getTime())) throw new SkeinError('ERR_BAD_REQUEST', `invalid request: ${name} "${value.slice(0, 64)}" is not an RFC 3339 time (e.g. 2026-01-02T15:04:05Z)`);
  return time;
}

function parseStatuses(value: string): WorkflowStatus[] {
  return value.split(',').map((part) => part.trim()).filter((part) => part !== '').map((part) => {
    const name = part.toUpperCase();
    const status = Object.entries(WorkflowStatus).find(([key]) => key === name)?.[1];
    if (status === undefined) throw new SkeinError('ERR_BAD_REQUEST', `invalid request: unknown workflow status "${part.slice(0, 64)}": use ${Object.keys(WorkflowStatus).join(', ')}`);
    return status;
  });
}

/** The filters of `GET /v1.0/workflows/<component>`: `name`, `status` (comma-separated), `createdFrom`, `createdTo`, `limit`, `continuationToken`. */
export function listQueryOf(params: URLSearchParams): ListQuery {
  const query: ListQuery = {};
  const name = params.get('name');
  if (name) query.name = name;
  const status = params.get('status');
  if (status) query.statuses = parseStatuses(status);
  const createdFrom = params.get('createdFrom');
  if (createdFrom) query.createdFrom = parseTime('createdFrom', createdFrom);
  const createdTo = params.get('createdTo');
  if (createdTo) query.createdTo = parseTime('createdTo', createdTo);
  const limit = params.get('limit');
  if (limit) {
    if (!/^\d{1,9}$/.test(limit) || Number(limit) < 1) throw new SkeinError('ERR_BAD_REQUEST', `invalid request: limit "${limit.slice(0, 64)}" is not a positive integer`);
    query.limit = Number(limit);
  }
  const continuationToken = params.get('continuationToken');
  if (continuationToken) query.continuationToken = continuationToken;
  return query;
}

/**
 * The HTTP front end of Dapr's workflow API, under `/v1.0`, `/v1.0-beta1` and `/v1.0-alpha1`:
 * `POST <component>/<name>/start?instanceID=`, `GET <component>/<id>`, `POST <component>/<id>/terminate|purge|pause|resume`,
 * `POST <component>/<id>/raiseEvent/<event>`; and, beyond Dapr, `GET <component>` (a filtered list of instances) and
 * `GET <component>/<id>/history`. Start and event bodies are the payload, unparsed. It only decodes, calls the
 * engine and encodes; errors are thrown for the caller's error handler, which sends Dapr's `{"errorCode","message"}`.
 */
export async function serveWorkflowRequest(clients: WorkflowClients, req: IncomingMessage, res: ServerResponse, path: string, query: string, context: WorkflowRouteContext): Promise<void> {
  const verb = (req.method ?? 'GET').toUpperCase();
  const prefix = WORKFLOWS_PATH.exec(path);
  if (!prefix) throw notFound(verb, path);
  const [component = '', ...segments] = segmentsOf(path.slice(prefix[0].length));
  if (component === '') throw notFound(verb, path);
  if (segments.length === 1 && segments[0] === '') segments.pop();
  const params = new URLSearchParams(query);
  const base = `/${prefix[1] ?? 'v1.0'}/workflows/{component}`;
  const [first = '', action, ...rest] = segments;

  if (segments.length === 0) {
    if (verb !== 'GET') throw methodNotAllowed(verb, base);
    req.resume();
    const workflows = targetWorkflows(clients, params, context.appId);
    // A list reads the app's summaries from the bus, not through its instances, so no policy of the app would judge it.
    if (workflows !== clients) throw new SkeinError('ERR_API_NOT_SUPPORTED', `listing the workflow instances of another app (${params.get('appID') ?? ''}) is not served: list them through a sidecar of that app`);
    const listQuery = listQueryOf(params);
    const page = await engineCall('ERR_GET_WORKFLOW', 'error while listing workflow instances', () => workflows.list(listQuery));
    send(res, 200, { instances: page.instances.map(workflowStateJson), ...(page.continuationToken === undefined ? {} : { continuationToken: page.continuationToken }) });
    return;
  }

  if (action === undefined) {
    if (verb !== 'GET') throw methodNotAllowed(verb, `${base}/{instanceID}`);
    req.resume();
    const instanceId = requireInstanceId(first);
    const workflows = targetWorkflows(clients, params, context.appId);
    const state = await engineCall('ERR_GET_WORKFLOW', `error while getting workflow info on instance '${instanceId}'`, () => workflows.get(instanceId));
    if (!state) throw new SkeinError('ERR_INSTANCE_ID_NOT_FOUND', `unable to find workflow with the provided instance ID: ${instanceId}`);
    send(res, 200, workflowStateJson(state));
    return;
  }

  if (action === 'raiseEvent') {
    if (rest.length > 1) throw notFound(verb, path);
    if (verb !== 'POST') throw methodNotAllowed(verb, `${base}/{instanceID}/raiseEvent/{eventName}`);
    const instanceId = requireInstanceId(first);
    const eventName = rest[0] ?? '';
    if (eventName === '') throw new SkeinError('ERR_WORKFLOW_EVENT_NAME_MISSING', 'missing workflow event name');
    const workflows = targetWorkflows(clients, params, context.appId);
    const input = await readPayload(req, context.maxBodyBytes);
    await engineCall('ERR_RAISE_EVENT_WORKFLOW', `error raising event '${eventName}' on workflow '${instanceId}'`, () => workflows.raiseEvent(instanceId, eventName, input));
    send(res, 202);
    return;
  }

  if (rest.length > 0) throw notFound(verb, path);
  const route = `${base}/{${action === 'start' ? 'workflowName' : 'instanceID'}}/${action}`;
  switch (action) {
    case 'start': {
      if (verb !== 'POST') throw methodNotAllowed(verb, route);
      const instanceId = params.get('instanceID') || randomUUID();
      validateInstanceId(instanceId);
      if (first === '') throw new SkeinError('ERR_WORKFLOW_NAME_MISSING', 'workflow name is not configured');
      const workflows = targetWorkflows(clients, params, context.appId);
      const input = await readPayload(req, context.maxBodyBytes);
      const started = await engineCall('ERR_START_WORKFLOW', `error starting workflow '${first}'`, () => workflows.start({ name: first, instanceId, input, ...traceContextOf(req.headers) }));
      send(res, 202, { instanceID: started });
      return;
    }
    case 'history': {
      if (verb !== 'GET') throw methodNotAllowed(verb, route);
      req.resume();
      const instanceId = requireInstanceId(first);
      const workflows = targetWorkflows(clients, params, context.appId);
      const events = await engineCall('ERR_GET_WORKFLOW', `error while getting the history of instance '${instanceId}'`, () => workflows.history(instanceId));
      send(res, 200, { instanceID: instanceId, events: events.map(historyEventJson) });
      return;
    }
    case 'terminate':
    case 'purge':
    case 'pause':
    case 'resume': {
      if (verb !== 'POST') throw methodNotAllowed(verb, route);
      const instanceId = requireInstanceId(first);
      const workflows = targetWorkflows(clients, params, context.appId);
      // Dapr reads no payload from these; the body is still bounded like every other.
      await readPayload(req, context.maxBodyBytes);
      await instanceOperation(workflows, action, instanceId);
      send(res, 202);
      return;
    }
    default:
      throw notFound(verb, path);
  }
}

/** Terminate and purge are recursive over HTTP, as in Dapr; pause is the engine's suspend. */
async function instanceOperation(workflows: Workflows, action: 'terminate' | 'purge' | 'pause' | 'resume', instanceId: string): Promise<void> {
  switch (action) {
    case 'terminate':
      return engineCall('ERR_TERMINATE_WORKFLOW', `error terminating workflow '${instanceId}'`, () => workflows.terminate(instanceId, { recursive: true }));
    case 'purge': {
      const purged = await engineCall('ERR_PURGE_WORKFLOW', `error purging workflow '${instanceId}'`, () => workflows.purge(instanceId, { recursive: true }));
      if (!purged) throw new SkeinError('ERR_INSTANCE_ID_NOT_FOUND', `unable to find workflow with the provided instance ID: ${instanceId}`);
      return;
    }
    case 'pause':
      return engineCall('ERR_PAUSE_WORKFLOW', `error pausing workflow '${instanceId}'`, () => workflows.suspend(instanceId));
    case 'resume':
      return engineCall('ERR_RESUME_WORKFLOW', `error resuming workflow '${instanceId}'`, () => workflows.resume(instanceId));
  }
}

/** The caller's W3C trace context, when it sent one: the workflow's run joins that trace. */
function traceContextOf(headers: IncomingHttpHeaders): { traceParent?: string; traceState?: string } {
  const traceParent = headerText(headers['traceparent']);
  const traceState = headerText(headers['tracestate']);
  return { ...(traceParent ? { traceParent } : {}), ...(traceParent && traceState ? { traceState } : {}) };
}
