import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Harness, TEST_APPS } from '../src/harness.js';
import { httpRequest } from '../src/http.js';
import { freePort } from '../src/ports.js';

// Long random values, so finding one cannot be a coincidence.
const API_KEY = 'partner-api-key-7d2e9b4c1a6f';

describe('skein run: the app\'s environment', function () {
  const harness = new Harness();
  after(() => harness.cleanup());

  it('keeps the join token and envRef secrets with the sidecar; the app still gets DAPR_HTTP_PORT and APP_ID', async function () {
    await Promise.all([harness.nats(), harness.sentry(['--mode', 'production'])]);
    const token = harness.skein('token', ['token', '--app-id', 'env-check', '--namespace', 'default', '--ttl', '5m']);
    assert.equal((await token.exited).code, 0);
    const jwt = token.lines[0] ?? '';
    assert.match(jwt, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const resources = join(harness.root, 'env-resources');
    mkdirSync(resources, { recursive: true });
    writeFileSync(
      join(resources, 'partner.yaml'),
      ['apiVersion: dapr.io/v1alpha1', 'kind: HTTPEndpoint', 'metadata:', '  name: partner', 'spec:', '  baseUrl: http://127.0.0.1:9', '  headers:', '  - name: X-Api-Key', '    envRef: PARTNER_API_KEY', ''].join('\n'),
    );
    const port = await freePort();
    // The sidecar can only join the production sentry with the token it reads from SKEIN_JOIN_TOKEN.
    const sidecar = await harness.sidecar({
      appId: 'env-check',
      appPort: port,
      args: ['--resources-path', resources],
      command: [process.execPath, join(TEST_APPS, 'echo-app.js')],
      env: { PORT: String(port), SKEIN_JOIN_TOKEN: jwt, PARTNER_API_KEY: API_KEY, UNRELATED_SETTING: 'kept' },
    });
    const names = ['SKEIN_JOIN_TOKEN', 'SKEIN_HOME', 'PARTNER_API_KEY', 'UNRELATED_SETTING', 'DAPR_HTTP_PORT', 'APP_ID'];
    const seen = (await httpRequest(`http://127.0.0.1:${port}/_env?names=${names.join(',')}`)).json<Record<string, string | null>>();
    assert.deepEqual(seen, {
      SKEIN_JOIN_TOKEN: null,
      SKEIN_HOME: null,
      PARTNER_API_KEY: null,
      UNRELATED_SETTING: 'kept',
      DAPR_HTTP_PORT: String(sidecar.httpPort),
      APP_ID: 'env-check',
    });
    assert.ok(!JSON.stringify(seen).includes(jwt) && !JSON.stringify(seen).includes(API_KEY));
  });
});
