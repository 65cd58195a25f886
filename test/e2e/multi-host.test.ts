import assert from 'node:assert/strict';
import { createJoinToken } from '@skein/runtime';
import { Harness, type AppHandle, type LogRecord, type SidecarHandle } from '../src/harness.js';
import { Topology, connectFrom, requestFrom, type NetnsHost } from '../src/netns.js';

interface Echo {
  instance: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  rawHeaders: string[];
  bodySize: number;
}

/** How many times a header name occurs in what the app received (forged copies must not survive beside real ones). */
function occurrences(echo: Echo, name: string): number {
  return echo.rawHeaders.filter((value, i) => i % 2 === 0 && value.toLowerCase() === name).length;
}

// Host 1 runs NATS and sentry; hosts 2 and 3 each run a sidecar and its app. Every process is given only the
// addresses of the shared segment, so nothing can work by accident over a loopback they share.
describe('service invocation across three hosts', function () {
  const harness = new Harness();
  let topology: Topology | undefined;
  let host2: NetnsHost;
  let host3: NetnsHost;
  let alpha: SidecarHandle;
  let beta: SidecarHandle;
  let betaApp: AppHandle;
  // What each caller's discovery recorded of the other instance.
  let alphaSawBeta: LogRecord;
  let betaSawAlpha: LogRecord;

  before(async function () {
    topology = await Topology.create(3);
    const host1 = topology.host(1);
    host2 = topology.host(2);
    host3 = topology.host(3);
    const [nats, sentry, alphaApp, host3App] = await Promise.all([
      harness.nats({ host: host1.address, netns: host1.netns, extraHosts: [host1.address] }),
      // Beyond loopback the sentry runs in production mode: each sidecar proves its App ID with a join token.
      harness.sentry(['--host', host1.address, '--advertise-address', host1.address, '--mode', 'production'], { netns: host1.netns }),
      harness.app('echo-app', { INSTANCE: 'host2' }, { netns: host2.netns }),
      harness.app('echo-app', { INSTANCE: 'host3' }, { netns: host3.netns }),
    ]);
    betaApp = host3App;
    const sidecarOn = async (host: NetnsHost, appId: string, app: AppHandle): Promise<SidecarHandle> =>
      harness.sidecar({
        appId,
        appPort: app.port,
        // Not the default, so the stamped namespace cannot be a fallback.
        namespace: 'shop',
        netns: host.netns,
        natsUrl: nats.url,
        sentryAddress: sentry.address,
        args: ['--advertise-address', host.address, '--join-token', await createJoinToken(harness.ca.keyPem, { trustDomain: 'public', namespace: 'shop', appId }, 300)],
        // Discovery's debug records show what each sidecar learned of the other.
        env: { SKEIN_LOG: 'discovery' },
      });
    [alpha, beta] = await Promise.all([sidecarOn(host2, 'alpha', alphaApp), sidecarOn(host3, 'beta', betaApp)]);
    // A caller can route to an App ID only once its watch has delivered that instance's record.
    [alphaSawBeta, betaSawAlpha] = await Promise.all([alpha.proc.waitForRecord('instance joined', { appId: 'beta' }), beta.proc.waitForRecord('instance joined', { appId: 'alpha' })]);
  });

  after(async function () {
    // Processes first: a namespace with a live process in it outlives its deletion.
    try {
      await harness.cleanup();
    } finally {
      await topology?.destroy();
    }
  });

  it('calls the app on host 3 from host 2 by App ID, stamping the identity from the verified certificate', async function () {
    const res = await requestFrom(harness, host2.netns, alpha.url, {
      method: 'POST',
      path: '/v1.0/invoke/beta/method/orders/42?expand=items',
      headers: { 'content-type': 'application/json', 'dapr-caller-app-id': 'admin', 'dapr-caller-namespace': 'kube-system' },
      body: '{"order":42}',
    });
    assert.equal(res.status, 200, res.body);
    const echo = res.json<Echo>();
    assert.equal(echo.instance, 'host3');
    assert.equal(echo.method, 'POST');
    assert.equal(echo.url, '/orders/42?expand=items');
    assert.equal(echo.bodySize, '{"order":42}'.length);
    assert.equal(echo.headers['dapr-caller-app-id'], 'alpha');
    assert.equal(echo.headers['dapr-caller-namespace'], 'shop');
    assert.equal(echo.headers['dapr-callee-app-id'], 'beta');
    assert.equal(occurrences(echo, 'dapr-caller-app-id'), 1);
    assert.equal(occurrences(echo, 'dapr-caller-namespace'), 1);
  });

  it('calls the other way, from host 3 to the app on host 2', async function () {
    const res = await requestFrom(harness, host3.netns, beta.url, { path: '/v1.0/invoke/alpha/method/status-check', headers: { 'dapr-caller-app-id': 'alpha' } });
    assert.equal(res.status, 200, res.body);
    const echo = res.json<Echo>();
    assert.equal(echo.instance, 'host2');
    assert.equal(echo.url, '/status-check');
    assert.equal(echo.headers['dapr-caller-app-id'], 'beta');
    assert.equal(echo.headers['dapr-caller-namespace'], 'shop');
    assert.equal(echo.headers['dapr-callee-app-id'], 'alpha');
    assert.equal(occurrences(echo, 'dapr-caller-app-id'), 1);
  });

  it('advertises each sidecar in discovery at its own host address, not loopback', function () {
    assert.equal(alphaSawBeta['address'], `${host3.address}:${beta.internalPort}`);
    assert.equal(betaSawAlpha['address'], `${host2.address}:${alpha.internalPort}`);
  });

  it('leaves host 2 no way to host 3\'s app but through the sidecars', async function () {
    // The app listens, but on host 3's loopback only ...
    assert.equal(await connectFrom(harness, host3.netns, '127.0.0.1', betaApp.port), 'connected');
    assert.equal(await connectFrom(harness, host2.netns, host3.address, betaApp.port), 'ECONNREFUSED');
    // ... while the path between the hosts is open to host 3's sidecar, so the refusal is the app's bind address.
    assert.equal(await connectFrom(harness, host2.netns, host3.address, beta.internalPort), 'connected');
  });
});
