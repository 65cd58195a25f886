import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { invocationService } from '@skein/proto';
import { createCsr, generateKeyPem, signSvid, type SpiffeId } from '@skein/core';
import { Harness, type AppHandle, type SidecarHandle } from '../src/harness.js';
import { httpRequest } from '../src/http.js';

interface DaprError {
  errorCode: string;
  message: string;
}

// The seed's documents, unchanged, as shipped in samples/policies.
const sample = (name: string): string => readFileSync(fileURLToPath(new URL(`../../../samples/policies/${name}`, import.meta.url)), 'utf8');
const DENY_ALL = sample('deny-all.yaml');
const ALLOW_ANALYST = sample('allow-analyst.yaml');
const OPERATIONS = `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: operations
spec:
  accessControl:
    defaultAction: deny
    trustDomain: public
    policies:
    - appId: ops-agent
      namespace: default
      trustDomain: public
      defaultAction: deny
      operations:
      - name: /mcp
        httpVerb: ["POST"]
        action: allow
      - name: /reports/*
        httpVerb: ["GET"]
        action: allow
`;

/** A client certificate signed by the mesh CA for any identity — what a compromised or foreign workload could hold. */
function svidFor(harness: Harness, id: SpiffeId): { cert: string; key: string } {
  const { privateKeyPem } = generateKeyPem();
  return { key: privateKeyPem, cert: signSvid(harness.ca, createCsr(privateKeyPem, id.appId), id, 3_600_000) };
}

describe('App-ID access control (Configuration.spec.accessControl)', function () {
  const harness = new Harness();
  let app: AppHandle;
  let nc: NatsConnection;
  const count = async (): Promise<number> => (await httpRequest(`http://127.0.0.1:${app.port}/_count`)).json<{ requests: number }>().requests;
  const config = (name: string, text: string): string => {
    const path = join(harness.dir('configs'), `${name}.yaml`);
    writeFileSync(path, text);
    return path;
  };
  const server = (appId: string, text: string): Promise<SidecarHandle> => harness.sidecar({ appId, appPort: app.port, args: ['--config', config(appId, text)] });

  before(async function () {
    const { nats } = await harness.controlPlane();
    app = await harness.app('echo-app');
    const client = svidFor(harness, { trustDomain: 'public', namespace: 'default', appId: 'observer' });
    nc = await connect({ servers: nats.url, tls: { cert: client.cert, key: client.key, ca: harness.ca.certPem } });
  });
  after(async () => {
    await nc?.close();
    await harness.cleanup();
  });

  it('deny-all baseline: no caller reaches the server, each denial is Dapr\'s 403, nothing reaches the app', async function () {
    const [, caller] = await Promise.all([server('locked', DENY_ALL), harness.sidecar({ appId: 'analyst-agent' })]);
    const before = await count();
    const res = await httpRequest(`${caller.url}/v1.0/invoke/locked/method/mcp`, { method: 'POST', body: '{}' });
    assert.equal(res.status, 403);
    const body = res.json<DaprError>();
    assert.equal(body.errorCode, 'ERR_DIRECT_INVOKE');
    assert.match(body.message, /access control policy has denied access to id: spiffe:\/\/public\/ns\/default\/analyst-agent operation: \/?mcp verb: POST/);
    assert.equal(await count(), before);
  });

  it('allow-list: analyst-agent is allowed, every other caller denied — whatever headers it forges', async function () {
    const decisions = nc.subscribe('skein.decisions.default.mcp-server', { max: 2 });
    const [, analyst, other] = await Promise.all([server('mcp-server', ALLOW_ANALYST), harness.sidecar({ appId: 'analyst-agent' }), harness.sidecar({ appId: 'other-agent' })]);
    const allowed = await httpRequest(`${analyst.url}/v1.0/invoke/mcp-server/method/mcp`, { method: 'POST', body: '{}' });
    assert.equal(allowed.status, 200, allowed.body);
    const before = await count();
    const denied = await httpRequest(`${other.url}/v1.0/invoke/mcp-server/method/mcp`, {
      method: 'POST',
      body: '{}',
      headers: { 'dapr-caller-app-id': 'analyst-agent', 'dapr-caller-namespace': 'default' },
    });
    assert.equal(denied.status, 403);
    assert.match(denied.json<DaprError>().message, /spiffe:\/\/public\/ns\/default\/other-agent/);
    assert.equal(await count(), before, 'the denied call never reached the app');

    // Both decisions were published, with the rule that decided.
    const events: Array<{ version: number; appId: string; decision: { allowed: boolean; source: string; rule: string; caller: string; target: string } }> = [];
    for await (const message of decisions) events.push(message.json());
    assert.deepEqual(
      events.map((event) => [event.version, event.appId, event.decision.allowed, event.decision.source, event.decision.caller, event.decision.target]),
      [
        [1, 'mcp-server', true, 'acl', 'spiffe://public/ns/default/analyst-agent', 'mcp-server'],
        [1, 'mcp-server', false, 'acl', 'spiffe://public/ns/default/other-agent', 'mcp-server'],
      ],
    );
    assert.match(events[0]?.decision.rule ?? '', /policies\[0\]/);
    assert.equal(events[1]?.decision.rule, 'default');
  });

  it('operations: verbs and path patterns decide per call', async function () {
    const [, ops] = await Promise.all([server('reports', OPERATIONS), harness.sidecar({ appId: 'ops-agent' })]);
    const call = async (verb: string, path: string): Promise<number> => (await httpRequest(`${ops.url}/v1.0/invoke/reports/method/${path}`, { method: verb, ...(verb === 'GET' ? {} : { body: '{}' }) })).status;
    assert.equal(await call('POST', 'mcp'), 200);
    assert.equal(await call('GET', 'mcp'), 403);
    assert.equal(await call('GET', 'reports/daily'), 200);
    assert.equal(await call('GET', 'reports/daily/raw'), 403);
    assert.equal(await call('DELETE', 'admin'), 403);
    // An encoded slash cannot turn a denied path into an allowed one; the caller's sidecar refuses it outright.
    assert.equal(await call('GET', 'reports%2F..%2Fadmin'), 400);
  });

  it('refuses a certificate from another trust domain, even one signed by the mesh CA', async function () {
    const target = await server('guarded', `apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: open\nspec:\n  accessControl:\n    defaultAction: allow\n`);
    const foreign = svidFor(harness, { trustDomain: 'evil.example', namespace: 'default', appId: 'analyst-agent' });
    const client = new Client(`127.0.0.1:${target.internalPort}`, credentials.createSsl(Buffer.from(harness.ca.certPem), Buffer.from(foreign.key), Buffer.from(foreign.cert), { checkServerIdentity: () => undefined }), {
      'grpc.ssl_target_name_override': 'guarded.skein.internal',
    });
    const before = await count();
    const error = await new Promise<ServiceError>((resolve) => {
      const method = invocationService.invoke;
      const call = client.makeServerStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, { head: { appId: 'guarded', namespace: 'default', verb: 'GET', method: 'x', query: '', headers: [] } }, new Metadata());
      call.on('data', () => undefined);
      call.on('error', resolve);
    });
    client.close();
    assert.equal(error.code, 7, error.message);
    assert.match(error.details, /caller spiffe:\/\/evil\.example\/ns\/default\/analyst-agent is from another trust domain/);
    assert.equal(await count(), before);
  });

  it('rejects an invalid accessControl at start, naming file and path', async function () {
    const bad = config('bad', `apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: bad\nspec:\n  accessControl:\n    policies:\n    - appId: a\n      namespace: default\n      operations:\n      - name: /x\n        httpVerb: [FETCH]\n        action: allow\n`);
    const proc = harness.skein('bad-acl', ['run', '--app-id', 'bad', '--config', bad, '--trust-anchors-file', harness.trustBundle]);
    const { code } = await proc.exited;
    assert.equal(code, 1, proc.output());
    assert.match(proc.output(), /bad\.yaml: \/spec\/accessControl\/policies\/0\/operations\/0\/httpVerb\/0: "FETCH" is not an HTTP verb/);
  });
});
