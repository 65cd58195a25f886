import assert from 'node:assert/strict';
import { CALL_TOOL_ACTIVITY, missingArguments, parseToolWorkflow, planToolStep, type CachedTool } from '../src/mcp/mcpserver/tool-workflows.js';

const TOOLS: CachedTool[] = [{ name: 'forecast', inputSchema: { type: 'object', required: ['city', 'days'] } }, { name: 'a.b', inputSchema: {} }];
const toolsOf = (server: string): readonly CachedTool[] | undefined => (server === 'weather' ? TOOLS : undefined);

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
});
