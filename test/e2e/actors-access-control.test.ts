import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createCsr, generateKeyPem, signSvid } from '@skein/core';
import { Harness, type AppHandle, type SidecarHandle } from '../src/harness.js';
import { eventually } from '../src/eventually.js';
import { httpRequest, type HttpResult } from '../src/http.js';
import { nextDecisions } from '../src/decisions.js';

const PLACEMENT_ARGS = ['--host-ttl', '2s', '--dissemination-timeout', '4s', '--batch-window', '200ms', '--lease-ttl', '2s'];

/** The actor host's Configuration: only `auditor` may call `Ledger` methods, and only with POST. */
const LEDGER_CONFIG = `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: ledger
spec:
  accessControl:
    defaultAction: deny
    trustDomain: public
    policies:
    - appId: auditor
      namespace: default
      defaultAction: deny
      operations:
      - name: /actors/Ledger/*/method/**
        httpVerb: ["POST"]
        action: allow
`;

interface DaprError {
  errorCode: string;
  message: string;
}




describe('actors: App-ID access control of the actor\'s app applies to actor calls from other apps', function () {
  const harness = new Harness();
  const hosts: Array<{ app: AppHandle; sidecar: SidecarHandle }> = [];
  let auditor: SidecarHandle;
  let intruder: SidecarHandle;
  let nc: NatsConnection;

  const method = (from: SidecarHandle, actorId: string, name: string, verb = 'POST'): Promise<HttpResult> =>
    httpRequest(`${from.url}/v1.0/actors/Ledger/${actorId}/method/${name}`, { method: verb, body: '{}', headers: { 'content-type': 'application/json' } });
  const turnsOf = async (actorId: string): Promise<number> => {
    const all = await Promise.all(hosts.map(async (host) => (await httpRequest(`http://127.0.0.1:${host.app.port}/_events`)).json<{ turns: Array<{ actorId: string }> }>()));
    return all.flatMap((events) => events.turns).filter((turn) => turn.actorId === actorId).length;
  };
  const decisions = (count: number): ReturnType<typeof nextDecisions> => nextDecisions(nc, 'skein.decisions.default.ledger', count);

  before(async function () {
    const { nats } = await harness.controlPlane();
    const placement = await harness.placement('alpha', PLACEMENT_ARGS);
    await placement.proc.waitForRecord('became leader');
    const config = join(harness.dir('configs'), 'ledger.yaml');
    writeFileSync(config, LEDGER_CONFIG);
    const placementArgs = ['--placement-address', placement.address];
    for (const name of ['l1', 'l2']) {
      const app = await harness.app('actor-app', { INSTANCE: name, ACTOR_TYPES: 'Ledger' });
      const sidecar = await harness.sidecar({ appId: 'ledger', appPort: app.port, args: [...placementArgs, '--config', config] });
      await httpRequest(`http://127.0.0.1:${app.port}/_sidecar`, { method: 'POST', body: JSON.stringify({ url: sidecar.url }) });
      hosts.push({ app, sidecar });
    }
    [auditor, intruder] = await Promise.all([harness.sidecar({ appId: 'auditor', args: placementArgs }), harness.sidecar({ appId: 'intruder', args: placementArgs })]);
    const { privateKeyPem } = generateKeyPem();
    const id = { trustDomain: 'public', namespace: 'default', appId: 'observer' };
    nc = await connect({ servers: nats.url, tls: { cert: signSvid(harness.ca, createCsr(privateKeyPem, id.appId), id, 3_600_000), key: privateKeyPem, ca: harness.ca.certPem } });
    // Both hosts are on the ring once the allowed caller's calls reach both of them.
    await eventually(async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 16; i++) {
        const res = await method(auditor, `warm-${i}`, 'echo');
        if (res.status !== 200) return undefined;
        seen.add(res.json<{ instance: string }>().instance);
      }
      return seen.size === 2 ? true : undefined;
    }, 30_000, 'both actor hosts to be placed');
  });

  after(async () => {
    await nc?.close();
    await harness.cleanup();
  });

  it('allows the caller the policy allows and denies the other with Dapr\'s 403; each decision is published', async function () {
    const published = await decisions(2);
    const allowed = await method(auditor, 'acct-1', 'echo');
    assert.equal(allowed.status, 200, allowed.body);
    assert.equal(allowed.json<{ headers: Record<string, string> }>().headers['dapr-caller-app-id'], 'auditor');
    const turns = await turnsOf('acct-1');

    const denied = await method(intruder, 'acct-1', 'echo');
    assert.equal(denied.status, 403, denied.body);
    const error = denied.json<DaprError>();
    assert.equal(error.errorCode, 'ERR_DIRECT_INVOKE');
    assert.match(error.message, /access control policy has denied access to id: spiffe:\/\/public\/ns\/default\/intruder operation: \/actors\/Ledger\/acct-1\/method\/echo verb: POST/);
    assert.equal(await turnsOf('acct-1'), turns, 'the denied call never reached the actor');

    const events = (await published.events()).sort((a, b) => a.decision.caller.localeCompare(b.decision.caller));
    assert.deepEqual(
      events.map((event) => [event.appId, event.decision.allowed, event.decision.source, event.decision.caller, event.decision.target, event.decision.method]),
      [
        ['ledger', true, 'acl', 'spiffe://public/ns/default/auditor', 'ledger', 'POST /actors/Ledger/acct-1/method/echo'],
        ['ledger', false, 'acl', 'spiffe://public/ns/default/intruder', 'ledger', 'POST /actors/Ledger/acct-1/method/echo'],
      ],
    );
    assert.match(events[0]?.decision.rule ?? '', /policies\[0\]\.operations\[0\]/);
    assert.equal(events[1]?.decision.rule, 'default');
  });

  it('judges the verb and the operation: a verb the rule does not list, and timers, are denied', async function () {
    const published = await decisions(2);
    const put = await method(auditor, 'acct-2', 'echo', 'PUT');
    assert.equal(put.status, 403, put.body);
    const timer = await httpRequest(`${auditor.url}/v1.0/actors/Ledger/acct-2/timers/sweep`, { method: 'POST', body: JSON.stringify({ dueTime: '1h' }) });
    assert.equal(timer.status, 403, timer.body);
    assert.match(timer.json<DaprError>().message, /operation: \/actors\/Ledger\/acct-2\/timers\/sweep verb: PUT/);
    const events = await published.events();
    assert.deepEqual(events.map((event) => [event.decision.allowed, event.decision.method]).sort(), [
      [false, 'PUT /actors/Ledger/acct-2/method/echo'],
      [false, 'PUT /actors/Ledger/acct-2/timers/sweep'],
    ]);
  });

  it('never denies the actor app its own calls, passed between its sidecars, though its policy names no such caller', async function () {
    const own = hosts[0];
    assert.ok(own);
    const instances = new Set<string>();
    for (let i = 0; i < 16; i++) {
      const res = await method(own.sidecar, `own-${i}`, 'echo', 'PUT');
      assert.equal(res.status, 200, res.body);
      assert.equal(res.json<{ headers: Record<string, string> }>().headers['dapr-caller-app-id'], 'ledger');
      instances.add(res.json<{ instance: string }>().instance);
    }
    assert.deepEqual([...instances].sort(), ['l1', 'l2'], 'some calls were served by the other sidecar of the app');
  });
});
