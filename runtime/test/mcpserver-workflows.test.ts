import assert from 'node:assert/strict';
import { CALL_TOOL_ACTIVITY, missingArguments, parseToolWorkflow, planToolStep, type CachedTool } from '../src/mcp/mcpserver/tool-workflows.js';

const TOOLS: CachedTool[] = [{ name: 'forecast', inputSchema: { type: 'object', required: ['city', 'days'] } }, { name: 'a.b', inputSchema: {} }];
const toolsOf = { tools: (server: string): readonly CachedTool[] | undefined => (server === 'weather' ? TOOLS : undefined) };

function started(name: string, input: unknown): object {
  return { eventId: -1, executionStarted: { name, input: { value: JSON.stringify(input) }, orchestrationInstance: { instanceId: 'i1' } } };
}

function resultOf(response: ReturnType<typeof planToolStep>): unknown {
  const value = response.actions?.[0]?.completeOrchestration?.result?.value;
  return value === undefined || value === null ? undefined : JSON.parse(value);
}

describe('MCPServer workflows (pure: names, argument checks, one orchestration step)', function () {
  it("parses Dapr's names; everything after .CallTool. is the tool, dots included", function () {
    assert.deepEqual(parseToolWorkflow('dapr.internal.mcp.weather.ListTools'), { server: 'weather', kind: 'list' });
    assert.deepEqual(parseToolWorkflow('dapr.internal.mcp.weather.CallTool.forecast'), { server: 'weather', kind: 'call', tool: 'forecast' });
    assert.deepEqual(parseToolWorkflow('dapr.internal.mcp.weather.CallTool.a.b'), { server: 'weather', kind: 'call', tool: 'a.b' });
    for (const other of ['checkout', 'dapr.internal.mcp.weather', 'dapr.internal.mcp.weather.CallTool.', 'dapr.internal.mcp..ListTools', 'dapr.internal.mcp.weather.Other']) {
      assert.equal(parseToolWorkflow(other), undefined, other);
    }
  });

  it('names the required arguments that are missing, in the schema order', function () {
    assert.deepEqual(missingArguments({ required: ['city', 'days'] }, { days: 2 }), ['city']);
    assert.deepEqual(missingArguments({ required: ['city'] }, { city: null }), [], 'present, even as null');
    assert.deepEqual(missingArguments({}, {}), []);
    assert.deepEqual(missingArguments(null, {}), []);
  });

  it('schedules the call once, then completes with the result the activity recorded', function () {
    const first = planToolStep({ instanceId: 'i1', pastEvents: [], newEvents: [{ orchestratorStarted: {} }, started('dapr.internal.mcp.weather.CallTool.forecast', { arguments: { city: 'Oslo', days: 2 } })] }, toolsOf);
    assert.deepEqual(first.actions, [{ id: 1, scheduleTask: { name: CALL_TOOL_ACTIVITY, input: { value: JSON.stringify({ server: 'weather', tool: 'forecast', arguments: { city: 'Oslo', days: 2 } }) } } }]);
    const past = [{ orchestratorStarted: {} }, started('dapr.internal.mcp.weather.CallTool.forecast', { arguments: { city: 'Oslo', days: 2 } }), { eventId: 1, taskScheduled: { name: CALL_TOOL_ACTIVITY } }];
    assert.deepEqual(planToolStep({ instanceId: 'i1', pastEvents: past, newEvents: [{ orchestratorStarted: {} }] }, toolsOf).actions, [], 'waiting for the call');
    const result = { content: [{ type: 'text', text: 'sunny' }] };
    const done = planToolStep({ instanceId: 'i1', pastEvents: past, newEvents: [{ taskCompleted: { taskScheduledId: 1, result: { value: JSON.stringify(result) } } }] }, toolsOf);
    assert.deepEqual(resultOf(done), result);
    const failed = planToolStep({ instanceId: 'i1', pastEvents: past, newEvents: [{ taskFailed: { taskScheduledId: 1, failureDetails: { errorMessage: 'too large' } } }] }, toolsOf);
    assert.deepEqual(resultOf(failed), { content: [{ type: 'text', text: `tool 'forecast' of MCPServer "weather" failed: too large` }], isError: true });
  });

  it('completes at once with isError, scheduling nothing, for a missing argument, an unknown tool or server, or a malformed input', function () {
    const step = (name: string, input: unknown): unknown => {
      const response = planToolStep({ instanceId: 'i1', newEvents: [started(name, input)] }, toolsOf);
      assert.equal(response.actions?.length, 1);
      assert.equal(response.actions?.[0]?.scheduleTask, undefined);
      return resultOf(response);
    };
    assert.deepEqual(step('dapr.internal.mcp.weather.CallTool.forecast', { arguments: { city: 'Oslo' } }), { content: [{ type: 'text', text: "tool 'forecast' needs the argument 'days'" }], isError: true });
    assert.deepEqual(step('dapr.internal.mcp.weather.CallTool.forecast', {}), { content: [{ type: 'text', text: "tool 'forecast' needs the arguments 'city', 'days'" }], isError: true });
    assert.deepEqual(step('dapr.internal.mcp.weather.CallTool.nope', { arguments: {} }), { content: [{ type: 'text', text: `MCPServer "weather" has no tool 'nope'` }], isError: true });
    assert.deepEqual(step('dapr.internal.mcp.elsewhere.ListTools', {}), { content: [{ type: 'text', text: 'MCPServer "elsewhere" is not loaded on this sidecar' }], isError: true });
    assert.match(JSON.stringify(step('dapr.internal.mcp.weather.CallTool.forecast', { arguments: 'Oslo' })), /\\"arguments\\" must be an object/);
    assert.deepEqual(step('dapr.internal.mcp.weather.ListTools', {}), { tools: TOOLS });
  });

  describe('hooks, run as child workflows in array order', function () {
    const hooks = {
      beforeCallTool: [{ workflow: { workflowName: 'rbac' } }, { workflow: { workflowName: 'fill' }, mutate: true }],
      afterCallTool: [{ workflow: { workflowName: 'redact' }, mutate: true }, { workflow: { workflowName: 'audit' } }],
      afterListTools: [{ workflow: { workflowName: 'broken' } }],
    };
    const servers = { ...toolsOf, hooks: () => hooks, appId: 'gateway' };
    const start = started('dapr.internal.mcp.weather.CallTool.forecast', { arguments: { city: 'Oslo' } });
    const childDone = (id: number, result: unknown): object => ({ subOrchestrationInstanceCompleted: { taskScheduledId: id, result: { value: JSON.stringify(result) } } });
    const childFailed = (id: number, message: string): object => ({ subOrchestrationInstanceFailed: { taskScheduledId: id, failureDetails: { errorMessage: message } } });
    const created = (id: number): object => ({ eventId: id, subOrchestrationInstanceCreated: {} });
    const step = (past: object[]): ReturnType<typeof planToolStep> => planToolStep({ instanceId: 'c1', pastEvents: [start, ...past], newEvents: [] }, servers);

    it("gives each hook the seed's input; a mutating before-hook replaces the arguments the call and the later hooks get", function () {
      assert.deepEqual(step([]).actions, [{ id: 1, createSubOrchestration: { instanceId: 'c1-hook-1', name: 'rbac', input: { value: JSON.stringify({ name: 'weather', toolName: 'forecast', arguments: { city: 'Oslo' } }) } } }]);
      assert.deepEqual(step([created(1)]).actions, [], 'waiting for the hook');
      const second = step([created(1), childDone(1, 'ignored: rbac does not mutate')]);
      assert.equal(second.actions?.[0]?.createSubOrchestration?.name, 'fill');
      const afterFill = [created(1), childDone(1, null), created(2), childDone(2, { city: 'Oslo', days: 3 })];
      assert.deepEqual(step(afterFill).actions, [{ id: 3, scheduleTask: { name: CALL_TOOL_ACTIVITY, input: { value: JSON.stringify({ server: 'weather', tool: 'forecast', arguments: { city: 'Oslo', days: 3 } }) } } }]);
      const called = [...afterFill, { eventId: 3, taskScheduled: {} }, { taskCompleted: { taskScheduledId: 3, result: { value: JSON.stringify({ content: [{ type: 'text', text: 'secret forecast' }] }) } } }];
      assert.deepEqual(JSON.parse(step(called).actions?.[0]?.createSubOrchestration?.input?.value ?? '{}'), { name: 'weather', toolName: 'forecast', arguments: { city: 'Oslo', days: 3 }, result: { content: [{ type: 'text', text: 'secret forecast' }] } });
      const redacted = [...called, created(4), childDone(4, { content: [{ type: 'text', text: '[redacted]' }] })];
      assert.equal(step(redacted).actions?.[0]?.createSubOrchestration?.name, 'audit');
      assert.deepEqual(resultOf(step([...redacted, created(5), childDone(5, 'logged')])), { content: [{ type: 'text', text: '[redacted]' }] }, 'the mutated result, not the audit output');
    });

    it('stops the chain with isError when a before-hook fails (the server never sees the call); fails the workflow when an after-hook fails', function () {
      const denied = step([created(1), childFailed(1, 'shop may not call forecast')]);
      assert.deepEqual(resultOf(denied), { content: [{ type: 'text', text: "hook 'rbac' stopped the call of tool 'forecast': shop may not call forecast" }], isError: true });
      const called = [created(1), childDone(1, null), created(2), childDone(2, { city: 'Oslo', days: 1 }), { eventId: 3, taskScheduled: {} }, { taskCompleted: { taskScheduledId: 3, result: { value: '{}' } } }];
      const failed = step([...called, created(4), childFailed(4, 'redactor down')]);
      assert.equal(failed.actions?.[0]?.completeOrchestration?.orchestrationStatus, 3);
      assert.match(failed.actions?.[0]?.completeOrchestration?.failureDetails?.errorMessage ?? '', /hook 'redact' failed after tool 'forecast' ran: redactor down/);
    });

    it('keeps the listing when an afterListTools hook fails, and refuses hooks on another app', function () {
      const list = started('dapr.internal.mcp.weather.ListTools', {});
      const listed = planToolStep({ instanceId: 'l1', pastEvents: [list, created(1), childFailed(1, 'boom')], newEvents: [] }, servers);
      assert.deepEqual(resultOf(listed), { tools: TOOLS });
      const remote = { ...toolsOf, hooks: () => ({ beforeCallTool: [{ workflow: { workflowName: 'rbac', appID: 'policy-app' } }] }), appId: 'gateway' };
      assert.deepEqual(resultOf(planToolStep({ instanceId: 'c2', newEvents: [start] }, remote)), { content: [{ type: 'text', text: "hook workflow 'rbac' runs on app 'policy-app': hooks on another app are not supported yet" }], isError: true });
    });
  });
});
