import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SkeinError, type Decision } from '@skein/core';
import { durabletask as dt } from '@skein/proto';
import { compileSidecarConfig } from '../src/config/compile.js';
import { loadResourceFile, loadResources } from '../src/config/load.js';
import type { WorkflowAccessPolicyResource } from '../src/config/types.js';
import { WorkflowAccessGuard } from '../src/workflow/access-guard.js';
import {
  OPEN_WORKFLOW_ACCESS,
  compileNameGlob,
  compileWorkflowAccess,
  evaluateWorkflowAccess,
  workflowOperationOf,
  type WorkflowAccessRequest,
} from '../src/workflow/access-policy.js';
import { configError } from './config-error.js';

const ORDERS = { appId: 'orders', namespace: 'default' };

function policy(name: string, rules: NonNullable<WorkflowAccessPolicyResource['spec']>['rules'], scopes?: string[]): WorkflowAccessPolicyResource {
  return { apiVersion: 'dapr.io/v1alpha1', kind: 'WorkflowAccessPolicy', metadata: { name }, ...(scopes ? { scopes } : {}), spec: { rules } };
}

const SHOP_CHECKOUT = policy('orders-callers', [
  { callers: [{ appID: 'shop' }], workflows: [{ name: 'checkout*', operations: ['schedule', 'get', 'raise', 'terminate'] }] },
  { callers: [{ appID: 'auditor' }, { appID: 'shop' }], workflows: [{ name: 'report-202?', operations: ['get'] }], activities: [{ name: 'audit-[a-c]' }] },
]);

function request(callerAppId: string, operation: WorkflowAccessRequest['operation'], name: string, extra: Partial<WorkflowAccessRequest> = {}): WorkflowAccessRequest {
  return { caller: { appId: callerAppId, namespace: 'default' }, target: ORDERS, operation, kind: 'workflow', name, ...extra };
}

describe('WorkflowAccessPolicy', function () {
  describe('name globs', function () {
    const cases: Array<[string, string[], string[]]> = [
      ['checkout', ['checkout'], ['checkout2', 'Checkout', '']],
      ['checkout*', ['checkout', 'checkout-v2', 'checkout*'], ['check', 'xcheckout']],
      ['*', ['', 'anything'], []],
      ['*-v?', ['order-v1', 'a-b-v9'], ['order-v10', 'order-v']],
      ['report-202?', ['report-2026'], ['report-202', 'report-20266']],
      ['audit-[a-c]', ['audit-a', 'audit-c'], ['audit-d', 'audit-']],
      ['[!x]y', ['ay'], ['xy', 'y']],
      ['[^x]y', ['ay'], ['xy']],
      ['a*b*c', ['abc', 'aXbYc', 'abbc', 'acbc'], ['acb', 'ab']],
      ['[]]x', [']x'], ['x']],
      ['lit\\*', ['lit*'], ['lit', 'litx']],
    ];
    for (const [pattern, hits, misses] of cases) {
      it(`"${pattern}"`, function () {
        const glob = compileNameGlob(pattern);
        for (const hit of hits) assert.ok(glob.matches(hit), `${pattern} should match ${JSON.stringify(hit)}`);
        for (const miss of misses) assert.ok(!glob.matches(miss), `${pattern} should not match ${JSON.stringify(miss)}`);
      });
    }

    it('refuses an unclosed class, a reversed range and a trailing backslash', function () {
      assert.throws(() => compileNameGlob('order-[ab'), /never closed/);
      assert.throws(() => compileNameGlob('[z-a]'), /end comes before its start/);
      assert.throws(() => compileNameGlob('order\\'), /ends with/);
    });

    it('stays fast on a pattern built to backtrack', function () {
      const glob = compileNameGlob(`${'*a'.repeat(50)}b`);
      const started = process.hrtime.bigint();
      assert.ok(!glob.matches('a'.repeat(256)));
      assert.ok(process.hrtime.bigint() - started < 1_000_000_000n, "linear in the text, not exponential (a backtracking matcher would not finish)");
    });
  });

  describe('evaluate', function () {
    const compiled = compileWorkflowAccess([{ resource: SHOP_CHECKOUT, file: 'policies.yaml' }]);

    it('allows everyone when no policy is loaded (open by default)', function () {
      const decision = evaluateWorkflowAccess(OPEN_WORKFLOW_ACCESS, request('intruder', 'schedule', 'refund'));
      assert.equal(decision.allowed, true);
      assert.equal(decision.rule, 'no-policy');
      assert.equal(decision.source, 'workflow-policy');
    });

    it('always allows the app itself, even against a policy that names no one', function () {
      const closed = compileWorkflowAccess([{ resource: policy('nobody', []), file: 'p.yaml' }]);
      const decision = evaluateWorkflowAccess(closed, request('orders', 'purge', 'refund'));
      assert.equal(decision.allowed, true);
      assert.equal(decision.rule, 'self');
    });

    it('always refuses another namespace, policy or not, the same app id included', function () {
      for (const access of [OPEN_WORKFLOW_ACCESS, compiled]) {
        for (const appId of ['shop', 'orders']) {
          const decision = evaluateWorkflowAccess(access, request(appId, 'schedule', 'checkout', { caller: { appId, namespace: 'other' } }));
          assert.equal(decision.allowed, false);
          assert.equal(decision.rule, 'cross-namespace');
          assert.match(decision.reason, /namespace other/);
        }
      }
    });

    it('is a pure allow-list once a policy is loaded: caller, operation and name must all match', function () {
      const allowed = evaluateWorkflowAccess(compiled, request('shop', 'schedule', 'checkout-express'));
      assert.equal(allowed.allowed, true);
      assert.equal(allowed.rule, 'orders-callers/rules[0].workflows[0]');
      for (const [caller, operation, name] of [
        ['shop', 'schedule', 'refund'],
        ['shop', 'purge', 'checkout'],
        ['shop', 'pause', 'checkout'],
        ['intruder', 'schedule', 'checkout'],
        ['auditor', 'schedule', 'report-2026'],
      ] as const) {
        const denied = evaluateWorkflowAccess(compiled, request(caller, operation, name));
        assert.equal(denied.allowed, false, `${caller} ${operation} ${name}`);
        assert.equal(denied.rule, 'default');
        assert.match(denied.reason, new RegExp(`caller ${caller} to ${operation} workflow '${name}'`));
        assert.equal(denied.caller, `default/${caller}`);
        assert.equal(denied.target, 'orders');
      }
      assert.equal(evaluateWorkflowAccess(compiled, request('auditor', 'get', 'report-2026')).allowed, true);
      assert.equal(evaluateWorkflowAccess(compiled, request('shop', 'get', 'report-2026')).rule, 'orders-callers/rules[1].workflows[0]');
    });

    it('judges activities by their own list, for schedule only', function () {
      assert.equal(evaluateWorkflowAccess(compiled, request('auditor', 'schedule', 'audit-b', { kind: 'activity' })).allowed, true);
      assert.equal(evaluateWorkflowAccess(compiled, request('auditor', 'schedule', 'audit-z', { kind: 'activity' })).allowed, false);
      assert.equal(evaluateWorkflowAccess(compiled, request('auditor', 'get', 'audit-b', { kind: 'activity' })).allowed, false);
    });

    it('refuses the engine\'s own events (activity results, timer fires, child outcomes) from any other app, with or without a policy', function () {
      assert.equal(evaluateWorkflowAccess(compiled, request('shop', undefined, 'checkout')).allowed, false);
      const open = evaluateWorkflowAccess(OPEN_WORKFLOW_ACCESS, request('shop', undefined, 'checkout'));
      assert.equal(open.allowed, false);
      assert.equal(open.rule, 'engine-events');
      assert.equal(evaluateWorkflowAccess(OPEN_WORKFLOW_ACCESS, request('orders', undefined, 'checkout')).allowed, true, 'the app itself delivers them');
    });

    it('combines every loaded policy; a policy without rules allows no other app', function () {
      const closed = compileWorkflowAccess([{ resource: policy('closed', []), file: 'a.yaml' }]);
      assert.equal(evaluateWorkflowAccess(closed, request('shop', 'schedule', 'checkout')).allowed, false);
      const both = compileWorkflowAccess([
        { resource: policy('closed', []), file: 'a.yaml' },
        { resource: SHOP_CHECKOUT, file: 'b.yaml' },
      ]);
      assert.equal(evaluateWorkflowAccess(both, request('shop', 'schedule', 'checkout')).allowed, true);
      assert.deepEqual(both.policies, ['closed', 'orders-callers']);
    });

    it('maps actor calls to operations', function () {
      const started: dt.IHistoryEvent = { executionStarted: { name: 'checkout' } };
      assert.equal(workflowOperationOf('event', started), 'schedule');
      assert.equal(workflowOperationOf('event', { eventRaised: { name: 'approve' } }), 'raise');
      assert.equal(workflowOperationOf('event', { executionTerminated: {} }), 'terminate');
      assert.equal(workflowOperationOf('event', { executionSuspended: {} }), 'pause');
      assert.equal(workflowOperationOf('event', { executionResumed: {} }), 'resume');
      assert.equal(workflowOperationOf('event', { taskCompleted: { taskScheduledId: 1 } }), undefined);
      assert.equal(workflowOperationOf('state', undefined), 'get');
      assert.equal(workflowOperationOf('history', undefined), 'get');
      assert.equal(workflowOperationOf('events', undefined), 'get');
      assert.equal(workflowOperationOf('purge', undefined), 'purge');
    });
  });

  describe('the guard on actor calls', function () {
    const eventCall = (caller: string, event: dt.IHistoryEvent): Parameters<WorkflowAccessGuard['check']>[0] => ({
      method: 'event',
      verb: 'PUT',
      headers: [],
      body: Buffer.from(dt.HistoryEvent.encode(event).finish()),
      caller: { appId: caller, namespace: 'default' },
    });

    it('judges a start by the name it carries, publishes the decision and refuses with ERR_WORKFLOW_ACCESS_DENIED', function () {
      const published: Decision[] = [];
      const guard = new WorkflowAccessGuard(ORDERS, compileWorkflowAccess([{ resource: SHOP_CHECKOUT, file: 'p.yaml' }]), (decision) => published.push(decision));
      guard.check(eventCall('shop', { executionStarted: { name: 'checkout' } }), () => undefined);
      assert.throws(
        () => guard.check(eventCall('shop', { executionStarted: { name: 'refund' } }), () => undefined),
        (error: unknown) => error instanceof SkeinError && error.code === 'ERR_WORKFLOW_ACCESS_DENIED' && error.httpStatus === 403 && /shop.*schedule workflow 'refund'/.test(error.message),
      );
      assert.deepEqual(published.map((decision) => decision.allowed), [true, false]);
    });

    it('judges other operations by the instance\'s workflow name, and lets the app\'s own calls through unrecorded', function () {
      const published: Decision[] = [];
      const guard = new WorkflowAccessGuard(ORDERS, compileWorkflowAccess([{ resource: SHOP_CHECKOUT, file: 'p.yaml' }]), (decision) => published.push(decision));
      guard.check(eventCall('shop', { eventRaised: { name: 'approve' } }), () => 'checkout');
      assert.throws(() => guard.check(eventCall('shop', { executionSuspended: {} }), () => 'checkout'), /pause workflow 'checkout'/);
      guard.check(eventCall('orders', { taskCompleted: { taskScheduledId: 0 } }), () => 'refund');
      assert.equal(published.length, 2);
      guard.use(OPEN_WORKFLOW_ACCESS);
      guard.check(eventCall('intruder', { executionStarted: { name: 'refund' } }), () => undefined);
    });
  });

  describe('loading', function () {
    let dir: string;
    beforeEach(function () {
      dir = mkdtempSync(join(tmpdir(), 'skein-wap-'));
    });
    afterEach(function () {
      rmSync(dir, { recursive: true, force: true });
    });

    function write(name: string, text: string): string {
      const file = join(dir, name);
      writeFileSync(file, text);
      return file;
    }


    const VALID = `apiVersion: dapr.io/v1alpha1
kind: WorkflowAccessPolicy
metadata:
  name: orders-callers
scopes: [orders]
spec:
  rules:
    - callers:
        - appID: shop
      workflows:
        - name: "checkout*"
          operations: [schedule]
      activities:
        - name: "charge-*"
`;

    it('loads Dapr\'s format as written', function () {
      const [loaded] = loadResourceFile(write('policy.yaml', VALID));
      assert.equal(loaded?.kind, 'WorkflowAccessPolicy');
      assert.equal(loaded?.name, 'orders-callers');
    });

    const invalid: Array<[string, string, RegExp, string]> = [
      ['a Skein apiVersion', VALID.replace('dapr.io/v1alpha1', 'skein.dev/v1alpha1'), /dapr\.io\/v1alpha1/, '/apiVersion'],
      ['an unknown operation', VALID.replace('[schedule]', '[schedule, delete]'), /schedule/, '/spec/rules/0/workflows/0/operations/1'],
      ['a rule without callers', VALID.replace('    - callers:\n        - appID: shop\n      workflows:', '    - workflows:'), /callers/, '/spec/rules/0'],
      ['a misspelt field', VALID.replace('      workflows:', '      workflow:'), /unknown field "workflow"/, '/spec/rules/0/workflow'],
      ['a caller written appId', VALID.replace('appID: shop', 'appId: shop'), /appID/, '/spec/rules/0/callers/0'],
      ['a rule with only callers', VALID.replace(/      workflows:[\s\S]*$/, ''), /fewer than 2/, '/spec/rules/0'],
      ['a workflow without operations', VALID.replace('          operations: [schedule]\n', ''), /operations/, '/spec/rules/0/workflows/0'],
      ['a malformed caller App ID', VALID.replace('appID: shop', 'appID: "shop.prod"'), /pattern|App ID/, '/spec/rules/0/callers/0/appID'],
    ];
    for (const [what, text, reason, path] of invalid) {
      it(`refuses ${what}, naming the file and the path`, function () {
        const file = write('policy.yaml', text);
        const error = configError(() => loadResourceFile(file));
        assert.equal(error.location?.file, file);
        assert.equal(error.location?.path, path, error.message);
        assert.match(error.message, reason);
      });
    }

    it('refuses a glob it cannot read when the sidecar compiles its policies, naming file and path', function () {
      const file = write('policy.yaml', VALID.replace('"checkout*"', '"checkout-[ab"'));
      const resources = loadResources([file]);
      const error = configError(() => compileSidecarConfig({ appId: 'orders', namespace: 'default', resources }));
      assert.equal(error.location?.file, file);
      assert.equal(error.location?.path, '/spec/rules/0/workflows/0/name');
    });

    it('applies a policy only to the apps in its scopes and its namespace', function () {
      const file = write('policy.yaml', VALID);
      write('other-namespace.yaml', VALID.replace('name: orders-callers', 'name: elsewhere\n  namespace: prod').replace('scopes: [orders]', ''));
      const resources = loadResources([dir]);
      assert.equal(resources.length, 2, file);
      assert.deepEqual(compileSidecarConfig({ appId: 'orders', namespace: 'default', resources }).workflowAccess.policies, ['orders-callers']);
      assert.deepEqual(compileSidecarConfig({ appId: 'shop', namespace: 'default', resources }).workflowAccess.policies, []);
      assert.deepEqual(compileSidecarConfig({ appId: 'shop', namespace: 'prod', resources }).workflowAccess.policies, ['elsewhere']);
    });
  });
});
