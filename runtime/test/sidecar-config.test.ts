import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileSidecarConfig, loadSidecarConfig, type CompiledSidecarConfig } from '../src/config/compile.js';
import { loadResources } from '../src/config/load.js';
import { configError } from './config-error.js';

const DAPR = 'dapr.io/v1alpha1';


/** Where a resource applies: `metadata.namespace` and `scopes`, as Dapr writes them. */
interface Placement {
  namespace?: string;
  scopes?: string[];
}

const where = (name: string, placement: Placement): { metadata: { name: string; namespace?: string }; scopes?: string[] } => ({
  metadata: { name, ...(placement.namespace ? { namespace: placement.namespace } : {}) },
  ...(placement.scopes ? { scopes: placement.scopes } : {}),
});

const bearer = (name: string, audience: string, placement: Placement = {}): object => ({
  apiVersion: DAPR,
  kind: 'Component',
  ...where(name, placement),
  spec: {
    type: 'middleware.http.bearer',
    version: 'v1',
    metadata: [
      { name: 'issuer', value: 'http://127.0.0.1:1' },
      { name: 'audience', value: audience },
      { name: 'jwksURL', value: 'http://127.0.0.1:1/jwks.json' },
    ],
  },
});
const endpoint = (name: string, placement: Placement = {}): object => ({ apiVersion: DAPR, kind: 'HTTPEndpoint', ...where(name, placement), spec: { baseUrl: 'http://127.0.0.1:1' } });
const toolPolicy = (name: string, placement: Placement = {}): object => ({ apiVersion: 'skein.dev/v1alpha1', kind: 'MCPToolPolicy', ...where(name, placement), spec: { defaultAction: 'deny', rules: [{ name: 'list', action: 'allow', methods: ['tools/list'] }] } });
const resiliency = (name: string, placement: Placement = {}, timeout = 'quick'): object => ({
  apiVersion: DAPR,
  kind: 'Resiliency',
  ...where(name, placement),
  spec: { policies: { timeouts: { [timeout]: '1s' } } },
});
const secretStore = (name: string, secretsFile: string, placement: Placement = {}): object => ({
  apiVersion: DAPR,
  kind: 'Component',
  ...where(name, placement),
  spec: { type: 'secretstores.local.file', version: 'v1', metadata: [{ name: 'secretsFile', value: secretsFile }] },
});
const configuration = (handlers: string[], placement: Placement = {}): object => ({
  apiVersion: DAPR,
  kind: 'Configuration',
  ...where('config', placement),
  spec: { appHttpPipeline: { handlers: handlers.map((name) => ({ name, type: 'middleware.http.bearer' })) } },
});

describe('compileSidecarConfig: one compile of every resource', function () {
  let dir: string;
  let folder: string;
  let files = 0;
  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), 'skein-sidecar-config-'));
    folder = join(dir, 'resources');
    mkdirSync(folder);
    files = 0;
  });
  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  /** Writes resources into the resources folder, one file each, in the order given (file names sort that way). */
  const write = (...resources: object[]): void => {
    for (const resource of resources) writeFileSync(join(folder, `${String(++files).padStart(3, '0')}.yaml`), JSON.stringify(resource));
  };
  const writeConfig = (resource: object): string => {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, JSON.stringify(resource));
    return file;
  };
  const compile = (appId = 'mcp-server', namespace = 'default', configFile?: string): CompiledSidecarConfig =>
    loadSidecarConfig({ appId, namespace }, { configFile, resourcePaths: [folder] }, {});

  describe('scoping', function () {
    it('Components: uses the one scoped to the app and namespace, and ignores the rest even when they share its name', function () {
      write(bearer('auth', 'for-this-app', { scopes: ['mcp-server'] }), bearer('auth', 'for-another-app', { scopes: ['other-app'] }), bearer('auth', 'in-prod', { namespace: 'prod' }));
      const audiences = (config: CompiledSidecarConfig): string[] => config.inbound.bearers.map((entry) => entry.validator.options.audience);
      const config = compile('mcp-server', 'default', writeConfig(configuration(['auth'])));
      assert.deepEqual(audiences(config), ['for-this-app']);
      assert.deepEqual(config.components.map((component) => component.name), ['auth']);
      assert.deepEqual(audiences(compile('other-app', 'default', writeConfig(configuration(['auth'])))), ['for-another-app']);
      assert.deepEqual(audiences(compile('anyone', 'prod', writeConfig(configuration(['auth'])))), ['in-prod']);
    });

    it('Components: an appHttpPipeline handler naming a Component scoped elsewhere is refused, not skipped', function () {
      write(bearer('auth', 'for-another-app', { scopes: ['other-app'] }), bearer('prod-auth', 'in-prod', { namespace: 'prod' }));
      const configFile = writeConfig(configuration(['auth']));
      const error = configError(() => compile('mcp-server', 'default', configFile));
      assert.deepEqual(error.location, { file: configFile, path: '/spec/appHttpPipeline/handlers/0/name' });
      assert.match(error.message, /Component "auth" is not scoped to app mcp-server in namespace default/);
      assert.match(configError(() => compile('mcp-server', 'default', writeConfig(configuration(['prod-auth'])))).message, /Component "prod-auth" is not scoped to app mcp-server in namespace default/);
      assert.deepEqual(compile('mcp-server').components, [], 'neither is loaded by mcp-server');
    });

    it('Components: secret stores are loaded only where they are in scope', function () {
      const secrets = join(dir, 'secrets.json');
      writeFileSync(secrets, JSON.stringify({ token: 'unit-test-value' }));
      write(secretStore('mine', secrets, { scopes: ['mcp-server'] }), secretStore('theirs', join(dir, 'missing.json'), { scopes: ['other-app'] }), secretStore('prod', join(dir, 'missing.json'), { namespace: 'prod' }));
      assert.deepEqual(compile('mcp-server').secretStores.names, ['mine']);
      assert.deepEqual(compile('mcp-server').components.map((component) => component.name), ['mine']);
    });

    it('HTTPEndpoints: by namespace and scopes', function () {
      write(endpoint('everyone'), endpoint('mine', { scopes: ['agent'] }), endpoint('theirs', { scopes: ['other-app'] }), endpoint('prod', { namespace: 'prod' }), endpoint('here', { namespace: 'default' }));
      assert.deepEqual([...compile('agent').outbound.endpoints.keys()].sort(), ['everyone', 'here', 'mine']);
      assert.deepEqual([...compile('agent', 'prod').outbound.endpoints.keys()].sort(), ['everyone', 'mine', 'prod']);
    });

    it('MCPToolPolicy: metadata.namespace is honoured as well as scopes', function () {
      write(toolPolicy('prod-only', { namespace: 'prod' }));
      assert.equal(compile('mcp-server').inbound.toolPolicy, undefined, 'a policy of another namespace does not apply');
      assert.equal(compile('mcp-server', 'prod').inbound.toolPolicy?.name, 'prod-only');
      write(toolPolicy('for-other-app', { scopes: ['other-app'] }));
      assert.equal(compile('mcp-server').inbound.toolPolicy, undefined, 'a policy scoped to another app does not apply');
      assert.equal(compile('other-app').inbound.toolPolicy?.name, 'for-other-app');
      write(toolPolicy('mine', { namespace: 'default', scopes: ['mcp-server'] }));
      assert.equal(compile('mcp-server').inbound.toolPolicy?.name, 'mine');
    });

    it('Resiliency: by namespace and scopes', function () {
      write(resiliency('everyone', {}, 'a'), resiliency('mine', { scopes: ['agent'] }, 'b'), resiliency('theirs', { scopes: ['other-app'] }, 'c'), resiliency('prod', { namespace: 'prod' }, 'd'));
      assert.deepEqual(compile('agent').resiliency?.resources, ['everyone', 'mine']);
      assert.deepEqual(compile('other-app', 'prod').resiliency?.resources, ['everyone', 'theirs', 'prod']);
    });

    it('Configuration: one given with --config but scoped elsewhere is refused, since the app would run without its access control', function () {
      const inProd = writeConfig(configuration([], { namespace: 'prod' }));
      assert.deepEqual(configError(() => compile('mcp-server', 'default', inProd)).location, { file: inProd, path: '/metadata/namespace' });
      const forOther = writeConfig(configuration([], { scopes: ['other-app'] }));
      const error = configError(() => compile('mcp-server', 'default', forOther));
      assert.deepEqual(error.location, { file: forOther, path: '/scopes' });
      assert.match(error.message, /Configuration "config" does not apply to app mcp-server in namespace default/);
      assert.equal(compile('other-app', 'default', forOther).inbound.accessControl?.configured ?? false, false);
    });

    it('Configurations inside a resources folder are not this sidecar\'s and are neither used nor counted as duplicates', function () {
      write(configuration(['nothing-loaded']), configuration(['nothing-loaded']));
      assert.deepEqual(compile().inbound.bearers, []);
    });
  });

  describe('duplicates', function () {
    const cases: Array<[string, () => object]> = [
      ['Component', () => bearer('auth', 'a')],
      ['HTTPEndpoint', () => endpoint('remote')],
      ['MCPToolPolicy', () => toolPolicy('policy')],
      ['Resiliency', () => resiliency('policies', {}, `t${files}`)],
    ];
    for (const [kind, make] of cases) {
      it(`${kind}: two of one name in scope are refused, naming both files`, function () {
        write(make(), make());
        const error = configError(() => compile());
        const name = (make() as { metadata: { name: string } }).metadata.name;
        assert.deepEqual(error.location, { file: join(folder, '002.yaml'), path: '/metadata/name' });
        assert.match(error.message, new RegExp(`an? ${kind} named "${name}" is already loaded from .*001\\.yaml`));
      });

      it(`${kind}: the same name is fine when only one of them is in scope`, function () {
        const [first, second] = [make(), make()] as Array<Record<string, unknown>>;
        write({ ...first, scopes: ['other-app'] }, second as object);
        compile();
        write({ ...(make() as Record<string, unknown>), metadata: { ...(make() as { metadata: object }).metadata, namespace: 'prod' } });
        compile();
      });
    }

    it('one name may be used by resources of different kinds', function () {
      write(bearer('shared', 'a'), endpoint('shared'), toolPolicy('shared'), resiliency('shared'));
      const config = compile();
      assert.deepEqual(config.components.map((component) => component.name), ['shared']);
      assert.deepEqual([...config.outbound.endpoints.keys()], ['shared']);
      assert.equal(config.inbound.toolPolicy?.name, 'shared');
      assert.deepEqual(config.resiliency?.resources, ['shared']);
    });
  });

  describe('component metadata, checked against the schema of the Component type', function () {
    const component = (type: string, metadata: object[]): object => ({ apiVersion: DAPR, kind: 'Component', metadata: { name: 'c' }, spec: { type, version: 'v1', metadata } });
    const cases: Array<[string, object, string, RegExp]> = [
      ['an unknown setting', component('middleware.http.bearer', [{ name: 'issuer', value: 'https://a' }, { name: 'audience', value: 'b' }, { name: 'jwksUri', value: 'https://a/j' }]), '/spec/metadata/2/name', /unknown metadata "jwksUri" for middleware\.http\.bearer \(known: issuer, issuerURL, audience, clientID, jwksURL,/],
      ['a missing required setting', component('middleware.http.bearer', [{ name: 'issuer', value: 'https://a' }]), '/spec/metadata', /missing required metadata "audience" \(or "clientID"\)/],
      ['no settings at all', { apiVersion: DAPR, kind: 'Component', metadata: { name: 'c' }, spec: { type: 'middleware.http.oauth2clientcredentials', version: 'v1' } }, '/spec', /middleware\.http\.oauth2clientcredentials needs spec\.metadata/],
      ['a value of the wrong shape', component('middleware.http.bearer', [{ name: 'issuer', value: 'https://a' }, { name: 'audience', value: 'b' }, { name: 'clockSkew', value: 'a minute' }]), '/spec/metadata/2/value', /"a minute" is not valid here: expected a Go-style duration/],
      ['an enumerated value out of range', component('middleware.http.oauth2clientcredentials', [{ name: 'clientId', value: 'a' }, { name: 'clientSecret', value: 'b' }, { name: 'tokenURL', value: 'https://a/t' }, { name: 'authStyle', value: '3' }]), '/spec/metadata/3/value', /"3" is not valid here: expected 0 \(auto-detect\)/],
      ['a secret store setting read from elsewhere', component('secretstores.local.file', [{ name: 'secretsFile', envRef: 'SECRETS_FILE' }]), '/spec/metadata/0', /secretstores\.local\.file metadata "secretsFile" needs a plain value/],
      ['a missing secrets file setting', component('secretstores.local.file', [{ name: 'nestedSeparator', value: '.' }]), '/spec/metadata', /missing required metadata "secretsFile"/],
    ];
    for (const [what, resource, path, reason] of cases) {
      it(`refuses ${what}, naming file, JSON path and reason`, function () {
        write(resource);
        const error = configError(() => compile());
        assert.deepEqual(error.location, { file: join(folder, '001.yaml'), path });
        assert.match(error.message, reason);
        assert.ok(error.message.startsWith(`${join(folder, '001.yaml')}: ${path}: `), error.message);
      });
    }

    it('checks Components scoped to other apps too: the same files serve every app, and an editor shows the same error', function () {
      write({ ...(component('middleware.http.bearer', [{ name: 'issuer', value: 'https://a' }]) as Record<string, unknown>), scopes: ['other-app'] });
      assert.match(configError(() => compile()).message, /missing required metadata "audience"/);
    });

    it('accepts Dapr\'s older names and references to secrets and the environment', function () {
      write(component('middleware.http.bearer', [{ name: 'issuerURL', envRef: 'ISSUER' }, { name: 'clientID', secretKeyRef: { name: 'aud' } }]));
      assert.equal(loadResources([folder]).length, 1);
    });
  });

  describe('Component types Skein does not run', function () {
    it('refuses middleware.http.opa at load, even when nothing uses it, naming MCPToolPolicy as the alternative', function () {
      write({ apiVersion: DAPR, kind: 'Component', metadata: { name: 'opa' }, scopes: ['other-app'], spec: { type: 'middleware.http.opa', version: 'v1', metadata: [{ name: 'rego', value: 'package http' }] } });
      const error = configError(() => compile());
      assert.deepEqual(error.location, { file: join(folder, '001.yaml'), path: '/spec/type' });
      assert.match(error.message, /Component type middleware\.http\.opa is not supported by Skein; use an MCPToolPolicy resource .* \(supported: middleware\.http\.bearer, middleware\.http\.oauth2clientcredentials, secretstores\.local\.file\)/);
    });

    it('names the alternative of other Dapr types too', function () {
      write({ apiVersion: DAPR, kind: 'Component', metadata: { name: 'code-flow' }, spec: { type: 'middleware.http.oauth2', version: 'v1' } });
      assert.match(configError(() => compile()).message, /middleware\.http\.oauth2 is not supported by Skein; use middleware\.http\.oauth2clientcredentials/);
    });

    it('refuses a secret store other than the local file, naming it', function () {
      write({ apiVersion: DAPR, kind: 'Component', metadata: { name: 'vault' }, spec: { type: 'secretstores.hashicorp.vault', version: 'v1' } });
      assert.match(configError(() => compile()).message, /secretstores\.hashicorp\.vault is not supported by Skein; use secretstores\.local\.file/);
    });
  });

  describe('the compiled value', function () {
    it('is frozen and carries everything the Sidecar needs', function () {
      write(bearer('auth', 'a'), endpoint('remote'), { ...(resiliency('r') as Record<string, unknown>) });
      const config = compileSidecarConfig({
        appId: 'mcp-server',
        namespace: 'default',
        configuration: { resource: { apiVersion: DAPR, kind: 'Configuration', metadata: { name: 'c' }, spec: { tracing: { samplingRate: '0.5' }, features: [{ name: 'a', enabled: true }, { name: 'b', enabled: false }] } }, file: 'c.yaml' },
        resources: loadResources([folder]),
        env: {},
      });
      assert.ok(Object.isFrozen(config));
      assert.ok(Object.isFrozen(config.inbound));
      assert.ok(Object.isFrozen(config.outbound));
      assert.deepEqual(config.features, ['a']);
      assert.equal(config.tracing.samplingRate, 0.5);
      assert.deepEqual(config.resiliency?.resources, ['r']);
    });

    it('lists the environment variables the resources read, so the app does not get them', function () {
      write({ ...(bearer('auth', 'a') as Record<string, unknown>), spec: { type: 'middleware.http.bearer', version: 'v1', metadata: [{ name: 'issuer', value: 'http://127.0.0.1:1' }, { name: 'audience', envRef: 'AUDIENCE' }] } });
      assert.deepEqual(compile().envRefNames, ['AUDIENCE']);
    });
  });
});
