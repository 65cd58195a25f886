import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Harness, type SidecarHandle } from '../src/harness.js';
import { httpRequest } from '../src/http.js';
import { TestIssuer } from '../src/issuer.js';

/** A `middleware.http.bearer` Component named `auth`, for tokens with audience `audience`, scoped to `scopes`. */
function bearerComponent(issuer: string, audience: string, scopes: string[]): string {
  return [
    'apiVersion: dapr.io/v1alpha1',
    'kind: Component',
    'metadata:',
    '  name: auth',
    `scopes: [${scopes.join(', ')}]`,
    'spec:',
    '  type: middleware.http.bearer',
    '  version: v1',
    '  metadata:',
    '  - name: issuer',
    `    value: "${issuer}"`,
    '  - name: audience',
    `    value: ${audience}`,
    '  - name: jwksURL',
    `    value: "${issuer}/jwks.json"`,
    '',
  ].join('\n');
}

const CONFIG = 'apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: bearer-pipeline\nspec:\n  appHttpPipeline:\n    handlers:\n    - name: auth\n      type: middleware.http.bearer\n';

describe('Component scopes on inbound middleware: only the bearer Component scoped to this app is applied', function () {
  const harness = new Harness();
  let issuer: TestIssuer;
  const sign = (audience: string): Promise<string> => issuer.sign({ sub: 'alice' }, { audience });
  let caller: SidecarHandle;
  let configFile: string;
  let resources: string;
  after(async () => {
    await issuer?.close();
    await harness.cleanup();
  });

  before(async function () {
    issuer = await TestIssuer.start();

    await harness.controlPlane();
    configFile = join(harness.dir('scopes-config'), 'config.yaml');
    writeFileSync(configFile, CONFIG);
    // One folder for every app, as in Dapr: two Components named `auth`, each scoped to one app. The one for the
    // other app sorts last, so a sidecar that ignored scopes would end up with it.
    resources = harness.dir('scopes-resources');
    writeFileSync(join(resources, 'a-auth-scoped-echo.yaml'), bearerComponent(issuer.url, 'echo-api', ['scoped-echo']));
    writeFileSync(join(resources, 'b-auth-other-app.yaml'), bearerComponent(issuer.url, 'other-api', ['other-app']));
    const echo = await harness.app('echo-app');
    await harness.sidecar({ appId: 'scoped-echo', appPort: echo.port, args: ['--config', configFile, '--resources-path', resources] });
    caller = await harness.sidecar({ appId: 'agent' });
  });

  const call = async (authorization?: string): Promise<number> => {
    const res = await httpRequest(`${caller.url}/v1.0/invoke/scoped-echo/method/anything`, { headers: authorization ? { authorization } : {} });
    return res.status;
  };

  it('applies the Component scoped to this app: a token for its audience passes, no token is refused', async function () {
    assert.equal(await call(`Bearer ${await sign('echo-api')}`), 200);
    assert.equal(await call(), 401);
  });

  it('does not apply the Component scoped to another app: a token for that audience is refused', async function () {
    assert.equal(await call(`Bearer ${await sign('other-api')}`), 401);
  });

  it('refuses to start a sidecar whose pipeline names only a Component scoped to another app, naming file, path and reason', async function () {
    const proc = harness.skein('bystander', ['run', '--app-id', 'bystander', '--trust-anchors-file', harness.trustBundle, '--config', configFile, '--resources-path', resources]);
    const { code } = await proc.exited;
    const output = proc.output();
    assert.equal(code, 1, output);
    assert.match(output, /config\.yaml: \/spec\/appHttpPipeline\/handlers\/0\/name: Component "auth" is not scoped to app bystander in namespace default/);
  });
});
