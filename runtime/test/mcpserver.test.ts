import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '@skein/core';
import { compileSidecarConfig } from '../src/config/compile.js';
import { loadResourceFile, loadResources } from '../src/config/load.js';
import type { MCPServerResource } from '../src/config/types.js';
import { SecretStores } from '../src/secrets/secret-stores.js';
import { compileMcpServerTarget } from '../src/mcp/mcpserver/mcp-server-spec.js';
import { MAX_TOOL_PAGES, MAX_TOOL_SCHEMA_BYTES, MAX_TOOLS, ToolDiscoveryLimitError, checkToolSchemaSize, collectTools, type ToolPage } from '../src/mcp/mcpserver/tool-discovery.js';
import { FirstByteTimeoutError, firstByteTimeoutFetch } from '../src/mcp-servers/first-byte-fetch.js';

const SAMPLES = fileURLToPath(new URL('../../../samples/policies/mcpserver/', import.meta.url));

describe('MCPServer resources', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'skein-mcpserver-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, text: string): string => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };
  const refused = (text: string, path: string, reason: RegExp): void => {
    const file = write('server.yaml', text);
    assert.throws(() => loadResourceFile(file), (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.equal(error.location?.file, file);
      assert.equal(error.location?.path, path);
      assert.match(error.message, reason);
      return true;
    });
  };
  const server = (endpoint: string, extra = ''): string => `apiVersion: dapr.io/v1alpha1\nkind: MCPServer\nmetadata:\n  name: tools\nspec:\n  endpoint:\n${endpoint}${extra}`;

  describe('schema', () => {
    it("loads every sample of the seed's MCPServer pages unchanged", () => {
      const files = readdirSync(SAMPLES).filter((name) => name.endsWith('.yaml'));
      assert.ok(files.length >= 10);
      for (const name of files) {
        const [loaded] = loadResourceFile(join(SAMPLES, name));
        assert.equal(loaded?.kind, 'MCPServer', name);
      }
      const [optional] = loadResourceFile(join(SAMPLES, 'optional-mcp.yaml'));
      assert.equal(optional?.kind === 'MCPServer' && optional.value.spec.ignoreErrors, true);
      const [oauth] = loadResourceFile(join(SAMPLES, 'oauth2.yaml'));
      assert.equal(oauth?.kind === 'MCPServer' && oauth.value.spec.endpoint.streamableHTTP?.auth?.oauth2?.secretKeyRef?.key, 'clientSecret');
    });

    it('needs exactly one transport under spec.endpoint', () => {
      refused(server('    streamableHTTP: { url: http://a/mcp }\n    sse: { url: http://a/sse }\n'), '/spec/endpoint', /needs exactly one of "streamableHTTP", "sse", "stdio"/);
      refused(server('    {}\n'), '/spec/endpoint', /needs exactly one of "streamableHTTP", "sse", "stdio"/);
    });

    it('refuses mutate on beforeListTools, naming the hook', () => {
      refused(
        server('    streamableHTTP: { url: http://a/mcp }\n', '  middleware:\n    beforeListTools:\n      - workflow: { workflowName: audit }\n      - workflow: { workflowName: filter }\n        mutate: true\n'),
        '/spec/middleware/beforeListTools/1/mutate',
        /mutate is not supported on beforeListTools/,
      );
      // afterListTools may mutate.
      const file = write('ok.yaml', server('    streamableHTTP: { url: http://a/mcp }\n', '  middleware:\n    afterListTools:\n      - workflow: { workflowName: filter, appID: policy-service }\n        mutate: true\n'));
      assert.equal(loadResourceFile(file).length, 1);
    });

    it('refuses a header with no value, or with two kinds of value', () => {
      refused(server('    streamableHTTP:\n      url: http://a/mcp\n      headers: [{ name: X-Key }]\n'), '/spec/endpoint/streamableHTTP/headers/0', /needs exactly one of "value", "secretKeyRef", "envRef"/);
      refused(server('    streamableHTTP:\n      url: http://a/mcp\n      headers: [{ name: X-Key, value: a, envRef: KEY }]\n'), '/spec/endpoint/streamableHTTP/headers/0', /needs exactly one of "value", "secretKeyRef", "envRef"/);
      refused(server('    sse:\n      url: http://a/sse\n      headers: [{ name: X-Key, secretKeyRef: { key: k } }]\n'), '/spec/endpoint/sse/headers/0/secretKeyRef', /name/);
    });

    it('refuses a URL that is not http(s), and an unknown field', () => {
      refused(server('    streamableHTTP: { url: ftp://a/mcp }\n'), '/spec/endpoint/streamableHTTP/url', /.+/);
      refused(server('    streamableHTTP: { url: http://a/mcp, tokenURL: http://a/token }\n'), '/spec/endpoint/streamableHTTP/tokenURL', /.+/);
    });
  });

  describe('compile', () => {
    it('keeps only the MCPServers scoped to the app', () => {
      const resources = loadResources([join(SAMPLES, 'scoped.yaml'), join(SAMPLES, 'my-mcp-server.yaml')]);
      const names = (appId: string): string[] => compileSidecarConfig({ appId, namespace: 'default', resources, env: {} }).mcpServers.map((entry) => entry.resource.metadata.name);
      assert.deepEqual(names('agent-app-1'), ['payments-mcp', 'my-mcp-server']);
      assert.deepEqual(names('other'), ['my-mcp-server']);
    });

    it('resolves headers from a value, a secret store and the environment', () => {
      const secrets = write('secrets.json', JSON.stringify({ 'mcp-token': { token: 's3cret' } }));
      const store = write('store.yaml', `apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: { name: local }\nspec:\n  type: secretstores.local.file\n  version: v1\n  metadata:\n    - { name: secretsFile, value: ${secrets} }\n    - { name: multiValued, value: "true" }\n`);
      const file = write('server.yaml', server('    streamableHTTP:\n      url: http://127.0.0.1:9/mcp\n      timeout: 2s\n      auth: { secretStore: local }\n      headers:\n        - { name: X-Plain, value: 1 }\n        - { name: Authorization, secretKeyRef: { name: mcp-token, key: token } }\n        - { name: X-Env, envRef: MCP_KEY }\n'));
      const config = compileSidecarConfig({ appId: 'agent', namespace: 'default', resources: loadResources([store, file]), env: {} });
      const [entry] = config.mcpServers;
      assert.ok(entry);
      const target = compileMcpServerTarget(entry.resource, entry.file, { stores: config.secretStores, env: { MCP_KEY: 'from-env' } });
      assert.deepEqual(target.headers, [['X-Plain', '1'], ['Authorization', 's3cret'], ['X-Env', 'from-env']]);
      assert.equal(target.requestTimeoutMs, 2000);
      assert.throws(() => compileMcpServerTarget(entry.resource, entry.file, { stores: config.secretStores, env: {} }), /\/headers\/2\/envRef: environment variable MCP_KEY is not set/);
      assert.throws(() => compileMcpServerTarget(entry.resource, entry.file, { stores: new SecretStores(new Map()), env: { MCP_KEY: 'x' } }), /headers\/1\/secretKeyRef: .*secret store "local" is not loaded/);
    });

    it('says what is not supported yet: stdio, oauth2 and spiffe', () => {
      for (const [name, reason] of [['local-tools.yaml', /stdio transport is not supported yet/], ['oauth2.yaml', /auth.oauth2 is not supported yet/], ['spiffe.yaml', /auth.spiffe is not supported yet/]] as const) {
        const [loaded] = loadResourceFile(join(SAMPLES, name));
        assert.throws(() => compileMcpServerTarget(loaded?.value as MCPServerResource, name, { stores: new SecretStores(new Map()) }), reason);
      }
    });
  });

  describe('tool discovery bounds', () => {
    const tool = (name: string, inputSchema: unknown = { type: 'object' }): { name: string; inputSchema: unknown } => ({ name, inputSchema });

    it('reads every page until one has no cursor', async () => {
      const cursors: Array<string | undefined> = [];
      const tools = await collectTools(async (cursor) => {
        cursors.push(cursor);
        const page = Number(cursor ?? 0);
        return page < 2 ? { tools: [tool(`t${page}`)], nextCursor: String(page + 1) } : { tools: [tool('last')] };
      });
      assert.deepEqual(cursors, [undefined, '1', '2']);
      assert.deepEqual(tools.map((t) => t.name), ['t0', 't1', 'last']);
    });

    it(`refuses a server that needs more than ${MAX_TOOL_PAGES} pages`, async () => {
      let pages = 0;
      const endless = async (): Promise<ToolPage> => {
        pages++;
        return { tools: [], nextCursor: 'more' };
      };
      await assert.rejects(collectTools(endless), (error: unknown) => error instanceof ToolDiscoveryLimitError && /more than 500 pages/.test(error.message));
      assert.equal(pages, MAX_TOOL_PAGES);
      // Exactly the limit is fine.
      let left = MAX_TOOL_PAGES;
      assert.deepEqual(await collectTools(async () => (--left > 0 ? { tools: [], nextCursor: 'x' } : { tools: [] })), []);
    });

    it(`refuses more than ${MAX_TOOLS} tools`, async () => {
      const many = Array.from({ length: MAX_TOOLS }, (_, index) => tool(`t${index}`));
      assert.equal((await collectTools(async () => ({ tools: many }))).length, MAX_TOOLS);
      await assert.rejects(collectTools(async (cursor) => (cursor ? { tools: [tool('one-more')] } : { tools: many, nextCursor: 'next' })), /more than 500 tools/);
    });

    it('refuses an input schema over 1 MiB, naming the tool', async () => {
      const big = { type: 'object', description: 'x'.repeat(MAX_TOOL_SCHEMA_BYTES) };
      assert.throws(() => checkToolSchemaSize(tool('huge', big)), /input schema of tool "huge" is \d+ bytes, larger than the limit of 1048576 bytes/);
      checkToolSchemaSize(tool('small'));
      await assert.rejects(collectTools(async () => ({ tools: [tool('ok'), tool('huge', big)] })), /tool "huge"/);
    });
  });

  describe('first-byte timeout', () => {
    it('aborts a request whose headers do not arrive in time, and leaves answered ones alone', async () => {
      const silent = (_url: string | URL, init?: RequestInit): Promise<Response> =>
        new Promise((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(new Error('aborted'))));
      await assert.rejects(firstByteTimeoutFetch(silent as typeof fetch, 20)('http://127.0.0.1:9/mcp'), (error: unknown) => error instanceof FirstByteTimeoutError && /within 20 ms/.test(error.message));
      const answered = firstByteTimeoutFetch(async () => new Response('ok'), 20);
      assert.equal(await (await answered('http://127.0.0.1:9/mcp')).text(), 'ok');
    });
  });
});
