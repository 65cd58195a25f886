import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { accessDeniedError, compileAccessControl, evaluateAccessControl, type AccessRequest, type CompiledAccessControl } from '../src/acl/access-control.js';
import { normalizeOperation } from '../src/acl/operation.js';
import { loadConfiguration } from '../src/config/load.js';
import type { AccessControlSpec } from '../src/config/types.js';
import type { SpiffeId } from '@skein/core';
import { configError } from './config-error.js';

const id = (appId: string, namespace = 'default', trustDomain = 'public'): SpiffeId => ({ appId, namespace, trustDomain });
const allowed = (compiled: CompiledAccessControl, request: AccessRequest): boolean => evaluateAccessControl(compiled, request).allowed;


describe('access control (Configuration.spec.accessControl)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'skein-acl-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function loadYaml(name: string, text: string): CompiledAccessControl {
    const file = join(dir, name);
    writeFileSync(file, text);
    const configuration = loadConfiguration(file);
    return compileAccessControl(configuration.spec.accessControl, file, { target: 'mcp-server' });
  }

  /** A Configuration shipped in samples/policies (the seed's documents, unchanged). */
  function loadSample(name: string): CompiledAccessControl {
    const file = fileURLToPath(new URL(`../../../samples/policies/${name}`, import.meta.url));
    return compileAccessControl(loadConfiguration(file).spec.accessControl, file, { target: 'mcp-server' });
  }

  describe('the seed examples, loaded unchanged', () => {
    it('deny-all baseline: no caller can reach the server', () => {
      const compiled = loadSample('deny-all.yaml');
      for (const caller of [id('analyst-agent'), id('ops-agent'), id('admin-agent', 'other'), undefined]) {
        const made = evaluateAccessControl(compiled, { caller, operation: 'mcp', httpVerb: 'POST' });
        assert.equal(made.allowed, false);
        assert.equal(made.rule, 'default');
        assert.equal(made.source, 'acl');
        assert.equal(made.target, 'mcp-server');
      }
    });

    it('allow-list: analyst-agent in default/public is allowed, every other caller denied', () => {
      const compiled = loadSample('allow-analyst.yaml');
      const analyst = evaluateAccessControl(compiled, { caller: id('analyst-agent'), operation: 'mcp', httpVerb: 'POST' });
      assert.equal(analyst.allowed, true);
      assert.equal(analyst.rule, 'policies[0]');
      assert.equal(analyst.caller, 'spiffe://public/ns/default/analyst-agent');
      assert.equal(analyst.method, 'POST /mcp');
      assert.equal(allowed(compiled, { caller: id('analyst-agent'), operation: 'mcp', httpVerb: 'GET' }), true);
      assert.equal(allowed(compiled, { caller: id('ops-agent'), operation: 'mcp', httpVerb: 'POST' }), false);
      assert.equal(allowed(compiled, { caller: id('analyst-agent', 'other'), operation: 'mcp', httpVerb: 'POST' }), false);
      assert.equal(allowed(compiled, { caller: id('analyst-agent', 'default', 'evil.example'), operation: 'mcp', httpVerb: 'POST' }), false);
      assert.equal(allowed(compiled, { caller: undefined, operation: 'mcp', httpVerb: 'POST' }), false);
    });

    it('the troubleshooting example: admin-agent allowed every operation', () => {
      const compiled = compileAccessControl(
        { defaultAction: 'deny', trustDomain: 'public', policies: [{ appId: 'admin-agent', defaultAction: 'allow', namespace: 'default' }] },
        'inline.yaml',
      );
      assert.equal(allowed(compiled, { caller: id('admin-agent'), operation: 'anything/at/all', httpVerb: 'DELETE' }), true);
    });

    it('no Configuration at all: every caller is allowed', () => {
      const made = evaluateAccessControl(compileAccessControl(undefined, 'none'), { caller: id('anyone'), operation: 'mcp', httpVerb: 'POST' });
      assert.equal(made.allowed, true);
      assert.equal(made.rule, 'default');
    });
  });

  describe('rejected at compile time with file, path and reason', () => {
    it('a policy without appId or namespace', () => {
      const noApp = configError(() => compileAccessControl({ defaultAction: 'deny', policies: [{ appId: '', namespace: 'ns1' }] }, 'acl.yaml'));
      assert.equal(noApp.location?.file, 'acl.yaml');
      assert.equal(noApp.location?.path, '/spec/accessControl/policies/0/appId');
      const noNamespace = configError(() =>
        compileAccessControl({ defaultAction: 'deny', policies: [{ appId: 'a', namespace: 'ns', trustDomain: 'public' }, { appId: 'app1', namespace: '' }] }, 'acl.yaml'),
      );
      assert.equal(noNamespace.location?.path, '/spec/accessControl/policies/1/namespace');
      assert.match(noNamespace.message, /^acl\.yaml: \/spec\/accessControl\/policies\/1\/namespace: .*app1/);
    });

    it('the schema refuses unknown fields and a policy without namespace at load', () => {
      const unknown = configError(() =>
        loadYaml(
          'unknown.yaml',
          `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: { name: x }
spec:
  accessControl:
    defaultAction: deny
    polices: []
`,
        ),
      );
      assert.equal(unknown.location?.path, '/spec/accessControl/polices');
      assert.match(unknown.message, /unknown field "polices"/);
      const missing = configError(() =>
        loadYaml(
          'missing.yaml',
          `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: { name: x }
spec:
  accessControl:
    policies:
    - appId: app1
`,
        ),
      );
      assert.match(missing.message, /missing required field "namespace"/);
    });

    const badOperations: Array<[string, RegExp]> = [
      ['/', /names no operation/],
      ['/a//b', /empty segment/],
      ['/a/', /empty segment/],
      ['/a/../b', /"\.\." segment/],
      ['/a/./b', /"\." segment/],
      ['/a/b**', /whole segment/],
      ['/a/**b/c', /whole segment/],
      ['/a?x=1', /"\?"/],
      ['/a#frag', /"#"/],
      ['/a\\b', /backslash/],
      ['/a b', /space or control/],
    ];
    for (const [name, reason] of badOperations) {
      it(`operation ${JSON.stringify(name)}`, () => {
        const error = configError(() =>
          compileAccessControl(
            { defaultAction: 'deny', policies: [{ appId: 'app1', namespace: 'ns1', trustDomain: 'public', operations: [{ name, action: 'allow', httpVerb: ['*'] }] }] },
            'ops.yaml',
          ),
        );
        assert.equal(error.location?.path, '/spec/accessControl/policies/0/operations/0/name');
        assert.match(error.message, reason);
      });
    }

    it('an HTTP verb that could never match', () => {
      const lower = configError(() =>
        compileAccessControl({ policies: [{ appId: 'a', namespace: 'n', operations: [{ name: '/x', httpVerb: ['POST', 'get'], action: 'allow' }] }] }, 'v.yaml'),
      );
      assert.equal(lower.location?.path, '/spec/accessControl/policies/0/operations/0/httpVerb/1');
      assert.match(lower.message, /write "GET"/);
      configError(() => compileAccessControl({ policies: [{ appId: 'a', namespace: 'n', operations: [{ name: '/x', httpVerb: ['FETCH'], action: 'allow' }] }] }, 'v.yaml'));
    });

    it('two policies for the same appId and namespace', () => {
      const error = configError(() =>
        compileAccessControl(
          { policies: [{ appId: 'a', namespace: 'n', defaultAction: 'allow' }, { appId: 'a', namespace: 'n', defaultAction: 'deny' }] },
          'dup.yaml',
        ),
      );
      assert.equal(error.location?.path, '/spec/accessControl/policies/1');
    });

    it('the compiled policy is frozen', () => {
      const compiled = compileAccessControl({ defaultAction: 'deny', policies: [{ appId: 'a', namespace: 'n', operations: [{ name: '/x', action: 'allow' }] }] }, 'f.yaml');
      assert.ok(Object.isFrozen(compiled));
      assert.ok(Object.isFrozen(compiled.policies.get('a||n')));
      assert.ok(Object.isFrozen(compiled.policies.get('a||n')?.operations[0]));
    });
  });

  describe('defaults', () => {
    it('empty defaultAction means deny when policies are written', () => {
      const compiled = compileAccessControl({ trustDomain: 'public', policies: [{ appId: 'app1', namespace: 'ns1', trustDomain: 'domain1', defaultAction: 'allow' }] }, 'x');
      assert.equal(compiled.defaultAction, 'deny');
      assert.equal(allowed(compiled, { caller: id('other', 'ns1'), operation: 'op', httpVerb: 'GET' }), false);
    });

    it('absent policies with a trust domain: deny; an explicit empty list: allow; nothing at all: no ACL', () => {
      assert.equal(allowed(compileAccessControl({ trustDomain: 'public' }, 'x'), { caller: id('a'), operation: 'op', httpVerb: 'GET' }), false);
      const emptyList = compileAccessControl({ trustDomain: 'public', policies: [] }, 'x');
      assert.equal(emptyList.configured, true);
      assert.equal(allowed(emptyList, { caller: id('a'), operation: 'op', httpVerb: 'GET' }), true);
      const nothing = compileAccessControl({ defaultAction: '', policies: [] }, 'x');
      assert.equal(nothing.configured, false);
      assert.equal(allowed(nothing, { caller: undefined, operation: 'op' }), true);
    });

    it('trust domain of the spec defaults to "public"', () => {
      assert.equal(compileAccessControl({ defaultAction: 'deny' }, 'x').trustDomain, 'public');
    });

    it('actions are case-insensitive', () => {
      const compiled = compileAccessControl({ defaultAction: 'Allow' as 'allow' }, 'x');
      assert.equal(allowed(compiled, { caller: id('a'), operation: 'op', httpVerb: 'GET' }), true);
    });
  });

  describe("Dapr's evaluation cases", () => {
    // The same policy set Dapr's own unit tests use, so our answers can be compared case by case.
    const spec: AccessControlSpec = {
      defaultAction: 'deny',
      trustDomain: 'abcd',
      policies: [
        {
          appId: 'app1',
          defaultAction: 'allow',
          trustDomain: 'public',
          namespace: 'ns1',
          operations: [
            { name: '/op1', httpVerb: ['POST', 'GET'], action: 'allow' },
            { name: '/op2', httpVerb: ['*'], action: 'deny' },
          ],
        },
        {
          appId: 'app2',
          defaultAction: 'deny',
          trustDomain: 'domain1',
          namespace: 'ns2',
          operations: [
            { name: '/op3/a/*', httpVerb: ['PUT', 'GET'], action: 'allow' },
            { name: '/op4', httpVerb: ['POST'], action: 'allow' },
          ],
        },
        { appId: 'app3', trustDomain: 'domain1', namespace: 'ns1', operations: [{ name: '/op5', httpVerb: ['POST'], action: 'allow' }] },
        {
          appId: 'app4',
          defaultAction: 'deny',
          trustDomain: 'domain1',
          namespace: 'ns2',
          operations: [
            { name: '/op6', action: 'allow' },
            { name: '/op7/a/b/*', action: 'allow' },
            { name: '/op7/a/b/c/f', action: 'allow' },
            { name: '/op7/a/b*', action: 'allow' },
            { name: '/op7/c/**', action: 'allow' },
          ],
        },
        { appId: 'app1', defaultAction: 'allow', trustDomain: 'public', namespace: 'ns4', operations: [{ name: '/op6', httpVerb: ['*'], action: 'allow' }] },
      ],
    };
    const http = compileAccessControl(spec, 'dapr.yaml');
    const grpc = compileAccessControl(spec, 'dapr.yaml', { protocol: 'grpc' });
    const cases: Array<[string, CompiledAccessControl, AccessRequest, boolean]> = [
      ['no matching app → global default', http, { caller: id('appX', 'ns1'), operation: 'op1', httpVerb: 'POST' }, false],
      ['trust domain does not match → global default', http, { caller: id('app1', 'ns1', 'private'), operation: 'op1', httpVerb: 'POST' }, false],
      ['namespace does not match → global default', http, { caller: id('app1', 'abcd'), operation: 'op1', httpVerb: 'POST' }, false],
      ['no SPIFFE ID → global default', http, { caller: undefined, operation: 'op1', httpVerb: 'POST' }, false],
      ['operation not in the policy → app default', http, { caller: id('app1', 'ns1'), operation: 'opX', httpVerb: 'POST' }, true],
      ['HTTP matching is case-insensitive', http, { caller: id('app1', 'ns1'), operation: 'Op2', httpVerb: 'POST' }, false],
      ['verb not listed → app default', http, { caller: id('app2', 'ns2', 'domain1'), operation: 'op4', httpVerb: 'PUT' }, false],
      ['no app default and no verb match → global default', http, { caller: id('app3', 'ns1', 'domain1'), operation: 'op5', httpVerb: 'PUT' }, false],
      ['verb matches *', http, { caller: id('app1', 'ns1'), operation: 'op2', httpVerb: 'PUT' }, false],
      ['verb matches exactly', http, { caller: id('app2', 'ns2', 'domain1'), operation: 'op4', httpVerb: 'POST' }, true],
      ['leading slash in the request', http, { caller: id('app2', 'ns2', 'domain1'), operation: '/op4', httpVerb: 'POST' }, true],
      ['HTTP without a verb → app default', http, { caller: id('app2', 'ns2', 'domain1'), operation: 'op4' }, false],
      ['/op3/a/* covers /op3/a', http, { caller: id('app2', 'ns2', 'domain1'), operation: '/op3/a', httpVerb: 'PUT' }, true],
      ['/op3/a/* does not cover /op3/b/b', http, { caller: id('app2', 'ns2', 'domain1'), operation: '/op3/b/b', httpVerb: 'PUT' }, false],
      ['/op3/a/* covers /op3/a/b', http, { caller: id('app2', 'ns2', 'domain1'), operation: '/op3/a/b', httpVerb: 'PUT' }, true],
      ['gRPC is case-sensitive', grpc, { caller: id('app2', 'ns2', 'domain1'), operation: '/OP4' }, false],
      ['gRPC uses the operation action', grpc, { caller: id('app2', 'ns2', 'domain1'), operation: 'op4' }, true],
      ['gRPC operation without verbs', grpc, { caller: id('app4', 'ns2', 'domain1'), operation: 'op6' }, true],
      ['/* matches one more segment', grpc, { caller: id('app4', 'ns2', 'domain1'), operation: 'op7/a/b/c' }, true],
      ['/* does not match two more segments', grpc, { caller: id('app4', 'ns2', 'domain1'), operation: 'op7/a/b/c/d' }, false],
      ['exact deep operation', grpc, { caller: id('app4', 'ns2', 'domain1'), operation: 'op7/a/b/c/f' }, true],
      ['* inside a segment', grpc, { caller: id('app4', 'ns2', 'domain1'), operation: 'op7/a/bc' }, true],
      ['/** matches any depth', grpc, { caller: id('app4', 'ns2', 'domain1'), operation: 'op7/c/d/e' }, true],
      ['same appId in another namespace', http, { caller: id('app1', 'ns4'), operation: 'op6', httpVerb: 'DELETE' }, true],
    ];
    for (const [title, compiled, request, expected] of cases) {
      it(title, () => assert.equal(allowed(compiled, request), expected));
    }

    it('names the rule that decided', () => {
      assert.equal(evaluateAccessControl(http, { caller: id('app1', 'ns1'), operation: 'op1', httpVerb: 'GET' }).rule, 'policies[0].operations[0]');
      assert.equal(evaluateAccessControl(http, { caller: id('app1', 'ns1'), operation: 'op9', httpVerb: 'GET' }).rule, 'policies[0]');
      assert.equal(evaluateAccessControl(http, { caller: id('app3', 'ns1', 'domain1'), operation: 'op5', httpVerb: 'PUT' }).rule, 'default');
      const denied = evaluateAccessControl(http, { caller: id('app1', 'ns1'), operation: 'op2', httpVerb: 'PUT' });
      assert.equal(denied.rule, 'policies[0].operations[1]');
      assert.match(denied.reason, /denied.*\/op2/);
    });

    it('the first operation in written order decides', () => {
      const compiled = compileAccessControl(
        {
          defaultAction: 'deny',
          policies: [
            { appId: 'a', namespace: 'n', operations: [{ name: '/x/*', httpVerb: ['*'], action: 'deny' }, { name: '/x/y', httpVerb: ['*'], action: 'allow' }] },
            { appId: 'b', namespace: 'n', operations: [{ name: '/x/y', httpVerb: ['*'], action: 'allow' }, { name: '/x/*', httpVerb: ['*'], action: 'deny' }] },
          ],
        },
        'order.yaml',
      );
      assert.equal(allowed(compiled, { caller: id('a', 'n'), operation: '/x/y', httpVerb: 'GET' }), false);
      assert.equal(allowed(compiled, { caller: id('b', 'n'), operation: '/x/y', httpVerb: 'GET' }), true);
    });

    it('** in the middle covers any depth (the documented /op1/**/a)', () => {
      const compiled = compileAccessControl(
        { defaultAction: 'allow', policies: [{ appId: 'app1', namespace: 'default', defaultAction: 'allow', operations: [{ name: '/op1/**/a', httpVerb: ['*'], action: 'deny' }] }] },
        'scenario6.yaml',
      );
      for (const operation of ['/op1/a', '/op1/x/a', '/op1/x/y/z/a']) assert.equal(allowed(compiled, { caller: id('app1'), operation, httpVerb: 'GET' }), false, operation);
      for (const operation of ['/op1/x/b', '/op1', '/op2/a']) assert.equal(allowed(compiled, { caller: id('app1'), operation, httpVerb: 'GET' }), true, operation);
    });
  });

  describe('identity', () => {
    const compiled = compileAccessControl({ defaultAction: 'allow', policies: [] }, 'x');
    it('a malformed caller identity is denied even when the default allows', () => {
      const made = evaluateAccessControl(compiled, { caller: 'malformed', operation: 'op', httpVerb: 'GET' });
      assert.equal(made.allowed, false);
      assert.equal(made.rule, 'malformed-caller');
      assert.equal(made.caller, 'malformed');
    });
    it('a caller from another trust domain does not get the policy of a same-named app', () => {
      const policy = compileAccessControl({ defaultAction: 'deny', policies: [{ appId: 'agent', namespace: 'default', defaultAction: 'allow' }] }, 'x');
      assert.equal(allowed(policy, { caller: id('agent', 'default', 'public'), operation: 'mcp', httpVerb: 'POST' }), true);
      const foreign = evaluateAccessControl(policy, { caller: id('agent', 'default', 'attacker.example'), operation: 'mcp', httpVerb: 'POST' });
      assert.equal(foreign.allowed, false);
      assert.match(foreign.reason, /trust domain "public" but the caller is in "attacker\.example"/);
    });
  });

  describe('bypass attempts (reserved characters and traversal)', () => {
    // Dapr's own bypass suite: only /public is allowed, and nothing may reach "unauthorized".
    const onlyPublic = compileAccessControl(
      { defaultAction: 'deny', trustDomain: 'public', policies: [{ appId: 'caller', defaultAction: 'deny', trustDomain: 'public', namespace: 'default', operations: [{ name: '/public', httpVerb: ['*'], action: 'allow' }] }] },
      'bypass.yaml',
    );
    const call = (operation: string) => evaluateAccessControl(onlyPublic, { caller: id('caller'), operation, httpVerb: 'GET' });

    it('the allowed path works', () => assert.equal(call('public').allowed, true));
    it('the denied path is denied', () => assert.equal(call('unauthorized').allowed, false));
    for (const attack of [
      'public%23/../unauthorized',
      'public%3F/../unauthorized',
      'public%23/../../unauthorized',
      'public/sub%23/../../unauthorized',
      'public%2F..%2Funauthorized',
      'public%0D/../unauthorized',
      'public%25/../unauthorized',
      'public/../unauthorized',
      'public/%2e%2e/unauthorized',
      'public/..%2Funauthorized',
      'public\\..\\unauthorized',
      'public%5C..%5Cunauthorized',
      'public%00',
      'public?x=/../unauthorized',
      'public#/../unauthorized',
      'public%',
      'public%E0%A4%A',
    ]) {
      it(`denies ${JSON.stringify(attack)}`, () => assert.equal(call(attack).allowed, false));
    }
    it('equivalent spellings of an allowed path stay allowed', () => {
      for (const spelling of ['/public', '//public', '/./public', '/x/../public', '/PUBLIC', '/%70ublic', '/public/']) assert.equal(call(spelling).allowed, true, spelling);
    });

    const denyAdmin = compileAccessControl(
      { defaultAction: 'allow', policies: [{ appId: 'caller', namespace: 'default', defaultAction: 'allow', operations: [{ name: '/admin/**', httpVerb: ['*'], action: 'deny' }] }] },
      'deny-admin.yaml',
    );
    for (const attack of ['/admin', '/admin/users', '/Admin/users', '/%61dmin/users', '/public/../admin/users', '//admin//users', '/admin/./users', '/../admin', '/public/%2e%2e/admin']) {
      it(`a deny rule cannot be dodged with ${JSON.stringify(attack)}`, () => {
        assert.equal(evaluateAccessControl(denyAdmin, { caller: id('caller'), operation: attack, httpVerb: 'POST' }).allowed, false);
      });
    }

    it('a malformed operation is refused before any policy, naming why', () => {
      const made = evaluateAccessControl(compileAccessControl(undefined, 'x'), { caller: id('caller'), operation: 'a%2Fb', httpVerb: 'GET' });
      assert.equal(made.allowed, false);
      assert.equal(made.rule, 'malformed-operation');
    });

    it('normalizeOperation', () => {
      assert.deepEqual(normalizeOperation('admin/../public', 'http'), { ok: true, path: '/public' });
      assert.deepEqual(normalizeOperation('../../etc/passwd', 'http'), { ok: true, path: '/etc/passwd' });
      assert.deepEqual(normalizeOperation('api/v1/users', 'http'), { ok: true, path: '/api/v1/users' });
      assert.deepEqual(normalizeOperation('test%25stream', 'http'), { ok: true, path: '/test%stream' });
      assert.deepEqual(normalizeOperation('a%20b', 'grpc'), { ok: true, path: '/a%20b' });
      assert.equal(normalizeOperation('test\tstream', 'http').ok, false);
      assert.equal(normalizeOperation('test\x00stream', 'grpc').ok, false);
    });
  });

  it("a denial answers with Dapr's 403 ERR_DIRECT_INVOKE body", () => {
    const compiled = compileAccessControl({ defaultAction: 'deny' }, 'x');
    const request: AccessRequest = { caller: id('agent'), operation: 'mcp', httpVerb: 'POST' };
    const error = accessDeniedError(evaluateAccessControl(compiled, request), request);
    assert.equal(error.httpStatus, 403);
    assert.deepEqual(error.toBody(), {
      errorCode: 'ERR_DIRECT_INVOKE',
      message: 'access control policy has denied access to id: spiffe://public/ns/default/agent operation: mcp verb: POST',
    });
  });

  it('decisions are frozen and carry no undefined fields', () => {
    const made = evaluateAccessControl(compileAccessControl({ defaultAction: 'deny' }, 'x'), { caller: id('a'), operation: 'op', httpVerb: 'GET' });
    assert.ok(Object.isFrozen(made));
    assert.deepEqual(Object.keys(made).sort(), ['allowed', 'caller', 'method', 'reason', 'rule', 'source', 'target']);
  });
});
