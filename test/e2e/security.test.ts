import assert from 'node:assert/strict';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { invocationService, type skein } from '@skein/proto';
import { createCsr, generateKeyPem, signSvid, type SpiffeId } from '@skein/core';
import { Harness, type AppHandle, type SidecarHandle } from '../src/harness.js';
import { httpRequest } from '../src/http.js';

const INVENTORY_POLICY = fileURLToPath(new URL('../../../samples/policies/inventory-tools.yaml', import.meta.url));

/** A certificate signed by the mesh CA: what any workload of the mesh (or a compromised one) holds. */
function svidFor(harness: Harness, id: SpiffeId): { cert: string; key: string } {
  const { privateKeyPem } = generateKeyPem();
  return { key: privateKeyPem, cert: signSvid(harness.ca, createCsr(privateKeyPem, id.appId), id, 3_600_000) };
}

describe('security: attacks from inside the mesh and from a browser', function () {
  const harness = new Harness();
  let app: AppHandle;
  let server: SidecarHandle;
  let caller: SidecarHandle;
  let nc: NatsConnection;
  let attacker: TlsServer | undefined;
  after(async () => {
    attacker?.close();
    await nc?.close();
    await harness.cleanup();
  });

  before(async function () {
    const { nats } = await harness.controlPlane();
    app = await harness.app('echo-app', { INSTANCE: 'real' });
    const resources = harness.dir('security-resources');
    const policy = join(resources, 'inventory-tools.yaml');
    copyFileSync(INVENTORY_POLICY, policy);
    writeFileSync(policy, readScoped(policy, 'victim'));
    [server, caller] = await Promise.all([harness.sidecar({ appId: 'victim', appPort: app.port, args: ['--resources-path', resources] }), harness.sidecar({ appId: 'analyst-agent' })]);
    const evil = svidFor(harness, { trustDomain: 'public', namespace: 'default', appId: 'evil' });
    nc = await connect({ servers: nats.url, tls: { cert: evil.cert, key: evil.key, ca: harness.ca.certPem } });
  });

  it('a forged discovery record cannot redirect calls: the caller expects the identity of the app it calls', async function () {
    const evil = svidFor(harness, { trustDomain: 'public', namespace: 'default', appId: 'evil' });
    let received = 0;
    attacker = createTlsServer({ key: evil.key, cert: evil.cert, ALPNProtocols: ['h2'] }, (socket) => socket.on('data', () => received++));
    await new Promise<void>((resolve) => attacker?.listen(0, '127.0.0.1', resolve));
    const address = attacker.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const kv = await new Kvm(nc).open('skein-discovery');
    const forged = (instanceId: string) => JSON.stringify({ appId: 'victim', namespace: 'default', instanceId, address: `127.0.0.1:${port}`, spiffeId: 'spiffe://public/ns/default/evil', hostname: 'x', startedAt: new Date().toISOString() });
    // One record under the victim's own key shape, one under the attacker's key claiming to be the victim.
    await kv.put('default.victim.forged-1', forged('forged-1'));
    await kv.put('default.evil.forged-2', forged('forged-2'));
    for (let i = 0; i < 12; i++) {
      const res = await httpRequest(`${caller.url}/v1.0/invoke/victim/method/orders`);
      assert.equal(res.status, 200, res.body);
      assert.equal(res.json<{ instance: string }>().instance, 'real');
    }
    assert.equal(received, 0, 'no request bytes reached the forged address');
  });

  it('a lower-case verb sent by a raw gRPC peer is judged like any other: the tool policy still refuses', async function () {
    const analyst = svidFor(harness, { trustDomain: 'public', namespace: 'default', appId: 'analyst-agent' });
    const client = new Client(`127.0.0.1:${server.internalPort}`, credentials.createSsl(Buffer.from(harness.ca.certPem), Buffer.from(analyst.key), Buffer.from(analyst.cert), { checkServerIdentity: () => undefined }), {
      'grpc.ssl_target_name_override': 'victim.skein.internal',
    });
    const before = (await httpRequest(`http://127.0.0.1:${app.port}/_count`)).json<{ requests: number }>().requests;
    const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'drop_table', arguments: { table: 'items' } } }));
    const frames = await new Promise<skein.internal.v1.IResponseFrame[]>((resolve, reject) => {
      const out: skein.internal.v1.IResponseFrame[] = [];
      const method = invocationService.invoke;
      const call = client.makeServerStreamRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        { head: { appId: 'victim', namespace: 'default', verb: 'post', method: 'mcp', query: '', headers: [{ name: 'content-type', value: 'application/json' }] }, body },
        new Metadata(),
      );
      call.on('data', (frame: skein.internal.v1.IResponseFrame) => out.push(frame));
      call.on('end', () => resolve(out));
      call.on('error', (error: ServiceError) => reject(error));
    });
    client.close();
    const text = Buffer.concat(frames.map((frame) => Buffer.from(frame.data ?? []))).toString('utf8');
    assert.match(text, /"code":-31003/, text);
    const after = (await httpRequest(`http://127.0.0.1:${app.port}/_count`)).json<{ requests: number }>().requests;
    assert.equal(after, before, 'nothing reached the app');
  });

  it('refuses requests a browser page could send: a foreign Host (DNS rebinding) or a foreign Origin', async function () {
    const rebinding = await httpRequest(`${caller.url}/v1.0/metadata`, { headers: { host: 'attacker.example' } });
    assert.equal(rebinding.status, 403);
    const crossSite = await httpRequest(`${caller.url}/v1.0/invoke/victim/method/orders`, { method: 'POST', body: 'x', headers: { origin: 'http://attacker.example', 'content-type': 'text/plain' } });
    assert.equal(crossSite.status, 403);
    assert.equal((await httpRequest(`${caller.url}/v1.0/metadata`, { headers: { origin: `http://127.0.0.1:${caller.httpPort}` } })).status, 200);
  });

  it('refuses App IDs that would be NATS wildcards', async function () {
    for (const name of ['*', '>', 'a*', 'victim.>']) {
      const res = await httpRequest(`${caller.url}/v1.0/invoke/${encodeURIComponent(name)}/method/x`);
      assert.equal(res.status, 400, `${name}: ${res.body}`);
    }
  });
});

/** The inventory sample policy, scoped to `appId`. */
function readScoped(path: string, appId: string): string {
  return readFileSync(path, 'utf8').replace('  - mcp-server', `  - ${appId}`);
}
