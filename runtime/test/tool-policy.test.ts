import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadResourceFile } from '../src/config/load.js';
import type { MCPToolPolicyResource, MCPToolPolicyRule } from '../src/config/types.js';
import { compileToolPolicy, evaluateToolPolicy, filterToolsList, filterToolsListResponse, scopesOf, toolPolicyAppliesTo, type CompiledToolPolicy } from '../src/policy/tool-policy.js';
import { configError } from './config-error.js';

const SAMPLE = fileURLToPath(new URL('../../../samples/policies/inventory-tools.yaml', import.meta.url));
const TOOLS = ['get_inventory', 'get_schema', 'update_stock', 'drop_table'] as const;

function policy(rules: MCPToolPolicyRule[], defaultAction?: 'allow' | 'deny'): MCPToolPolicyResource {
  return { apiVersion: 'skein.dev/v1alpha1', kind: 'MCPToolPolicy', metadata: { name: 'test' }, spec: { rules, ...(defaultAction ? { defaultAction } : {}) } };
}


function loadSample(): CompiledToolPolicy {
  const [loaded] = loadResourceFile(SAMPLE);
  assert.ok(loaded);
  assert.equal(loaded.kind, 'MCPToolPolicy');
  return compileToolPolicy(loaded.value, loaded.file, { target: 'mcp-server' });
}

describe('MCP tool policy (MCPToolPolicy)', () => {
  describe("the seed's OPA example, as samples/policies/inventory-tools.yaml", () => {
    const compiled = loadSample();
    const allowedTools: Record<string, readonly string[]> = {
      'analyst-agent': ['get_inventory', 'get_schema'],
      'ops-agent': ['get_inventory', 'get_schema', 'update_stock'],
      'admin-agent': ['get_inventory', 'get_schema', 'update_stock', 'drop_table'],
      'unknown-agent': [],
    };

    for (const [agent, mayCall] of Object.entries(allowedTools)) {
      for (const tool of TOOLS) {
        const expected = mayCall.includes(tool);
        it(`${agent} ${expected ? 'may' : 'may not'} call ${tool}`, () => {
          const made = evaluateToolPolicy(compiled, { callerAppId: agent, method: 'tools/call', toolName: tool, arguments: {} });
          assert.equal(made.allowed, expected);
          assert.equal(made.source, 'tool-policy');
          assert.equal(made.tool, tool);
          assert.equal(made.method, 'tools/call');
          assert.equal(made.target, 'mcp-server');
          assert.equal(made.rule, expected ? `${agent}-tools` : 'default');
        });
      }
    }

    it('any caller may initialize and list tools (the handshake rule)', () => {
      for (const agent of [...Object.keys(allowedTools), undefined]) {
        for (const method of ['initialize', 'notifications/initialized', 'server/discover', 'tools/list']) {
          const made = evaluateToolPolicy(compiled, { callerAppId: agent, method });
          assert.equal(made.allowed, true, `${String(agent)} ${method}`);
          assert.equal(made.rule, 'handshake');
        }
      }
    });

    it('everything else is denied by default, as in the Rego policy', () => {
      for (const method of ['resources/list', 'resources/read', 'prompts/get', 'ping', 'notifications/cancelled', 'completion/complete']) {
        const made = evaluateToolPolicy(compiled, { callerAppId: 'admin-agent', method });
        assert.equal(made.allowed, false, method);
        assert.equal(made.rule, 'default');
        assert.match(made.reason, /no rule of policy "inventory-tools" matches/);
      }
    });

    it('an unauthenticated caller cannot call any tool', () => {
      for (const tool of TOOLS) assert.equal(evaluateToolPolicy(compiled, { callerAppId: undefined, method: 'tools/call', toolName: tool }).allowed, false);
    });

    it('tool names are matched exactly, not by prefix or case', () => {
      for (const tool of ['drop_table ', 'Drop_Table', 'get_inventory2', 'get_inventory/../drop_table']) {
        assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'analyst-agent', method: 'tools/call', toolName: tool }).allowed, false, tool);
      }
    });

    it('tools/list is filtered to the tools each caller may call', () => {
      const listed = TOOLS.map((name) => ({ name, description: `${name} tool`, inputSchema: { type: 'object' } }));
      for (const [agent, mayCall] of Object.entries(allowedTools)) {
        assert.deepEqual(
          filterToolsList(compiled, { callerAppId: agent }, listed).map((tool) => tool.name),
          mayCall,
          agent,
        );
      }
      const response = { jsonrpc: '2.0', id: 3, result: { tools: listed, nextCursor: 'c2' } };
      const filtered = filterToolsListResponse(compiled, { callerAppId: 'ops-agent' }, response);
      assert.deepEqual((filtered['result'] as { tools: Array<{ name: string }> }).tools.map((tool) => tool.name), ['get_inventory', 'get_schema', 'update_stock']);
      assert.equal((filtered['result'] as { nextCursor: string }).nextCursor, 'c2');
      assert.equal(filterToolsListResponse(compiled, { callerAppId: 'admin-agent' }, response), response);
      assert.equal(filterToolsListResponse(compiled, { callerAppId: 'admin-agent' }, { jsonrpc: '2.0', id: 4, error: { code: 1, message: 'x' } })['error'] !== undefined, true);
    });

    it('entries of a tools/list result without a name are dropped', () => {
      assert.deepEqual(filterToolsList(compiled, { callerAppId: 'admin-agent' }, [{ description: 'nameless' }, { name: 7 }, 'x', null, { name: 'get_schema' }]), [{ name: 'get_schema' }]);
    });

    it('applies to the MCP server named in its scopes', () => {
      assert.equal(toolPolicyAppliesTo(compiled, 'mcp-server'), true);
      assert.equal(toolPolicyAppliesTo(compiled, 'another-server'), false);
    });

    it('the compiled policy is frozen', () => {
      assert.ok(Object.isFrozen(compiled));
      assert.ok(Object.isFrozen(compiled.rules));
      assert.ok(Object.isFrozen(compiled.rules[0]));
    });
  });

  describe('rules', () => {
    it('the first matching rule wins; order matters', () => {
      const denyFirst = compileToolPolicy(
        policy([
          { name: 'no-drop', tools: ['drop_*'], action: 'deny' },
          { name: 'admin', callers: { appIds: ['admin-*'] }, action: 'allow' },
        ]),
        'p.yaml',
      );
      assert.equal(evaluateToolPolicy(denyFirst, { callerAppId: 'admin-agent', method: 'tools/call', toolName: 'drop_table' }).rule, 'no-drop');
      assert.equal(evaluateToolPolicy(denyFirst, { callerAppId: 'admin-agent', method: 'tools/call', toolName: 'get_schema' }).rule, 'admin');
      const allowFirst = compileToolPolicy(
        policy([
          { name: 'admin', callers: { appIds: ['admin-*'] }, action: 'allow' },
          { name: 'no-drop', tools: ['drop_*'], action: 'deny' },
        ]),
        'p.yaml',
      );
      assert.equal(evaluateToolPolicy(allowFirst, { callerAppId: 'admin-agent', method: 'tools/call', toolName: 'drop_table' }).allowed, true);
    });

    it('globs on App IDs, methods and tools', () => {
      const compiled = compileToolPolicy(
        policy([
          { name: 'notifications', methods: ['notifications/*'], action: 'allow' },
          { name: 'readers', callers: { appIds: ['*-reader', 'auditor'] }, tools: ['get_*', '*_schema'], action: 'allow' },
        ]),
        'p.yaml',
      );
      assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'x', method: 'notifications/tools/list_changed' }).allowed, true);
      assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'x', method: 'notifications' }).allowed, false);
      assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'sales-reader', method: 'tools/call', toolName: 'get_orders' }).allowed, true);
      assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'auditor', method: 'tools/call', toolName: 'table_schema' }).allowed, true);
      assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'sales-reader', method: 'tools/call', toolName: 'set_orders' }).allowed, false);
      assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'sales-writer', method: 'tools/call', toolName: 'get_orders' }).allowed, false);
      assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'sales-reader', method: 'resources/read' }).allowed, false, 'tools imply tools/call');
    });

    it('defaultAction allow turns the policy into a deny-list', () => {
      const compiled = compileToolPolicy(policy([{ name: 'no-drop', tools: ['drop_table'], action: 'deny' }], 'allow'), 'p.yaml');
      assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'a', method: 'tools/call', toolName: 'get_schema' }).allowed, true);
      assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'a', method: 'tools/call', toolName: 'drop_table' }).allowed, false);
    });

    it('an empty policy denies everything', () => {
      const compiled = compileToolPolicy({ apiVersion: 'skein.dev/v1alpha1', kind: 'MCPToolPolicy', metadata: { name: 'empty' }, spec: {} }, 'p.yaml');
      assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'a', method: 'initialize' }).allowed, false);
    });

    it('reports the caller as given, else its App ID, else anonymous', () => {
      const compiled = compileToolPolicy(policy([]), 'p.yaml');
      assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'a', caller: 'spiffe://public/ns/default/a', method: 'ping' }).caller, 'spiffe://public/ns/default/a');
      assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'a', method: 'ping' }).caller, 'a');
      assert.equal(evaluateToolPolicy(compiled, { callerAppId: undefined, method: 'ping' }).caller, 'anonymous');
    });
  });

  describe('conditions on arguments (CEL)', () => {
    const compiled = compileToolPolicy(
      policy([
        { name: 'big-refunds', tools: ['issue_refund'], when: 'args.amount > 10000', action: 'deny' },
        { name: 'destructive-dry-run', tools: ['drop_*'], when: '!(has(args.dry_run) && args.dry_run == true)', action: 'deny' },
        { name: 'eu-only', tools: ['run_query'], when: 'args.region in ["eu-west1", "eu-north1"] && args.limit + 1 <= 101', action: 'allow' },
        { name: 'same-tenant', tools: ['read_tenant'], when: 'args.tenant == claims.tenant', action: 'allow' },
        { name: 'rest', tools: ['issue_refund', 'drop_*'], action: 'allow' },
      ]),
      'cel.yaml',
    );
    const call = (toolName: string, args: Record<string, unknown>, claims?: Record<string, unknown>) =>
      evaluateToolPolicy(compiled, { callerAppId: 'agent', method: 'tools/call', toolName, arguments: args, ...(claims ? { claims } : {}) });

    it('deny above a threshold, allow below', () => {
      const big = call('issue_refund', { amount: 15000 });
      assert.equal(big.allowed, false);
      assert.equal(big.rule, 'big-refunds');
      assert.equal(call('issue_refund', { amount: 99.5 }).allowed, true);
      assert.equal(call('issue_refund', { amount: 10000 }).allowed, true);
    });

    it('has() guards optional arguments', () => {
      assert.equal(call('drop_table', {}).rule, 'destructive-dry-run');
      assert.equal(call('drop_table', { dry_run: false }).allowed, false);
      assert.equal(call('drop_table', { dry_run: true }).allowed, true);
    });

    it('integers are CEL ints, lists and strings work', () => {
      assert.equal(call('run_query', { region: 'eu-west1', limit: 100 }).allowed, true);
      assert.equal(call('run_query', { region: 'us-east1', limit: 100 }).allowed, false);
      assert.equal(call('run_query', { region: 'eu-west1', limit: 101 }).allowed, false);
    });

    it('conditions can compare arguments with token claims', () => {
      assert.equal(call('read_tenant', { tenant: 'acme' }, { tenant: 'acme' }).allowed, true);
      const other = call('read_tenant', { tenant: 'globex' }, { tenant: 'acme' });
      assert.equal(other.allowed, false);
      assert.equal(other.rule, 'default');
    });

    it('a condition that cannot be evaluated denies, naming its rule (fails closed)', () => {
      const missing = call('issue_refund', {});
      assert.equal(missing.allowed, false);
      assert.equal(missing.rule, 'big-refunds');
      assert.match(missing.reason, /could not be evaluated/);
      const wrongType = call('issue_refund', { amount: 'lots' });
      assert.equal(wrongType.allowed, false);
      assert.equal(wrongType.rule, 'big-refunds');
      const noClaims = call('read_tenant', { tenant: 'acme' });
      assert.equal(noClaims.allowed, false);
      assert.equal(noClaims.rule, 'same-tenant');
    });

    it('a condition that gives a non-bool at run time denies', () => {
      const dyn = compileToolPolicy(policy([{ name: 'dyn', tools: ['t'], when: 'args.flag', action: 'allow' }], 'allow'), 'p.yaml');
      assert.equal(evaluateToolPolicy(dyn, { callerAppId: 'a', method: 'tools/call', toolName: 't', arguments: { flag: true } }).allowed, true);
      const made = evaluateToolPolicy(dyn, { callerAppId: 'a', method: 'tools/call', toolName: 't', arguments: { flag: 'yes' } });
      assert.equal(made.allowed, false);
      assert.match(made.reason, /not a bool/);
    });

    it('a `__proto__` argument is data, not a prototype', () => {
      const args = JSON.parse('{"__proto__": {"amount": 1}}') as Record<string, unknown>;
      assert.equal(call('issue_refund', args).allowed, false);
    });

    it('tools/list keeps tools whose allow depends on arguments', () => {
      const names = filterToolsList(compiled, { callerAppId: 'agent' }, ['issue_refund', 'drop_table', 'run_query', 'other'].map((name) => ({ name }))).map((tool) => tool.name);
      assert.deepEqual(names, ['issue_refund', 'drop_table', 'run_query']);
    });
  });

  describe('callers by token claims, and required scopes', () => {
    const compiled = compileToolPolicy(
      policy([
        { name: 'inventory-admins', callers: { claims: { groups: ['inventory-admins', 'root'], iss: 'https://auth.example.com' } }, tools: ['*'], action: 'allow' },
        { name: 'writers', callers: { appIds: ['ops-agent'] }, tools: ['update_stock'], requiredScopes: ['inventory:write'], action: 'allow' },
        { name: 'readers', callers: { appIds: ['ops-agent'], claims: { sub: 'user-*' } }, tools: ['get_*'], action: 'allow' },
      ]),
      'claims.yaml',
    );

    it('claims match by glob; array claims match any element', () => {
      const admin = { groups: ['staff', 'inventory-admins'], iss: 'https://auth.example.com' };
      assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'any', claims: admin, method: 'tools/call', toolName: 'drop_table' }).rule, 'inventory-admins');
      assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'any', claims: { ...admin, iss: 'https://evil.example.com' }, method: 'tools/call', toolName: 'drop_table' }).allowed, false);
      assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'ops-agent', claims: { sub: 'user-42' }, method: 'tools/call', toolName: 'get_schema' }).rule, 'readers');
      assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'ops-agent', claims: { sub: 'service-42' }, method: 'tools/call', toolName: 'get_schema' }).allowed, false);
    });

    it('a rule with claims never matches a call without a token', () => {
      assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'ops-agent', method: 'tools/call', toolName: 'get_schema' }).allowed, false);
    });

    it('required scopes: allowed with them, denied naming the missing ones without them', () => {
      assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'ops-agent', claims: { scope: 'inventory:read inventory:write' }, method: 'tools/call', toolName: 'update_stock' }).allowed, true);
      assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'ops-agent', claims: { scp: ['inventory:write'] }, method: 'tools/call', toolName: 'update_stock' }).allowed, true);
      const lacking = evaluateToolPolicy(compiled, { callerAppId: 'ops-agent', claims: { scope: 'inventory:read' }, method: 'tools/call', toolName: 'update_stock' });
      assert.equal(lacking.allowed, false);
      assert.equal(lacking.rule, 'writers');
      assert.deepEqual(lacking.missingScopes, ['inventory:write']);
      const noToken = evaluateToolPolicy(compiled, { callerAppId: 'ops-agent', method: 'tools/call', toolName: 'update_stock' });
      assert.deepEqual(noToken.missingScopes, ['inventory:write']);
      assert.match(noToken.reason, /no bearer token/);
      assert.equal(filterToolsList(compiled, { callerAppId: 'ops-agent', claims: { scope: 'inventory:read' } }, [{ name: 'update_stock' }]).length, 0);
    });

    it('scopesOf reads scope and scp', () => {
      assert.deepEqual([...scopesOf({ scope: 'a  b', scp: ['c', 4] })], ['a', 'b', 'c']);
      assert.equal(scopesOf(undefined).size, 0);
    });
  });

  describe('rejected at load with file, path and reason', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'skein-tool-policy-'));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));
    const load = (text: string): CompiledToolPolicy => {
      const file = join(dir, 'policy.yaml');
      writeFileSync(file, text);
      const [loaded] = loadResourceFile(file);
      assert.ok(loaded);
      return compileToolPolicy(loaded.value as MCPToolPolicyResource, loaded.file);
    };
    const header = 'apiVersion: skein.dev/v1alpha1\nkind: MCPToolPolicy\nmetadata: { name: p }\nspec:\n  rules:\n';

    it('an unknown field in a rule', () => {
      const error = configError(() => load(`${header}    - name: r\n      tool: [x]\n      action: allow\n`));
      assert.equal(error.location?.path, '/spec/rules/0/tool');
      assert.match(error.message, /policy\.yaml: \/spec\/rules\/0\/tool: unknown field "tool"/);
    });

    it('an unknown top-level field and a wrong apiVersion', () => {
      assert.match(configError(() => load(`${header}    - { name: r, action: allow }\n  defaultActon: deny\n`)).message, /unknown field "defaultActon"/);
      assert.match(configError(() => load(header.replace('skein.dev/v1alpha1', 'dapr.io/v1alpha1') + '    - { name: r, action: allow }\n')).message, /\/apiVersion/);
    });

    it('a missing action', () => {
      assert.match(configError(() => load(`${header}    - name: r\n      tools: [x]\n`)).message, /missing required field "action"/);
    });

    it('CEL that does not compile', () => {
      const error = configError(() => load(`${header}    - name: r\n      tools: [x]\n      when: "args.amount >"\n      action: deny\n`));
      assert.equal(error.location?.path, '/spec/rules/0/when');
      assert.match(error.message, /CEL does not compile/);
    });

    const badCel: Array<[string, RegExp]> = [
      ['unknown_variable > 1', /type-check/],
      ['1 + "a"', /type-check/],
      ['1 + 1', /gives int, not a bool/],
      ['"yes"', /gives string, not a bool/],
      ['   ', /empty/],
      [`${'1 + '.repeat(2000)}1 == 2`, /longer than|does not compile/],
      [`args${'.a'.repeat(100)} == 1`, /does not compile/],
    ];
    for (const [when, reason] of badCel) {
      it(`CEL ${JSON.stringify(when.slice(0, 30))}`, () => {
        const error = configError(() => compileToolPolicy(policy([{ name: 'r', tools: ['x'], when, action: 'deny' }]), 'cel.yaml'));
        assert.equal(error.location?.path, '/spec/rules/0/when');
        assert.match(error.message, reason);
      });
    }

    const badGlobs: Array<[MCPToolPolicyRule, string, RegExp]> = [
      [{ name: 'r', tools: ['get_**'], action: 'allow' }, '/spec/rules/0/tools/0', /"\*\*"/],
      [{ name: 'r', tools: ['ok', 'has space'], action: 'allow' }, '/spec/rules/0/tools/1', /contains " "/],
      [{ name: 'r', methods: ['tools/call\n'], action: 'allow' }, '/spec/rules/0/methods/0', /contains "\\n"/],
      [{ name: 'r', callers: { appIds: ['agent.one'] }, action: 'allow' }, '/spec/rules/0/callers/appIds/0', /contains "\."/],
      [{ name: 'r', callers: { appIds: [''] }, action: 'allow' }, '/spec/rules/0/callers/appIds/0', /empty/],
      [{ name: 'r', callers: { claims: { 'https://x/groups': ['a', 'b**'] } }, action: 'allow' }, '/spec/rules/0/callers/claims/https:~1~1x~1groups/1', /"\*\*"/],
      [{ name: 'r', callers: { claims: { sub: 'a\u0000' } }, action: 'allow' }, '/spec/rules/0/callers/claims/sub', /contains/],
    ];
    for (const [rule, path, reason] of badGlobs) {
      it(`bad glob at ${path}`, () => {
        const error = configError(() => compileToolPolicy(policy([rule]), 'globs.yaml'));
        assert.equal(error.location?.path, path);
        assert.match(error.message, reason);
      });
    }

    it('duplicate rule names, tools without tools/call, scopes on a deny rule, a bad scope, a bad name', () => {
      assert.equal(configError(() => compileToolPolicy(policy([{ name: 'r', action: 'allow' }, { name: 'r', action: 'deny' }]), 'x')).location?.path, '/spec/rules/1/name');
      assert.match(configError(() => compileToolPolicy(policy([{ name: 'r', methods: ['tools/list'], tools: ['x'], action: 'allow' }]), 'x')).message, /only apply to tools\/call/);
      assert.equal(configError(() => compileToolPolicy(policy([{ name: 'r', tools: ['x'], requiredScopes: ['a'], action: 'deny' }]), 'x')).location?.path, '/spec/rules/0/requiredScopes');
      assert.equal(configError(() => compileToolPolicy(policy([{ name: 'r', tools: ['x'], requiredScopes: ['a b'], action: 'allow' }]), 'x')).location?.path, '/spec/rules/0/requiredScopes/0');
      assert.equal(configError(() => compileToolPolicy(policy([{ name: '-r', action: 'allow' }]), 'x')).location?.path, '/spec/rules/0/name');
    });
  });

  it('evaluates quickly enough for the hot path', () => {
    const compiled = loadSample();
    const started = process.hrtime.bigint();
    for (let index = 0; index < 20_000; index += 1) evaluateToolPolicy(compiled, { callerAppId: 'ops-agent', method: 'tools/call', toolName: TOOLS[index % 4], arguments: { product_id: 'p1' } });
    const microsEach = Number(process.hrtime.bigint() - started) / 1000 / 20_000;
    assert.ok(microsEach < 100, `${microsEach.toFixed(1)} µs per decision`);
  });
});
