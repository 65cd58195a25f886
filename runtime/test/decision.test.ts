import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { loadSchema } from '@skein/proto';
import { compileAccessControl, evaluateAccessControl } from '../src/acl/access-control.js';
import { compileToolPolicy, evaluateToolPolicy } from '../src/policy/tool-policy.js';
import { decision, toDecisionEvent, type Decision } from '@skein/core';
import { validateAgainstSchema } from '../src/config/validate.js';
import type { MCPToolPolicyResource } from '../src/config/types.js';

function eventValidator() {
  const ajv = new Ajv({ strict: true, allowUnionTypes: true });
  ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
  return ajv.compile(loadSchema('decision-event'));
}

describe('decisions', () => {
  const validate = eventValidator();

  it('drops undefined optional fields and freezes', () => {
    const made = decision({ allowed: true, source: 'acl', rule: 'default', reason: 'r', caller: 'c', target: 't', method: undefined, tool: undefined });
    assert.deepEqual(Object.keys(made), ['allowed', 'source', 'rule', 'reason', 'caller', 'target']);
    assert.ok(Object.isFrozen(made));
  });

  it('events from every source match the published schema', () => {
    const decisions: Decision[] = [
      evaluateAccessControl(compileAccessControl({ defaultAction: 'deny' }, 'x', { target: 'mcp-server' }), { caller: { appId: 'a', namespace: 'default', trustDomain: 'public' }, operation: 'mcp', httpVerb: 'POST' }),
      evaluateAccessControl(compileAccessControl({ defaultAction: 'deny' }, 'x'), { caller: 'malformed', operation: 'mcp' }),
      evaluateToolPolicy(
        compileToolPolicy({ apiVersion: 'skein.dev/v1alpha1', kind: 'MCPToolPolicy', metadata: { name: 'p' }, spec: { rules: [{ name: 'w', tools: ['t'], requiredScopes: ['s'], action: 'allow' }] } }, 'x', { target: 'mcp-server' }),
        { callerAppId: 'a', method: 'tools/call', toolName: 't' },
      ),
      decision({ allowed: false, source: 'jwt', rule: 'bearer-validator', reason: 'the bearer token expired', caller: 'anonymous', target: 'mcp-server' }),
    ];
    for (const made of decisions) {
      const event = toDecisionEvent(made, { time: new Date('2026-11-21T10:15:30.123Z'), appId: 'mcp-server', namespace: 'default', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', requestId: 7, batchIndex: 0 });
      assert.ok(validate(JSON.parse(JSON.stringify(event))), JSON.stringify(validate.errors));
      assert.equal(event.decision, made);
    }
    assert.ok(validate(JSON.parse(JSON.stringify(toDecisionEvent(decisions[0] as Decision, { time: new Date(), appId: 'a', namespace: 'n' })))));
  });

  it('the schema refuses a malformed event', () => {
    assert.equal(validate({ version: 1, time: 'yesterday', appId: 'a', namespace: 'n', decision: {} }), false);
    assert.equal(validate({ version: 2, time: '2026-11-21T10:15:30Z', appId: 'a', namespace: 'n', decision: { allowed: true, source: 'acl', rule: 'r', reason: 'x', caller: 'c', target: 't' } }), false);
  });

  it("every schema's own examples are valid, so editor hovers never show a broken example", () => {
    for (const kind of ['MCPToolPolicy', 'Component'] as const) {
      const examples = loadSchema(kind)['examples'] as unknown[];
      assert.ok(examples.length > 0);
      for (const example of examples) validateAgainstSchema(kind, example, `${kind} example`);
    }
    const policyExample = (loadSchema('MCPToolPolicy')['examples'] as MCPToolPolicyResource[])[0] as MCPToolPolicyResource;
    const compiled = compileToolPolicy(policyExample, 'example');
    assert.equal(evaluateToolPolicy(compiled, { callerAppId: 'ops-agent', method: 'tools/call', toolName: 'update_stock', arguments: { quantity: 5000 } }).rule, 'no-big-updates');
    for (const example of loadSchema('decision-event')['examples'] as unknown[]) assert.ok(validate(example), JSON.stringify(validate.errors));
  });
});
