import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { formatDuration, parseDuration, truncate } from '@skein/core';
import { UsageError } from './args.js';
import { formatTable, printable } from './table.js';
import { limitFlag, parseFlagsAndPositionals, sinceFlag, writeLine } from './telemetry-common.js';
import { WorkflowStatus } from '../workflow/api.js';
import type { HistoryEventJson, WorkflowStateJson } from '../api/http-workflows.js';

/** Usage of `skein workflows`. */
export const WORKFLOWS_USAGE = `Usage: skein workflows <subcommand> [flags]

  list [--name N] [--status RUNNING|COMPLETED|...] [--since 10m|<time>] [--limit N] [--json]
                        instances, oldest first: the last --limit (default 50) created that match;
                        --status takes several, comma-separated
  show <id> [--json]    one instance: status, times, input, output, custom status, failure
  history <id> [--json] its history events: time, type and a short summary of each
  start <name> [--id ID] [--input JSON]
                        starts an instance (a random id unless --id) and prints its id
  raise <id> <event> [--data JSON]
                        raises an external event on an instance
  suspend <id>, resume <id>, terminate <id> (with its children), purge <id> (a finished instance, with its children)
  stuck [--for 5m] [--name N] [--json]
                        RUNNING instances whose history has not changed for --for (default 5m)
  replay <id> [--until N] -- <app command>
                        runs the app's workflow code over the instance's recorded history, nothing run
                        again (under a debugger, its breakpoints hit); skein workflows replay --help
  rerun <id> [--id NEW_ID]
                        starts a NEW instance of the same workflow with the same input and prints its id;
                        the original instance is left as it is

  Sidecar: --dapr-http-port P (default: $DAPR_HTTP_PORT, else 3500) on 127.0.0.1, or --sidecar-url URL.
  DAPR_API_TOKEN, when set, is sent as the dapr-api-token header.
`;

const SUBCOMMANDS = ['list', 'show', 'history', 'start', 'raise', 'suspend', 'resume', 'terminate', 'purge', 'stuck', 'rerun'] as const;
type Subcommand = (typeof SUBCOMMANDS)[number];

/** The statuses `--status` accepts: the engine's, by Dapr's names. */
export const STATUS_NAMES: readonly string[] = Object.freeze(Object.keys(WorkflowStatus));

const API_PATH = '/v1.0-beta1/workflows/dapr';
const REQUEST_TIMEOUT_MS = 30_000;
const SUMMARY_VALUE_CHARS = 60;

/**
 * A failed call to the sidecar: its Dapr error (`errorCode`, `message`), or no code when it could not be reached
 * or did not answer with one. Printed as `error: <errorCode>: <message>`, exit code 1.
 */
export class SidecarError extends Error {
  readonly errorCode: string | undefined;
  constructor(errorCode: string | undefined, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SidecarError';
    this.errorCode = errorCode;
  }
}

/** The line printed for a `SidecarError`. */
export function formatSidecarError(error: SidecarError): string {
  return `error: ${error.errorCode === undefined ? '' : `${printable(error.errorCode)}: `}${printable(error.message)}`;
}

/** The API token, sent only where it cannot be read on the way: loopback, or https. */
export function apiTokenFor(baseUrl: string, token: string | undefined): string | undefined {
  if (token === undefined) return undefined;
  const { protocol, hostname } = new URL(baseUrl);
  if (protocol === 'https:' || hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]') return token;
  throw new UsageError(`DAPR_API_TOKEN is set but ${baseUrl} is neither loopback nor https: the token would cross the network in clear`);
}

/**
 * The sidecar's base URL: `--sidecar-url`, else `http://127.0.0.1:<port>` with the port of `--dapr-http-port`,
 * else of `DAPR_HTTP_PORT`, else 3500.
 */
export function sidecarBaseUrl(flags: { 'dapr-http-port'?: string | undefined; 'sidecar-url'?: string | undefined }, env: NodeJS.ProcessEnv): string {
  const url = flags['sidecar-url'];
  if (url !== undefined) {
    if (flags['dapr-http-port'] !== undefined) throw new UsageError('give --dapr-http-port or --sidecar-url, not both');
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError(`--sidecar-url must be a URL like http://127.0.0.1:3500, not "${url}"`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`--sidecar-url must be an http:// or https:// URL, not "${url}"`);
    if (parsed.search !== '' || parsed.hash !== '') throw new UsageError(`--sidecar-url must have no query or fragment: "${url}"`);
    return `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
  }
  const flag = flags['dapr-http-port'];
  const text = flag ?? (env['DAPR_HTTP_PORT'] || undefined);
  const port = text === undefined ? 3500 : Number(text);
  // Unlike the ports `skein run` listens on (portFlag), 0 cannot name a running sidecar.
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`${flag === undefined ? 'DAPR_HTTP_PORT' : '--dapr-http-port'} must be a sidecar's port, from 1 to 65535, not "${text ?? ''}"`);
  return `http://127.0.0.1:${port}`;
}

/** `--status running,completed` → `RUNNING,COMPLETED`, each one of `STATUS_NAMES`. */
export function statusFlag(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const names = value.split(',').map((part) => part.trim().toUpperCase()).filter((part) => part !== '');
  if (names.length === 0) throw new UsageError(`--status needs a status: ${STATUS_NAMES.join(', ')}`);
  for (const name of names) if (!STATUS_NAMES.includes(name)) throw new UsageError(`--status must be one of ${STATUS_NAMES.join(', ')}, not "${name}"`);
  return names.join(',');
}

/** A payload flag (`--input`, `--data`): JSON, as the SDKs exchange it; the sidecar gets the text as given. */
export function jsonFlag(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    JSON.parse(value);
  } catch {
    throw new UsageError(`--${name} must be JSON (a string is quoted: '"text"'), not ${JSON.stringify(truncate(value, 80))}`);
  }
  return value;
}

/** `--for 5m`: how long without a change makes a running instance stuck. */
export function ageFlag(value: string | undefined, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  try {
    return parseDuration(value);
  } catch {
    throw new UsageError(`--for must be a duration like 30s, 5m or 1h, not "${value}"`);
  }
}

/** Running instances whose last change is more than `ageMs` before `now`, the longest idle first. */
export function stuckInstances(instances: readonly WorkflowStateJson[], ageMs: number, now: number): WorkflowStateJson[] {
  return instances
    .filter((instance) => instance.runtimeStatus === 'RUNNING' && now - Date.parse(instance.lastUpdatedAt) > ageMs)
    .sort((a, b) => Date.parse(a.lastUpdatedAt) - Date.parse(b.lastUpdatedAt));
}

/** The last `limit` instances by creation time, oldest first (ties by id, the sidecar's order). */
export function recentInstances(instances: readonly WorkflowStateJson[], limit: number): WorkflowStateJson[] {
  return [...instances].sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt) || a.instanceID.localeCompare(b.instanceID)).slice(-limit);
}

/** Instances as table lines; with `now`, an IDLE column says how long each has not changed. */
export function instanceTable(instances: readonly WorkflowStateJson[], now?: number): string[] {
  const header = ['INSTANCE ID', 'WORKFLOW', 'STATUS', 'CREATED', 'UPDATED', ...(now === undefined ? [] : ['IDLE'])];
  return formatTable(
    header,
    instances.map((instance) => [
      printable(instance.instanceID),
      printable(instance.workflowName),
      printable(instance.runtimeStatus),
      printable(instance.createdAt),
      printable(instance.lastUpdatedAt),
      ...(now === undefined ? [] : [formatDuration(Math.max(0, now - Date.parse(instance.lastUpdatedAt)))]),
    ]),
  );
}

/** One instance as `label: value` lines: the summary, then input, output, custom status and failure when present. */
export function describeInstance(instance: WorkflowStateJson): string[] {
  const properties = instance.properties ?? {};
  const rows: Array<[string, string | undefined]> = [
    ['Instance ID', instance.instanceID],
    ['Workflow', instance.workflowName],
    ['Status', instance.runtimeStatus],
    ['Created', instance.createdAt],
    ['Last updated', instance.lastUpdatedAt],
    ['Input', properties['dapr.workflow.input']],
    ['Output', properties['dapr.workflow.output']],
    ['Custom status', properties['dapr.workflow.custom_status']],
    ['Failure', failureText(properties)],
  ];
  const shown = rows.filter((row): row is [string, string] => row[1] !== undefined);
  // One width for every instance, so the values of two `show`s line up.
  const width = Math.max(...rows.map(([label]) => label.length)) + 1;
  const lines = shown.map(([label, value]) => `${`${label}:`.padEnd(width)}  ${printable(value)}`);
  const stack = properties['dapr.workflow.failure.stack_trace'];
  if (stack !== undefined) lines.push('Stack trace:', ...stack.split('\n').map((line) => `  ${printable(line)}`));
  return lines;
}

function failureText(properties: Record<string, string>): string | undefined {
  const type = properties['dapr.workflow.failure.error_type'];
  const message = properties['dapr.workflow.failure.error_message'];
  if (type === undefined && message === undefined) return undefined;
  return [type, message].filter((part) => part !== undefined && part !== '').join(': ');
}

/** History events as table lines: event id, timestamp, type and a short summary. */
export function historyTable(events: readonly HistoryEventJson[]): string[] {
  return formatTable(
    ['#', 'TIME', 'TYPE', 'SUMMARY'],
    events.map((event) => [event.eventId < 0 ? '-' : String(event.eventId), printable(event.timestamp), printable(event.kind), printable(summarizeEvent(event))]),
  );
}

/** A value of an event's details in a summary: strings as they are (payloads are JSON text), cut to a short length. */
function short(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? '';
  return truncate(text.replace(/\s+/g, ' '), SUMMARY_VALUE_CHARS);
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/** Pieces `name=value` for the fields that are there. */
function pairs(details: Record<string, unknown>, names: readonly string[]): string[] {
  return names.filter((name) => details[name] !== undefined).map((name) => `${name}=${short(details[name])}`);
}

function failureSummary(details: Record<string, unknown>): string {
  const failure = record(details['failureDetails']);
  return [failure['errorType'], failure['errorMessage']].filter((part) => typeof part === 'string' && part !== '').map(short).join(': ');
}

function orchestrationStatus(value: unknown): string {
  if (typeof value === 'string') return value.replace(/^ORCHESTRATION_STATUS_/, '');
  const entry = Object.entries(WorkflowStatus).find(([, number]) => number === (value ?? 0));
  return entry ? entry[0] : `status ${short(value)}`;
}

/** What one history event says, in a few words: its name, task id, payload, time or failure as its kind has them. */
export function summarizeEvent(event: HistoryEventJson): string {
  const details = record(event.details);
  const join = (parts: Array<string | undefined>): string => parts.filter((part): part is string => part !== undefined && part !== '').join(' ');
  const name = typeof details['name'] === 'string' ? details['name'] : undefined;
  // proto3 leaves a zero id off the wire, so an absent one is 0.
  const task = `task #${short(details['taskScheduledId'] ?? 0)}`;
  switch (event.kind) {
    case 'executionStarted': {
      const parent = record(record(details['parentInstance'])['orchestrationInstance'])['instanceId'];
      return join([name, ...pairs(details, ['input']), parent === undefined ? undefined : `parent=${short(parent)}`, details['scheduledStartTimestamp'] === undefined ? undefined : `scheduled for ${short(details['scheduledStartTimestamp'])}`]);
    }
    case 'executionCompleted': {
      const status = orchestrationStatus(details['orchestrationStatus']);
      const failure = failureSummary(details);
      return join([status, ...pairs(details, ['result']), failure === '' ? undefined : failure]);
    }
    case 'taskScheduled':
      return join([name, ...pairs(details, ['input'])]);
    case 'taskCompleted':
    case 'subOrchestrationInstanceCompleted':
      return join([task, ...pairs(details, ['result'])]);
    case 'taskFailed':
    case 'subOrchestrationInstanceFailed':
      return join([task, 'failed:', failureSummary(details)]);
    case 'subOrchestrationInstanceCreated':
      return join([name, ...pairs(details, ['instanceId', 'input'])]);
    case 'timerCreated':
      return join(['fires at', short(details['fireAt'])]);
    case 'timerFired':
      return join([`timer #${short(details['timerId'] ?? 0)}`, 'due at', short(details['fireAt'])]);
    case 'eventRaised':
      return join([name, ...pairs(details, ['input'])]);
    case 'eventSent':
      return join([name, details['instanceId'] === undefined ? undefined : `to ${short(details['instanceId'])}`, ...pairs(details, ['input'])]);
    case 'executionTerminated':
      return join([...pairs(details, ['input']).map((pair) => pair.replace(/^input=/, 'reason=')), details['recurse'] === true ? 'with children' : undefined]);
    case 'executionSuspended':
    case 'executionResumed':
      return join(pairs(details, ['input']).map((pair) => pair.replace(/^input=/, 'reason=')));
    case 'continueAsNew':
      return join(pairs(details, ['input']));
    default:
      return Object.keys(details).length === 0 ? '' : short(details);
  }
}

/** The Dapr error of a failed answer, or a description of the answer when it carries none. */
export function sidecarErrorOf(status: number, body: string): SidecarError {
  try {
    const parsed = record(JSON.parse(body));
    if (typeof parsed['errorCode'] === 'string') return new SidecarError(parsed['errorCode'], typeof parsed['message'] === 'string' ? parsed['message'] : '');
  } catch {
    // Not JSON: described below.
  }
  return new SidecarError(undefined, `the sidecar answered HTTP ${status}${body.trim() === '' ? '' : `: ${truncate(body.trim().replace(/\s+/g, ' '), 200)}`}`);
}

/** A client of the sidecar's workflow API. */
export class WorkflowApi {
  constructor(
    private readonly baseUrl: string,
    private readonly apiToken: string | undefined,
  ) {}

  private async call(method: 'GET' | 'POST', path: string, body?: string): Promise<{ status: number; text: string }> {
    let answer: { status: number; text: string };
    try {
      answer = await send(`${this.baseUrl}${API_PATH}${path}`, method, body, this.apiToken);
    } catch (error) {
      throw new SidecarError(undefined, `cannot reach the sidecar at ${this.baseUrl} (${reasonOf(error)}): is it running? Name it with --dapr-http-port or --sidecar-url`, { cause: error });
    }
    if (answer.status >= 400) throw sidecarErrorOf(answer.status, answer.text);
    return answer;
  }

  private async json(method: 'GET' | 'POST', path: string, body?: string): Promise<unknown> {
    const { text } = await this.call(method, path, body);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new SidecarError(undefined, `the sidecar at ${this.baseUrl} answered ${method} ${API_PATH}${path} with something other than JSON: ${truncate(text, 100)}`);
    }
  }

  /** Every instance matching `query`, all pages. */
  async list(query: URLSearchParams): Promise<WorkflowStateJson[]> {
    const instances: WorkflowStateJson[] = [];
    let token: string | undefined;
    do {
      const params = new URLSearchParams(query);
      if (token !== undefined) params.set('continuationToken', token);
      const text = params.toString();
      const page = record(await this.json('GET', text === '' ? '' : `?${text}`));
      if (Array.isArray(page['instances'])) instances.push(...(page['instances'] as WorkflowStateJson[]));
      const next = page['continuationToken'];
      token = typeof next === 'string' && next !== '' && next !== token ? next : undefined;
    } while (token !== undefined);
    return instances;
  }

  async get(instanceId: string): Promise<WorkflowStateJson> {
    return (await this.json('GET', `/${encodeURIComponent(instanceId)}`)) as WorkflowStateJson;
  }

  async history(instanceId: string): Promise<HistoryEventJson[]> {
    const answer = record(await this.json('GET', `/${encodeURIComponent(instanceId)}/history`));
    return Array.isArray(answer['events']) ? (answer['events'] as HistoryEventJson[]) : [];
  }

  async start(name: string, instanceId: string | undefined, input: string | undefined): Promise<string> {
    const query = instanceId === undefined ? '' : `?instanceID=${encodeURIComponent(instanceId)}`;
    const answer = record(await this.json('POST', `/${encodeURIComponent(name)}/start${query}`, input));
    const started = answer['instanceID'];
    if (typeof started !== 'string') throw new SidecarError(undefined, `the sidecar at ${this.baseUrl} started ${name} but named no instanceID`);
    return started;
  }

  async operation(instanceId: string, action: 'terminate' | 'purge' | 'pause' | 'resume'): Promise<void> {
    await this.call('POST', `/${encodeURIComponent(instanceId)}/${action}`);
  }

  async raiseEvent(instanceId: string, eventName: string, data: string | undefined): Promise<void> {
    await this.call('POST', `/${encodeURIComponent(instanceId)}/raiseEvent/${encodeURIComponent(eventName)}`, data);
  }
}

/** Why a request failed; an AggregateError of several addresses may carry only a code. */
function reasonOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  return error.message || code || error.name;
}

/** One request with node:http(s), which (unlike fetch) serves any port a sidecar may listen on. */
function send(url: string, method: string, body: string | undefined, apiToken: string | undefined): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(body));
  }
  if (apiToken !== undefined) headers['dapr-api-token'] = apiToken;
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = (target.protocol === 'https:' ? httpsRequest : httpRequest)(target, { method, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
    req.end(body);
  });
}

const CONNECTION_FLAGS = { 'dapr-http-port': { type: 'string' }, 'sidecar-url': { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

/** The flags of each subcommand besides the connection ones, and how many positional arguments it takes. */
const SHAPES = {
  list: { flags: { name: { type: 'string' }, status: { type: 'string' }, since: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } }, args: [] },
  show: { flags: { json: { type: 'boolean' } }, args: ['id'] },
  history: { flags: { json: { type: 'boolean' } }, args: ['id'] },
  start: { flags: { id: { type: 'string' }, input: { type: 'string' } }, args: ['name'] },
  raise: { flags: { data: { type: 'string' } }, args: ['id', 'event'] },
  suspend: { flags: {}, args: ['id'] },
  resume: { flags: {}, args: ['id'] },
  terminate: { flags: {}, args: ['id'] },
  purge: { flags: {}, args: ['id'] },
  stuck: { flags: { for: { type: 'string' }, name: { type: 'string' }, json: { type: 'boolean' } }, args: [] },
  rerun: { flags: { id: { type: 'string' } }, args: ['id'] },
} as const satisfies Record<Subcommand, { flags: object; args: readonly string[] }>;

/** Parsed flags of any subcommand; each subcommand's parser admits only its own. */
type WorkflowFlags = {
  'dapr-http-port'?: string;
  'sidecar-url'?: string;
  help?: boolean;
  name?: string;
  status?: string;
  since?: string;
  limit?: string;
  json?: boolean;
  id?: string;
  input?: string;
  data?: string;
  for?: string;
};

/** The subcommand, its flags and positional arguments, checked: unknown flags and a wrong number of arguments are usage errors. */
export function parseWorkflowsArgs(argv: readonly string[]): { subcommand: Subcommand; flags: WorkflowFlags; args: string[] } | 'help' {
  const [first, ...rest] = argv;
  if (first === undefined || first === 'help' || first === '--help' || first === '-h') return 'help';
  if (!(SUBCOMMANDS as readonly string[]).includes(first)) throw new UsageError(`unknown workflows subcommand "${first}": use ${SUBCOMMANDS.join(', ')}\n\n${WORKFLOWS_USAGE}`);
  const subcommand = first as Subcommand;
  const shape = SHAPES[subcommand];
  const { values, positionals } = parseFlagsAndPositionals(rest, { ...CONNECTION_FLAGS, ...shape.flags });
  const flags = values as WorkflowFlags;
  if (flags.help) return 'help';
  const expected: readonly string[] = shape.args;
  if (positionals.length !== expected.length) {
    const wanted = expected.length === 0 ? 'no arguments' : expected.map((name) => `<${name}>`).join(' ');
    throw new UsageError(`skein workflows ${subcommand} takes ${wanted}, not ${positionals.length === 0 ? 'none' : positionals.map((arg) => JSON.stringify(arg)).join(' ')}`);
  }
  for (const [index, name] of expected.entries()) {
    const value = positionals[index] ?? '';
    if (value === '' || value === '.' || value === '..') throw new UsageError(`<${name}> "${value}" cannot name ${name === 'event' ? 'an event' : name === 'name' ? 'a workflow' : 'an instance'}`);
  }
  return { subcommand, flags, args: positionals };
}

/**
 * `skein workflows`: lists, shows and steers the workflow instances of a sidecar through its HTTP workflow API.
 * A failed call prints `error: <errorCode>: <message>` and sets exit code 1.
 */
export async function workflowsCommand(argv: string[]): Promise<void> {
  if (argv[0] === 'replay') return (await import('./replay.js')).replayCommand(argv.slice(1));
  const parsed = parseWorkflowsArgs(argv);
  if (parsed === 'help') {
    process.stdout.write(WORKFLOWS_USAGE);
    return;
  }
  const { subcommand, flags, args } = parsed;
  const baseUrl = sidecarBaseUrl(flags, process.env);
  const api = new WorkflowApi(baseUrl, apiTokenFor(baseUrl, process.env['DAPR_API_TOKEN'] || undefined));
  try {
    await runSubcommand(api, subcommand, flags, args);
  } catch (error) {
    if (!(error instanceof SidecarError)) throw error;
    process.stderr.write(`${formatSidecarError(error)}\n`);
    process.exitCode = 1;
  }
}

async function runSubcommand(api: WorkflowApi, subcommand: Subcommand, flags: WorkflowFlags, args: string[]): Promise<void> {
  const [first = '', second = ''] = args;
  switch (subcommand) {
    case 'list': {
      const query = new URLSearchParams();
      if (flags.name !== undefined) query.set('name', flags.name);
      const status = statusFlag(flags.status);
      if (status !== undefined) query.set('status', status);
      const since = sinceFlag(flags.since, Date.now());
      if (since) query.set('createdFrom', since.toISOString());
      const limit = limitFlag(flags.limit, 50);
      return printInstances(recentInstances(await api.list(query), limit), flags.json ?? false);
    }
    case 'stuck': {
      const ageMs = ageFlag(flags.for, 5 * 60_000);
      const query = new URLSearchParams({ status: 'RUNNING' });
      if (flags.name !== undefined) query.set('name', flags.name);
      const now = Date.now();
      return printInstances(stuckInstances(await api.list(query), ageMs, now), flags.json ?? false, now);
    }
    case 'show': {
      const instance = await api.get(first);
      for (const line of flags.json ? [JSON.stringify(instance)] : describeInstance(instance)) await writeLine(line);
      return;
    }
    case 'history': {
      const events = await api.history(first);
      if (flags.json) {
        for (const event of events) await writeLine(JSON.stringify(event));
        return;
      }
      for (const line of historyTable(events)) await writeLine(line);
      return;
    }
    case 'start': {
      const input = jsonFlag('input', flags.input);
      return writeLine(await api.start(first, flags.id, input));
    }
    case 'rerun': {
      const original = await api.get(first);
      if (original.workflowName === '') throw new SidecarError(undefined, `instance ${first} has not started yet, so its workflow name is not known: nothing to rerun`);
      const started = await api.start(original.workflowName, flags.id, original.properties['dapr.workflow.input']);
      process.stderr.write(`started a new instance of ${printable(original.workflowName)} with the input of ${printable(first)}, which is unchanged\n`);
      return writeLine(started);
    }
    case 'raise': {
      await api.raiseEvent(first, second, jsonFlag('data', flags.data));
      return writeLine(`raised event ${printable(second)} on ${printable(first)}`);
    }
    case 'suspend':
      await api.operation(first, 'pause');
      return writeLine(`asked ${printable(first)} to suspend`);
    case 'resume':
      await api.operation(first, 'resume');
      return writeLine(`asked ${printable(first)} to resume`);
    case 'terminate':
      await api.operation(first, 'terminate');
      return writeLine(`asked ${printable(first)} (and its children) to terminate`);
    case 'purge':
      await api.operation(first, 'purge');
      return writeLine(`purged ${printable(first)} (and its children)`);
  }
}

async function printInstances(instances: readonly WorkflowStateJson[], json: boolean, now?: number): Promise<void> {
  if (json) {
    for (const instance of instances) await writeLine(JSON.stringify(instance));
    return;
  }
  if (instances.length === 0) {
    process.stderr.write('no workflow instances match\n');
    return;
  }
  for (const line of instanceTable(instances, now)) await writeLine(line);
}
