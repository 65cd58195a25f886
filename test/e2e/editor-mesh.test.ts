import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DecisionEvent, SpanEvent, WorkflowEvent } from '@skein/core';
import { MeshConnection, localSidecars, type MeshListener, type MeshStatus } from 'skein-vscode/mesh';
import { Harness, type SidecarHandle } from '../src/harness.js';
import { httpRequest } from '../src/http.js';
import { eventually } from '../src/eventually.js';

const TRACED = `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: traced
spec:
  tracing:
    samplingRate: "1"
`;
const ALLOW_AGENT = `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: mcp-server-policy
spec:
  tracing:
    samplingRate: "1"
  accessControl:
    defaultAction: deny
    trustDomain: "public"
    policies:
    - appId: agent
      defaultAction: allow
      namespace: "default"
`;

/** Everything a connection handed its listener, with the statuses in order. */
class Recorder implements MeshListener {
  readonly statuses: MeshStatus[] = [];
  readonly spans: SpanEvent[] = [];
  readonly decisions: DecisionEvent[] = [];
  readonly workflows: WorkflowEvent[] = [];
  status(status: MeshStatus): void {
    this.statuses.push(status);
  }
  span(span: SpanEvent): void {
    this.spans.push(span);
  }
  decision(event: DecisionEvent): void {
    this.decisions.push(event);
  }
  workflow(event: WorkflowEvent): void {
    this.workflows.push(event);
  }
  get last(): MeshStatus | undefined {
    return this.statuses.at(-1);
  }
}

describe('the editor\'s mesh connection (the VS Code extension\'s data layer) against a live mesh', function () {
  const harness = new Harness();
  let natsUrl: string;
  let agent: SidecarHandle;
  let restartNats: () => Promise<void>;
  const connections: MeshConnection[] = [];

  before(async function () {
    const { nats } = await harness.controlPlane();
    natsUrl = nats.url;
    restartNats = () => nats.restart();
    const app = await harness.app('echo-app');
    const config = join(harness.dir('configs'), 'mcp-server.yaml');
    writeFileSync(config, ALLOW_AGENT);
    const traced = join(harness.dir('configs'), 'traced.yaml');
    writeFileSync(traced, TRACED);
    [agent] = await Promise.all([harness.sidecar({ appId: 'agent', args: ['--config', traced] }), harness.sidecar({ appId: 'mcp-server', appPort: app.port, args: ['--config', config] })]);
  });
  after(async () => {
    await Promise.all(connections.map((connection) => connection.close()));
    await harness.cleanup();
  });

  function open(settings: { natsUrl?: string }, recorder: Recorder): MeshConnection {
    const connection = new MeshConnection({ home: harness.home, historyMs: 3_600_000, ...settings }, recorder);
    connections.push(connection);
    connection.start();
    return connection;
  }

  it('connects with a certificate minted from the home\'s CA, counts the live apps, and streams new decisions and spans', async function () {
    const recorder = new Recorder();
    const connection = open({ natsUrl }, recorder);
    await eventually(async () => (connection.status.kind === 'connected' && connection.status.apps === 2 ? true : undefined), 20_000, 'connected with 2 apps');
    const callMade = Date.now();
    assert.equal((await httpRequest(`${agent.url}/v1.0/invoke/mcp-server/method/mcp`, { method: 'POST', body: '{}' })).status, 200);
    const seen = await eventually(async () => recorder.decisions.find((event) => event.appId === 'mcp-server' && event.decision.caller.endsWith('/agent')), 10_000, 'the decision');
    assert.equal(seen.decision.allowed, true);
    assert.equal(seen.decision.source, 'acl');
    const spans = await eventually(async () => {
      const ofTrace = recorder.spans.filter((span) => span.traceId === seen.traceId);
      return new Set(ofTrace.map((span) => span.appId)).size === 2 ? ofTrace : undefined;
    }, 10_000, 'spans of both sidecars in the decision\'s trace');
    assert.ok(spans.some((span) => span.spanId === seen.spanId), 'the decision names a span of the trace');
    process.stdout.write(`      (decision and spans reached the editor ${Date.now() - callMade} ms after the call was made)\n`);
  });

  it('reads what was stored before it connected, once', async function () {
    const recorder = new Recorder();
    open({ natsUrl }, recorder);
    await eventually(async () => (recorder.decisions.length >= 1 ? true : undefined), 10_000, 'the stored decision');
    const ids = recorder.spans.map((span) => span.spanId);
    assert.equal(new Set(ids).size, ids.length, 'no span twice');
  });

  it('finds the local mesh from the control plane record of the home, and the sidecars recorded there', async function () {
    // The record `skein up` writes; this process stands in for its pid so the record counts as live.
    writeFileSync(join(harness.home, 'up.json'), JSON.stringify({ pid: process.pid, state: 'ready', natsUrl, sentryAddress: '127.0.0.1:1', placementAddress: '127.0.0.1:1', trustBundle: join(harness.home, 'certs', 'trust-bundle.pem') }));
    const recorder = new Recorder();
    const connection = open({}, recorder);
    await eventually(async () => (connection.status.kind === 'connected' ? true : undefined), 20_000, 'connected to the recorded NATS');
    assert.equal(connection.status.kind === 'connected' && connection.status.url, natsUrl);
    const sidecars = localSidecars(harness.home);
    assert.equal(sidecars.get('agent')?.httpPort, agent.httpPort, 'skein run records each sidecar\'s HTTP port in the home');
  });

  it('says why when there is no mesh, and keeps looking', async function () {
    const recorder = new Recorder();
    const lonely = new MeshConnection({ home: harness.dir('empty-home'), historyMs: 60_000 }, recorder);
    connections.push(lonely);
    lonely.start();
    await eventually(async () => (recorder.last?.kind === 'disconnected' ? recorder.last : undefined), 10_000, 'a disconnected status');
    assert.match(recorder.last?.kind === 'disconnected' ? recorder.last.reason : '', /no `skein up` is running for .*empty-home/);
  });

  it('rejoins a restarted NATS by itself and streams what happens after', async function () {
    const recorder = new Recorder();
    const connection = open({ natsUrl }, recorder);
    await eventually(async () => (connection.status.kind === 'connected' && recorder.decisions.length > 0 ? true : undefined), 20_000, 'connected');
    await restartNats();
    await eventually(async () => (recorder.statuses.some((status) => status.kind === 'disconnected') && connection.status.kind === 'connected' ? true : undefined), 30_000, 'disconnected, then connected again');
    const before = recorder.decisions.length;
    await eventually(async () => ((await httpRequest(`${agent.url}/v1.0/invoke/mcp-server/method/mcp`, { method: 'POST', body: '{}' })).status === 200 ? true : undefined), 30_000, 'the mesh serving again');
    await eventually(async () => (recorder.decisions.length > before ? true : undefined), 20_000, 'a decision made after the restart');
  });
});
