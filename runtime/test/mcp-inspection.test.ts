import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { McpInspectionMiddleware } from '../src/pipeline/mcp-inspection.js';
import { inspectMcpRequest } from '../src/mcp/jsonrpc.js';
import type { Call, CallResponse } from '../src/pipeline/pipeline.js';

function call(body: Buffer | Readable, verb = 'POST', headers: Array<[string, string]> = [['content-type', 'application/json']]): Call {
  return { caller: undefined, target: { appId: 'mcp-server', namespace: 'default' }, verb, method: 'mcp', query: '', headers, body, decisions: [], signal: new AbortController().signal };
}

const ok = (): Promise<CallResponse> => Promise.resolve({ status: 200, headers: [], body: Readable.from([]) });

/** Runs the stage and returns what the next stage saw. */
async function inspected(input: Call): Promise<Call> {
  let seen: Call | undefined;
  await new McpInspectionMiddleware(4 * 1024 * 1024).handle(input, (next) => {
    seen = next;
    return ok();
  });
  assert.ok(seen, 'the stage always calls the next one: it never refuses');
  return seen;
}

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

describe('MCP inspection stage', function () {
  it('reads method, tool, id and trace context once and hands the strict parse on', async function () {
    const body = json({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'get_inventory', arguments: { sku: 'A' }, _meta: { traceparent: '00-x-y-01' } } });
    const seen = await inspected(call(body));
    assert.equal(seen.mcp?.method, 'tools/call');
    assert.equal(seen.mcp?.tool, 'get_inventory');
    assert.equal(seen.mcp?.requestId, 9);
    assert.equal(seen.mcp?.traceparent, '00-x-y-01');
    // The parse the tool policy judges is of these very bytes.
    assert.equal(seen.mcp?.parsed?.body, body);
    const message = seen.mcp?.parsed?.inspection.messages[0];
    assert.equal(message?.kind === 'request' ? message.arguments?.['sku'] : undefined, 'A');
  });

  it('leaves alone what cannot carry MCP messages: GET, DELETE, other content types, streamed and non-JSON-RPC bodies', async function () {
    const body = json({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    assert.equal((await inspected(call(body, 'GET'))).mcp, undefined);
    assert.equal((await inspected(call(body, 'DELETE'))).mcp, undefined);
    assert.equal((await inspected(call(body, 'POST', [['content-type', 'text/plain']]))).mcp, undefined);
    assert.equal((await inspected(call(Readable.from([body])))).mcp, undefined);
    assert.equal((await inspected(call(json({ order: 42 })))).mcp, undefined);
  });

  it('agrees with the tool policy on duplicate keys: a body the policy refuses is never labelled by its last key', async function () {
    const body = Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","name":"drop_table"}}');
    assert.equal(inspectMcpRequest({ body, headers: {} }).ok, false);
    const seen = await inspected(call(body));
    assert.notEqual(seen.mcp?.tool, 'drop_table');
    assert.equal(seen.mcp?.parsed, undefined);
  });

  it('still names the method of a refused message, never its invalid tool name', async function () {
    const seen = await inspected(call(json({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'has space' } })));
    assert.deepEqual({ method: seen.mcp?.method, tool: seen.mcp?.tool, parsed: seen.mcp?.parsed }, { method: 'tools/call', tool: undefined, parsed: undefined });
  });
});
