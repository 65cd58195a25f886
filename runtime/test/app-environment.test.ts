import assert from 'node:assert/strict';
import { appEnvironment, envRefNames } from '../src/cli/app-environment.js';

describe('the app\'s environment under skein run', () => {
  it('collects every envRef of the loaded resources, at any depth', () => {
    const resources = [
      { kind: 'Component', spec: { type: 'middleware.http.oauth2clientcredentials', metadata: [{ name: 'clientSecret', envRef: 'OAUTH_SECRET' }, { name: 'clientId', value: 'id' }] } },
      { kind: 'HTTPEndpoint', spec: { baseUrl: 'https://api', headers: [{ name: 'Authorization', envRef: 'API_KEY' }] } },
      undefined,
      { kind: 'Configuration', spec: { nested: { deeper: [{ envRef: 'DEEP' }] } } },
    ];
    assert.deepEqual([...envRefNames(resources)].sort(), ['API_KEY', 'DEEP', 'OAUTH_SECRET']);
  });

  it('drops SKEIN_* variables and envRef secrets, keeps the rest, and adds the Dapr variables', () => {
    const parent: NodeJS.ProcessEnv = { PATH: '/bin', HOME: '/home/a', SKEIN_JOIN_TOKEN: 'jwt', SKEIN_HOME: '/h', skein_log: 'debug', API_KEY: 'secret', OAUTH_SECRET: 's2', APP_ID: 'forged' };
    const env = appEnvironment(parent, new Set(['API_KEY', 'OAUTH_SECRET']), { APP_ID: 'orders', DAPR_HTTP_PORT: '3500' });
    assert.deepEqual(env, { PATH: '/bin', HOME: '/home/a', APP_ID: 'orders', DAPR_HTTP_PORT: '3500' });
    assert.equal(parent['SKEIN_JOIN_TOKEN'], 'jwt', 'the sidecar keeps its own environment');
  });
});
