import assert from 'node:assert/strict';
import { SkeinError } from '@skein/core';
import { HttpApi } from '../src/api/http.js';
import { UniversalApi, type SidecarState } from '../src/api/universal.js';
import { WorkflowStatus, isTerminal, type HistoryEntry, type ListPage, type ListQuery, type StartRequest, type WorkflowClients, type WorkflowState } from '../src/workflow/api.js';

const APP_ID = 'orders';
const CREATED = new Date('2026-12-03T23:00:00.123Z');
const UPDATED = new Date('2026-12-03T23:00:05.456Z');

/** What the fake was asked, in order. */
type Call = { method: string; instanceId?: string; args: unknown[] };

/**
 * An in-memory engine: instances in a Map, every call recorded; `failWith` makes the next call throw it. Another
 * app's workflows (`forApp`) are another fake, kept in `others`.
 */
class FakeWorkflows implements WorkflowClients {
  readonly others = new Map<string, FakeWorkflows>();
  readonly instances = new Map<string, WorkflowState>();
  readonly histories = new Map<string, HistoryEntry[]>();
  readonly calls: Call[] = [];
  listPage: ListPage = { instances: [] };
  failWith: Error | undefined;

  private enter(method: string, instanceId: string | undefined, ...args: unknown[]): void {
    this.calls.push({ method, ...(instanceId === undefined ? {} : { instanceId }), args });
    const failure = this.failWith;
    this.failWith = undefined;
    if (failure) throw failure;
  }

  private known(instanceId: string): WorkflowState {
    const state = this.instances.get(instanceId);
    if (!state) throw new SkeinError('ERR_INSTANCE_ID_NOT_FOUND', `unable to find workflow with ID '${instanceId}'`);
    return state;
  }

  add(state: Partial<WorkflowState> & { instanceId: string }): WorkflowState {
    const full: WorkflowState = { name: 'order', status: WorkflowStatus.RUNNING, createdAt: CREATED, lastUpdatedAt: UPDATED, historyLength: 1, ...state };
    this.instances.set(full.instanceId, full);
    return full;
  }

  async start(request: StartRequest): Promise<string> {
    const instanceId = request.instanceId ?? 'engine-chosen';
    this.enter('start', instanceId, request);
    const existing = this.instances.get(instanceId);
    if (existing && !isTerminal(existing.status)) throw new SkeinError('ERR_START_WORKFLOW', `an active workflow with ID '${instanceId}' already exists`);
    this.add({ instanceId, name: request.name, status: WorkflowStatus.PENDING, input: request.input });
    return instanceId;
  }

  async get(instanceId: string): Promise<WorkflowState | undefined> {
    this.enter('get', instanceId);
    return this.instances.get(instanceId);
  }

  async wait(instanceId: string): Promise<WorkflowState | undefined> {
    return this.get(instanceId);
  }

  async raiseEvent(instanceId: string, eventName: string, input?: string): Promise<void> {
    this.enter('raiseEvent', instanceId, eventName, input);
    this.known(instanceId);
  }

  async terminate(instanceId: string, options: { output?: string | undefined; recursive: boolean }): Promise<void> {
    this.enter('terminate', instanceId, options);
    this.known(instanceId).status = WorkflowStatus.TERMINATED;
  }

  async suspend(instanceId: string, reason?: string): Promise<void> {
    this.enter('suspend', instanceId, reason);
    this.known(instanceId).status = WorkflowStatus.SUSPENDED;
  }

  async resume(instanceId: string, reason?: string): Promise<void> {
    this.enter('resume', instanceId, reason);
    this.known(instanceId).status = WorkflowStatus.RUNNING;
  }

  async purge(instanceId: string, options: { recursive: boolean }): Promise<boolean> {
    this.enter('purge', instanceId, options);
    return this.instances.delete(instanceId);
  }

  async list(query: ListQuery): Promise<ListPage> {
    this.enter('list', undefined, query);
    return this.listPage;
  }

  async history(instanceId: string): Promise<HistoryEntry[]> {
    this.enter('history', instanceId);
    this.known(instanceId);
    return this.histories.get(instanceId) ?? [];
  }

  forApp(appId: string): FakeWorkflows {
    let other = this.others.get(appId);
    if (!other) this.others.set(appId, (other = new FakeWorkflows()));
    return other;
  }
}

function sidecarState(overrides: Partial<SidecarState> = {}): SidecarState {
  return {
    appId: APP_ID,
    namespace: 'default',
    appPort: undefined,
    ready: () => true,
    notReadyReason: () => '',
    spiffeId: () => `spiffe://public/ns/default/${APP_ID}`,
    enabledFeatures: [],
    maxBodyBytes: 1024,
    ...overrides,
  };
}

const noInvoker = { invoke: () => Promise.reject(new Error('no service invocation in these tests')) };

interface Answer {
  status: number;
  text: string;
  json: unknown;
}

interface RunningApi {
  http: HttpApi;
  call: (verb: string, path: string, body?: string, headers?: Record<string, string>) => Promise<Answer>;
}

/** A real HttpApi on port 0 over the fake engine (or none). */
async function startApi(workflows: WorkflowClients | undefined, state: Partial<SidecarState> = {}): Promise<RunningApi> {
  const http = new HttpApi({ host: '127.0.0.1', port: 0 }, new UniversalApi(sidecarState(state), noInvoker, undefined, undefined, workflows));
  const port = await http.start();
  const call: RunningApi['call'] = async (verb, path, body, headers = {}) => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, { method: verb, headers, ...(body === undefined ? {} : { body }) });
    const text = await response.text();
    return { status: response.status, text, json: text === '' ? undefined : JSON.parse(text) as unknown };
  };
  return { http, call };
}

function errorOf(answer: Answer): { errorCode: string; message: string } {
  return answer.json as { errorCode: string; message: string };
}

describe('the HTTP workflow API (Dapr /v1.0*/workflows/<component>/...)', function () {
  let engine: FakeWorkflows;
  let api: RunningApi;

  beforeEach(async function () {
    engine = new FakeWorkflows();
    api = await startApi(engine);
  });

  afterEach(async function () {
    await api.http.stop();
  });

  describe('start', function () {
    it('starts under every Dapr version with the raw body as input, unparsed, and answers 202 {"instanceID"}', async function () {
      for (const version of ['v1.0-alpha1', 'v1.0-beta1', 'v1.0']) {
        const instanceId = `order-${version.replace('.', '_')}`;
        const raw = ' {"item": "book",   "qty":2} ';
        const answer = await api.call('POST', `/${version}/workflows/dapr/order/start?instanceID=${instanceId}`, raw);
        assert.equal(answer.status, 202);
        assert.deepEqual(answer.json, { instanceID: instanceId });
        const request = engine.calls.at(-1)?.args[0] as StartRequest;
        assert.deepEqual(request, { name: 'order', instanceId, input: raw });
      }
    });

    it('passes a body that is not JSON as it came, and an empty body as no input', async function () {
      await api.call('POST', '/v1.0/workflows/dapr/order/start?instanceID=plain', 'not json, just text');
      assert.equal((engine.calls.at(-1)?.args[0] as StartRequest).input, 'not json, just text');
      await api.call('POST', '/v1.0/workflows/dapr/order/start?instanceID=empty', '');
      assert.equal((engine.calls.at(-1)?.args[0] as StartRequest).input, undefined);
    });

    it('chooses a random UUID when no instanceID is given', async function () {
      const answer = await api.call('POST', '/v1.0-beta1/workflows/dapr/order/start');
      assert.equal(answer.status, 202);
      const { instanceID } = answer.json as { instanceID: string };
      assert.match(instanceID, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal((engine.calls.at(-1)?.args[0] as StartRequest).instanceId, instanceID);
      const again = await api.call('POST', '/v1.0-beta1/workflows/dapr/order/start');
      assert.notEqual((again.json as { instanceID: string }).instanceID, instanceID);
    });

    it('refuses a missing name, a too long id and an id with other characters than letters, digits, - and _ (400)', async function () {
      const cases: Array<[string, string]> = [
        ['/v1.0/workflows/dapr//start?instanceID=a1', 'ERR_WORKFLOW_NAME_MISSING'],
        [`/v1.0/workflows/dapr/order/start?instanceID=${'x'.repeat(65)}`, 'ERR_INSTANCE_ID_TOO_LONG'],
        ['/v1.0/workflows/dapr/order/start?instanceID=a.b', 'ERR_INSTANCE_ID_INVALID'],
        ['/v1.0/workflows/dapr/order/start?instanceID=a%20b', 'ERR_INSTANCE_ID_INVALID'],
      ];
      for (const [path, code] of cases) {
        const answer = await api.call('POST', path, '{}');
        assert.equal(answer.status, 400, path);
        assert.equal(errorOf(answer).errorCode, code, path);
      }
      const longest = await api.call('POST', `/v1.0/workflows/dapr/order/start?instanceID=${'x'.repeat(64)}`);
      assert.equal(longest.status, 202);
      assert.deepEqual(engine.calls.map((call) => call.method), ['start'], 'no refused start reached the engine');
    });

    it('answers 500 ERR_START_WORKFLOW with the engine message when the id is taken by an active instance', async function () {
      engine.add({ instanceId: 'x', status: WorkflowStatus.RUNNING });
      const answer = await api.call('POST', '/v1.0/workflows/dapr/order/start?instanceID=x');
      assert.equal(answer.status, 500);
      assert.deepEqual(answer.json, { errorCode: 'ERR_START_WORKFLOW', message: "an active workflow with ID 'x' already exists" });
    });
  });

  describe('get', function () {
    it('answers Dapr\'s shape: RFC 3339 times, the status string and the properties the instance has', async function () {
      engine.add({ instanceId: 'done', name: 'order', status: WorkflowStatus.COMPLETED, input: '{"qty":2}', output: '"shipped"', customStatus: '"packing"' });
      const answer = await api.call('GET', '/v1.0/workflows/dapr/done');
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.json, {
        instanceID: 'done',
        workflowName: 'order',
        createdAt: '2026-12-03T23:00:00.123Z',
        lastUpdatedAt: '2026-12-03T23:00:05.456Z',
        runtimeStatus: 'COMPLETED',
        properties: { 'dapr.workflow.input': '{"qty":2}', 'dapr.workflow.output': '"shipped"', 'dapr.workflow.custom_status': '"packing"' },
      });
    });

    it('shows a failure under dapr.workflow.failure.* and no output', async function () {
      engine.add({ instanceId: 'broken', status: WorkflowStatus.FAILED, input: '1', output: 'boom', failure: { errorType: 'TypeError', errorMessage: 'boom', stackTrace: 'at charge()' } });
      const answer = await api.call('GET', '/v1.0-alpha1/workflows/dapr/broken');
      assert.equal(answer.status, 200);
      const body = answer.json as { runtimeStatus: string; properties: Record<string, string> };
      assert.equal(body.runtimeStatus, 'FAILED');
      assert.deepEqual(body.properties, {
        'dapr.workflow.input': '1',
        'dapr.workflow.failure.error_type': 'TypeError',
        'dapr.workflow.failure.error_message': 'boom',
        'dapr.workflow.failure.stack_trace': 'at charge()',
      });
    });

    it('shows no properties for values the instance does not have, and UNKNOWN for a status Dapr does not name', async function () {
      engine.add({ instanceId: 'bare', status: 8 as WorkflowStatus });
      const answer = await api.call('GET', '/v1.0/workflows/dapr/bare');
      const body = answer.json as { runtimeStatus: string; properties: Record<string, string> };
      assert.equal(body.runtimeStatus, 'UNKNOWN');
      assert.deepEqual(body.properties, {});
    });

    it('answers 404 ERR_INSTANCE_ID_NOT_FOUND for an unknown id', async function () {
      const answer = await api.call('GET', '/v1.0/workflows/dapr/nobody');
      assert.equal(answer.status, 404);
      assert.deepEqual(answer.json, { errorCode: 'ERR_INSTANCE_ID_NOT_FOUND', message: 'unable to find workflow with the provided instance ID: nobody' });
    });
  });

  describe('terminate, purge, pause, resume, raiseEvent', function () {
    it('terminates recursively and answers 202 with an empty body', async function () {
      engine.add({ instanceId: 'w1' });
      const answer = await api.call('POST', '/v1.0/workflows/dapr/w1/terminate');
      assert.equal(answer.status, 202);
      assert.equal(answer.text, '');
      assert.deepEqual(engine.calls.at(-1), { method: 'terminate', instanceId: 'w1', args: [{ recursive: true }] });
      assert.equal(engine.instances.get('w1')?.status, WorkflowStatus.TERMINATED);
    });

    it('purges recursively, and answers 404 for an instance the engine does not know', async function () {
      engine.add({ instanceId: 'w1', status: WorkflowStatus.COMPLETED });
      const answer = await api.call('POST', '/v1.0-beta1/workflows/dapr/w1/purge');
      assert.equal(answer.status, 202);
      assert.equal(answer.text, '');
      assert.deepEqual(engine.calls.at(-1), { method: 'purge', instanceId: 'w1', args: [{ recursive: true }] });
      assert.equal(engine.instances.has('w1'), false);
      const again = await api.call('POST', '/v1.0-beta1/workflows/dapr/w1/purge');
      assert.equal(again.status, 404);
      assert.equal(errorOf(again).errorCode, 'ERR_INSTANCE_ID_NOT_FOUND');
    });

    it('pauses (the engine\'s suspend) and resumes, 202 with an empty body each', async function () {
      engine.add({ instanceId: 'w1' });
      const paused = await api.call('POST', '/v1.0/workflows/dapr/w1/pause');
      assert.equal(paused.status, 202);
      assert.equal(paused.text, '');
      assert.equal(engine.instances.get('w1')?.status, WorkflowStatus.SUSPENDED);
      const resumed = await api.call('POST', '/v1.0/workflows/dapr/w1/resume');
      assert.equal(resumed.status, 202);
      assert.equal(resumed.text, '');
      assert.equal(engine.instances.get('w1')?.status, WorkflowStatus.RUNNING);
      assert.deepEqual(engine.calls.map((call) => call.method), ['suspend', 'resume']);
    });

    it('raises an event with the raw body as its payload, unparsed', async function () {
      engine.add({ instanceId: 'w1' });
      const answer = await api.call('POST', '/v1.0/workflows/dapr/w1/raiseEvent/approved', '{"by":  "ana"}');
      assert.equal(answer.status, 202);
      assert.equal(answer.text, '');
      assert.deepEqual(engine.calls.at(-1), { method: 'raiseEvent', instanceId: 'w1', args: ['approved', '{"by":  "ana"}'] });
      await api.call('POST', '/v1.0/workflows/dapr/w1/raiseEvent/nudge');
      assert.deepEqual(engine.calls.at(-1)?.args, ['nudge', undefined]);
    });

    it('refuses a missing event name and a missing instance id (400)', async function () {
      for (const path of ['/v1.0/workflows/dapr/w1/raiseEvent', '/v1.0/workflows/dapr/w1/raiseEvent/']) {
        const answer = await api.call('POST', path, '{}');
        assert.equal(answer.status, 400, path);
        assert.equal(errorOf(answer).errorCode, 'ERR_WORKFLOW_EVENT_NAME_MISSING', path);
      }
      for (const action of ['terminate', 'purge', 'pause', 'resume', 'raiseEvent/e', 'history']) {
        const answer = await api.call(action === 'history' ? 'GET' : 'POST', `/v1.0/workflows/dapr//${action}`);
        assert.equal(answer.status, 400, action);
        assert.deepEqual(answer.json, { errorCode: 'ERR_INSTANCE_ID_PROVIDED_MISSING', message: 'no instance ID was provided' }, action);
      }
      assert.deepEqual(engine.calls, []);
    });

    it('passes the engine\'s not-found on through (404)', async function () {
      for (const action of ['terminate', 'pause', 'resume', 'raiseEvent/e']) {
        const answer = await api.call('POST', `/v1.0/workflows/dapr/ghost/${action}`);
        assert.equal(answer.status, 404, action);
        assert.equal(errorOf(answer).errorCode, 'ERR_INSTANCE_ID_NOT_FOUND', action);
      }
    });
  });

  describe('list and history (beyond Dapr)', function () {
    it('lists instances in the shape of GET <id>, with the continuation token', async function () {
      engine.listPage = {
        instances: [engine.add({ instanceId: 'a', status: WorkflowStatus.COMPLETED, output: '1' }), engine.add({ instanceId: 'b', input: '2' })],
        continuationToken: 'b',
      };
      const answer = await api.call('GET', '/v1.0-beta1/workflows/dapr');
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.json, {
        instances: [
          { instanceID: 'a', workflowName: 'order', createdAt: '2026-12-03T23:00:00.123Z', lastUpdatedAt: '2026-12-03T23:00:05.456Z', runtimeStatus: 'COMPLETED', properties: { 'dapr.workflow.output': '1' } },
          { instanceID: 'b', workflowName: 'order', createdAt: '2026-12-03T23:00:00.123Z', lastUpdatedAt: '2026-12-03T23:00:05.456Z', runtimeStatus: 'RUNNING', properties: { 'dapr.workflow.input': '2' } },
        ],
        continuationToken: 'b',
      });
      assert.deepEqual(engine.calls.at(-1)?.args, [{}]);
      engine.listPage = { instances: [] };
      const last = await api.call('GET', '/v1.0/workflows/dapr/');
      assert.deepEqual(last.json, { instances: [] });
    });

    it('parses the filters and passes them to the engine', async function () {
      const query = 'name=order&status=RUNNING,suspended&createdFrom=2026-12-01T00:00:00Z&createdTo=2026-12-02T01:00:00.5%2B01:00&limit=10&continuationToken=abc';
      const answer = await api.call('GET', `/v1.0/workflows/dapr?${query}`);
      assert.equal(answer.status, 200);
      assert.deepEqual(engine.calls.at(-1)?.args, [{
        name: 'order',
        statuses: [WorkflowStatus.RUNNING, WorkflowStatus.SUSPENDED],
        createdFrom: new Date('2026-12-01T00:00:00Z'),
        createdTo: new Date('2026-12-02T00:00:00.500Z'),
        limit: 10,
        continuationToken: 'abc',
      }]);
      // An offset's `+` left unencoded arrives as a space.
      await api.call('GET', '/v1.0/workflows/dapr?createdFrom=2026-12-01T02:00:00+02:00');
      assert.deepEqual(engine.calls.at(-1)?.args, [{ createdFrom: new Date('2026-12-01T00:00:00Z') }]);
    });

    it('refuses an unknown status, a time that is not RFC 3339 and a limit that is not a positive integer (400)', async function () {
      for (const query of ['status=RUNNING,LOST', 'createdFrom=yesterday', 'createdTo=2026-12-01', 'limit=0', 'limit=ten']) {
        const answer = await api.call('GET', `/v1.0/workflows/dapr?${query}`);
        assert.equal(answer.status, 400, query);
        assert.equal(errorOf(answer).errorCode, 'ERR_BAD_REQUEST', query);
      }
      assert.deepEqual(engine.calls, []);
    });

    it('answers an instance\'s history as {instanceID, events[{eventId, timestamp, kind, details}]}', async function () {
      engine.add({ instanceId: 'w1' });
      engine.histories.set('w1', [
        { eventId: -1, timestamp: new Date('2026-12-03T23:00:00.123Z'), kind: 'executionStarted', details: { name: 'order', input: '{"qty":2}' } },
        { eventId: 0, timestamp: new Date('2026-12-03T23:00:01Z'), kind: 'taskScheduled', details: { name: 'charge' } },
      ]);
      const answer = await api.call('GET', '/v1.0/workflows/dapr/w1/history');
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.json, {
        instanceID: 'w1',
        events: [
          { eventId: -1, timestamp: '2026-12-03T23:00:00.123Z', kind: 'executionStarted', details: { name: 'order', input: '{"qty":2}' } },
          { eventId: 0, timestamp: '2026-12-03T23:00:01.000Z', kind: 'taskScheduled', details: { name: 'charge' } },
        ],
      });
      const unknown = await api.call('GET', '/v1.0/workflows/dapr/ghost/history');
      assert.equal(unknown.status, 404);
      assert.equal(errorOf(unknown).errorCode, 'ERR_INSTANCE_ID_NOT_FOUND');
    });
  });

  describe('appID, methods, limits and engine errors', function () {
    it('refuses an invalid appID (400), sends another app\'s calls to its client, and serves its own app id', async function () {
      engine.add({ instanceId: 'w1' });
      for (const appId of ['a.b', '-x', 'has%20space', 'x'.repeat(64)]) {
        const answer = await api.call('GET', `/v1.0/workflows/dapr/w1?appID=${appId}`);
        assert.equal(answer.status, 400, appId);
        assert.equal(errorOf(answer).errorCode, 'ERR_WORKFLOW_APP_ID_INVALID', appId);
      }
      assert.equal(engine.others.size, 0);
      const other = await api.call('POST', '/v1.0/workflows/dapr/order/start?instanceID=w2&appID=billing');
      assert.equal(other.status, 202);
      const billing = engine.forApp('billing');
      assert.deepEqual(billing.calls.map((call) => [call.method, call.instanceId]), [['start', 'w2']]);
      for (const [verb, path] of [['GET', 'w2'], ['POST', 'w2/raiseEvent/approve'], ['POST', 'w2/pause'], ['POST', 'w2/resume'], ['POST', 'w2/terminate'], ['GET', 'w2/history'], ['POST', 'w2/purge']] as const) {
        const answer = await api.call(verb, `/v1.0/workflows/dapr/${path}?appID=billing`);
        assert.ok(answer.status < 300, `${verb} ${path}: ${answer.status} ${answer.text}`);
      }
      assert.deepEqual(billing.calls.map((call) => call.method), ['start', 'get', 'raiseEvent', 'suspend', 'resume', 'terminate', 'history', 'purge']);
      assert.deepEqual(engine.calls, []);
      const own = await api.call('GET', `/v1.0/workflows/dapr/w1?appID=${APP_ID}`);
      assert.equal(own.status, 200);
      const ownStart = await api.call('POST', `/v1.0/workflows/dapr/order/start?instanceID=w3&appID=${APP_ID}`);
      assert.equal(ownStart.status, 202);
    });

    it('answers 405 ERR_METHOD_NOT_ALLOWED for the wrong verb', async function () {
      const cases: Array<[string, string]> = [
        ['GET', '/v1.0/workflows/dapr/order/start'],
        ['POST', '/v1.0/workflows/dapr/w1'],
        ['DELETE', '/v1.0/workflows/dapr/w1'],
        ['GET', '/v1.0/workflows/dapr/w1/terminate'],
        ['PUT', '/v1.0/workflows/dapr/w1/raiseEvent/e'],
        ['POST', '/v1.0/workflows/dapr/w1/history'],
        ['POST', '/v1.0/workflows/dapr'],
      ];
      for (const [verb, path] of cases) {
        const answer = await api.call(verb, path);
        assert.equal(answer.status, 405, `${verb} ${path}`);
        assert.equal(errorOf(answer).errorCode, 'ERR_METHOD_NOT_ALLOWED', `${verb} ${path}`);
      }
      assert.deepEqual(engine.calls, []);
    });

    it('answers 404 for a path that is no workflow route', async function () {
      for (const path of ['/v1.0/workflows', '/v1.0/workflows/dapr/w1/rewind', '/v1.0/workflows/dapr/w1/raiseEvent/e/more']) {
        const answer = await api.call('POST', path);
        assert.equal(answer.status, 404, path);
        assert.equal(errorOf(answer).errorCode, 'ERR_NOT_FOUND', path);
      }
    });

    it('refuses a body over the sidecar\'s limit with 413 before the engine sees it', async function () {
      engine.add({ instanceId: 'w1' });
      const start = await api.call('POST', '/v1.0/workflows/dapr/order/start?instanceID=big', 'x'.repeat(1025));
      assert.equal(start.status, 413);
      assert.equal(errorOf(start).errorCode, 'ERR_BODY_TOO_LARGE');
      const event = await api.call('POST', '/v1.0/workflows/dapr/w1/raiseEvent/e', 'x'.repeat(1025));
      assert.equal(event.status, 413);
      assert.deepEqual(engine.calls, []);
      const atLimit = await api.call('POST', '/v1.0/workflows/dapr/order/start?instanceID=fits', 'x'.repeat(1024));
      assert.equal(atLimit.status, 202);
    });

    it('passes an engine SkeinError through with its own status, and wraps any other error in the operation\'s code', async function () {
      engine.failWith = new SkeinError('ERR_WORKFLOW_PAYLOAD_TOO_LARGE', 'the workflow input is too large');
      const tooLarge = await api.call('POST', '/v1.0/workflows/dapr/order/start?instanceID=w1', '1');
      assert.equal(tooLarge.status, 413);
      assert.deepEqual(tooLarge.json, { errorCode: 'ERR_WORKFLOW_PAYLOAD_TOO_LARGE', message: 'the workflow input is too large' });
      engine.add({ instanceId: 'w1' });
      const cases: Array<[string, string, string]> = [
        ['POST', '/v1.0/workflows/dapr/order/start?instanceID=w2', 'ERR_START_WORKFLOW'],
        ['GET', '/v1.0/workflows/dapr/w1', 'ERR_GET_WORKFLOW'],
        ['GET', '/v1.0/workflows/dapr', 'ERR_GET_WORKFLOW'],
        ['GET', '/v1.0/workflows/dapr/w1/history', 'ERR_GET_WORKFLOW'],
        ['POST', '/v1.0/workflows/dapr/w1/terminate', 'ERR_TERMINATE_WORKFLOW'],
        ['POST', '/v1.0/workflows/dapr/w1/raiseEvent/e', 'ERR_RAISE_EVENT_WORKFLOW'],
        ['POST', '/v1.0/workflows/dapr/w1/pause', 'ERR_PAUSE_WORKFLOW'],
        ['POST', '/v1.0/workflows/dapr/w1/resume', 'ERR_RESUME_WORKFLOW'],
        ['POST', '/v1.0/workflows/dapr/w1/purge', 'ERR_PURGE_WORKFLOW'],
      ];
      for (const [verb, path, code] of cases) {
        engine.failWith = new Error('the store is down');
        const answer = await api.call(verb, path);
        assert.equal(answer.status, 500, path);
        assert.equal(errorOf(answer).errorCode, code, path);
        assert.match(errorOf(answer).message, /: the store is down$/, path);
      }
    });
  });
});

describe('the HTTP workflow API when the sidecar has no workflow engine, or an API token', function () {
  it('answers 501 ERR_API_NOT_SUPPORTED saying the engine needs a placement service', async function () {
    const { http, call } = await startApi(undefined);
    try {
      for (const path of ['/v1.0/workflows/dapr/order/start', '/v1.0-beta1/workflows/dapr/w1', '/v1.0-alpha1/workflows/dapr']) {
        const answer = await call('POST', path, '{}');
        assert.equal(answer.status, 501, path);
        assert.equal(errorOf(answer).errorCode, 'ERR_API_NOT_SUPPORTED', path);
        assert.match(errorOf(answer).message, /workflow engine, which runs only when the sidecar has a placement service/, path);
      }
    } finally {
      await http.stop();
    }
  });

  it('names the versions it serves when a path uses another one', async function () {
    const { http, call } = await startApi(new FakeWorkflows());
    try {
      const answer = await call('GET', '/v1.0-alpha2/workflows/dapr/w1');
      assert.equal(answer.status, 501);
      assert.match(errorOf(answer).message, /served under \/v1\.0\/workflows, \/v1\.0-beta1\/workflows and \/v1\.0-alpha1\/workflows/);
    } finally {
      await http.stop();
    }
  });

  it('checks the dapr-api-token before any workflow route', async function () {
    const engine = new FakeWorkflows();
    engine.add({ instanceId: 'w1' });
    const { http, call } = await startApi(engine, { apiToken: 'secret' });
    try {
      const refused = await call('GET', '/v1.0/workflows/dapr/w1');
      assert.equal(refused.status, 401);
      assert.equal(errorOf(refused).errorCode, 'ERR_UNAUTHENTICATED');
      assert.deepEqual(engine.calls, []);
      const allowed = await call('GET', '/v1.0/workflows/dapr/w1', undefined, { 'dapr-api-token': 'secret' });
      assert.equal(allowed.status, 200);
    } finally {
      await http.stop();
    }
  });
});
