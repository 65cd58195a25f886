import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { loadResourceFile } from '../src/config/load.js';
import type { MCPToolPolicyResource } from '../src/config/types.js';
import { parseStrictJson } from '../src/mcp/json.js';
import {
  decodeMcpHeaderValue,
  deniedResponse,
  inspectMcpRequest,
  JSONRPC_CODES,
  mcpParamHeaders,
  mergeBatchAnswers,
  parseJsonRpcBody,
  problemResponse,
  rewriteBatch,
  transformJsonRpcResponses,
  type InspectedRequest,
  type JsonRpcInspection,
  type JsonRpcProblem,
} from '../src/mcp/jsonrpc.js';
import { compileToolPolicy, evaluateToolPolicy, filterToolsListResponse } from '../src/policy/tool-policy.js';

type Ok = Extract<JsonRpcInspection, { ok: true }>;

function ok(inspection: JsonRpcInspection): Ok {
  if (!inspection.ok) assert.fail(`expected the body to be accepted, got ${inspection.problem.message} at ${inspection.problem.where}`);
  return inspection;
}

function refused(inspection: JsonRpcInspection): JsonRpcProblem {
  if (inspection.ok) assert.fail('expected the body to be refused');
  return inspection.problem;
}

const call = (id: number | string, name: string, args: Record<string, unknown> = {}, meta?: Record<string, unknown>) =>
  JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) } });

const MODERN_META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };

describe('MCP JSON-RPC inspector', () => {
  describe('parsing', () => {
    it('reads a tools/call request: id, method, tool and arguments', () => {
      const inspection = ok(parseJsonRpcBody(Buffer.from(call(7, 'get_inventory', { product_id: 'p1', n: 2 }))));
      assert.equal(inspection.batch, false);
      const [message] = inspection.messages;
      assert.equal(message?.kind, 'request');
      const request = message;
      assert.equal(request.id, 7);
      assert.equal(request.method, 'tools/call');
      assert.equal(request.toolName, 'get_inventory');
      assert.equal(request.mirroredName, 'get_inventory');
      assert.deepEqual(request.arguments, { product_id: 'p1', n: 2 });
    });

    it('reads notifications and responses', () => {
      assert.equal(ok(parseJsonRpcBody('{"jsonrpc":"2.0","method":"notifications/initialized"}')).messages[0]?.kind, 'notification');
      assert.equal(ok(parseJsonRpcBody('{"jsonrpc":"2.0","id":"s-1","result":{}}')).messages[0]?.kind, 'response');
      assert.equal(ok(parseJsonRpcBody('{"jsonrpc":"2.0","id":null,"error":{"code":1,"message":"x"}}')).messages[0]?.kind, 'response');
    });

    it('a tools/call without arguments has empty arguments', () => {
      const request = ok(parseJsonRpcBody('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}')).messages[0] as InspectedRequest;
      assert.deepEqual(request.arguments, {});
    });

    const parseErrors: Array<[string, string | Uint8Array, RegExp]> = [
      ['not JSON', 'hello', /line 1, column 1/],
      ['truncated', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"', /line 1/],
      ['trailing text', '{"jsonrpc":"2.0","id":1,"method":"ping"} {"jsonrpc":"2.0","id":2,"method":"ping"}', /line 1, column 42/],
      ['trailing comma', '{"jsonrpc":"2.0","id":1,"method":"ping",}', /line 1/],
      ['single quotes', "{'jsonrpc':'2.0'}", /line 1, column 2/],
      ['a comment', '{"jsonrpc":"2.0", /* x */ "id":1,"method":"ping"}', /line 1/],
      ['a raw newline in a string', '{"jsonrpc":"2.0","id":1,"method":"pi\nng"}', /line 1/],
      ['a bad escape', '{"jsonrpc":"2.0","id":1,"method":"\\x41"}', /line 1/],
      ['a leading zero', '{"jsonrpc":"2.0","id":01,"method":"ping"}', /line 1/],
      ['NaN', '{"jsonrpc":"2.0","id":NaN,"method":"ping"}', /line 1/],
      ['an empty body', '', /line 1, column 1/],
      ['invalid UTF-8', Uint8Array.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), /^\/$/],
      ['a byte-order mark', '\ufeff{"jsonrpc":"2.0","id":1,"method":"ping"}', /line 1, column 1/],
      ['multi-line', '{\n  "jsonrpc": "2.0",\n  "id": 1,\n  "method": ping\n}', /line 4, column 13/],
    ];
    for (const [title, body, where] of parseErrors) {
      it(`parse error -32700: ${title}`, () => {
        const problem = refused(parseJsonRpcBody(body));
        assert.equal(problem.code, JSONRPC_CODES.PARSE_ERROR);
        assert.equal(problem.httpStatus, 400);
        assert.equal(problem.errorCode, 'ERR_MALFORMED_REQUEST');
        assert.match(problem.where, where);
      });
    }

    const invalidRequests: Array<[string, string, number, string, string | number | null]> = [
      ['not an object', '"ping"', -32600, '/', null],
      ['no jsonrpc', '{"id":1,"method":"ping"}', -32600, '/jsonrpc', 1],
      ['jsonrpc 1.0', '{"jsonrpc":"1.0","id":1,"method":"ping"}', -32600, '/jsonrpc', 1],
      ['method not a string', '{"jsonrpc":"2.0","id":1,"method":7}', -32600, '/method', 1],
      ['empty method', '{"jsonrpc":"2.0","id":1,"method":""}', -32600, '/method', 1],
      ['null id', '{"jsonrpc":"2.0","id":null,"method":"ping"}', -32600, '/id', null],
      ['fractional id', '{"jsonrpc":"2.0","id":1.5,"method":"ping"}', -32600, '/id', null],
      ['object id', '{"jsonrpc":"2.0","id":{},"method":"ping"}', -32600, '/id', null],
      ['params as array', '{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}', -32602, '/params', 1],
      ['tools/call without a name', '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"arguments":{}}}', -32602, '/params/name', 2],
      ['tools/call without params', '{"jsonrpc":"2.0","id":2,"method":"tools/call"}', -32602, '/params/name', 2],
      ['tools/call with a numeric name', '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":5}}', -32602, '/params/name', 2],
      ['tools/call with array arguments', '{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"t","arguments":[1]}}', -32602, '/params/arguments', 'a'],
      ['request and response at once', '{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}', -32600, '/', 1],
      ['result and error', '{"jsonrpc":"2.0","id":1,"result":{},"error":{}}', -32600, '/', 1],
      ['neither method nor result', '{"jsonrpc":"2.0","id":1}', -32600, '/', 1],
      ['response without id', '{"jsonrpc":"2.0","result":{}}', -32600, '/id', null],
      ['an empty batch', '[]', -32600, '/', null],
    ];
    for (const [title, body, code, where, id] of invalidRequests) {
      it(`invalid request ${code}: ${title}`, () => {
        const problem = refused(parseJsonRpcBody(body));
        assert.equal(problem.code, code);
        assert.equal(problem.where, where);
        assert.equal(problem.id, id);
      });
    }

    it('refuses duplicate keys, which parsers resolve differently (smuggling a second tool name)', () => {
      const body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_inventory","name":"drop_table","arguments":{}}}';
      const problem = refused(parseJsonRpcBody(body));
      assert.equal(problem.code, JSONRPC_CODES.INVALID_REQUEST);
      assert.equal(problem.where, '/params/name');
      assert.match(problem.message, /repeats a key/);
      assert.equal(refused(parseJsonRpcBody('{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}')).where, '/id');
    });

    it('keeps a "__proto__" key as data', () => {
      const request = ok(parseJsonRpcBody('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"__proto__":{"admin":true}}}}')).messages[0] as InspectedRequest;
      assert.equal(Object.getPrototypeOf(request.arguments), Object.prototype);
      assert.deepEqual(Object.keys(request.arguments ?? {}), ['__proto__']);
      assert.equal((request.arguments as Record<string, unknown> & { admin?: unknown }).admin, undefined);
    });

    it('refuses nesting deeper than the limit without exhausting the stack', () => {
      const deep = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":${'['.repeat(100)}${']'.repeat(100)}}}}`;
      const problem = refused(parseJsonRpcBody(deep));
      assert.equal(problem.code, JSONRPC_CODES.INVALID_REQUEST);
      assert.match(problem.message, /nests too deeply/);
      assert.match(problem.where, /^\/params\/arguments\/a\/0\/0/);
      assert.equal(refused(parseJsonRpcBody('['.repeat(1_000_000))).code, JSONRPC_CODES.INVALID_REQUEST);
      assert.equal(refused(parseJsonRpcBody('{"a":'.repeat(200_000))).code, JSONRPC_CODES.INVALID_REQUEST);
      ok(parseJsonRpcBody(deep, { limits: { maxDepth: 200 } }));
    });

    it('refuses a huge body before parsing it (413)', () => {
      const huge = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
      const started = Date.now();
      const problem = refused(parseJsonRpcBody(huge));
      assert.ok(Date.now() - started < 50);
      assert.equal(problem.httpStatus, 413);
      assert.equal(problem.errorCode, 'ERR_BODY_TOO_LARGE');
      assert.equal(refused(parseJsonRpcBody(call(1, 't', { blob: 'x'.repeat(2000) }), { limits: { maxBytes: 1024 } })).httpStatus, 413);
    });

    it('parses a large valid body', () => {
      const args = { rows: Array.from({ length: 20_000 }, (_, index) => ({ id: index, name: `row ${index}`, ok: index % 2 === 0, v: index / 3 })) };
      const request = ok(parseJsonRpcBody(Buffer.from(call(1, 'import', args)))).messages[0] as InspectedRequest;
      assert.deepEqual(request.arguments, args);
    });

    it('refuses a batch over the length limit', () => {
      const batch = `[${Array.from({ length: 101 }, (_, index) => call(index, 't')).join(',')}]`;
      const problem = refused(parseJsonRpcBody(batch));
      assert.match(problem.message, /101 messages/);
      ok(parseJsonRpcBody(batch, { limits: { maxBatchLength: 101 } }));
    });

    it('agrees with JSON.parse on everything it accepts', () => {
      for (const text of ['{"a":[1,-2.5e3,0,true,false,null,"\\u00e9\\n\\"\\\\\\/"],"b":{}}', '[]', '"x"', '0', '{"k":"\ud83d\ude00"}', ' \t\n{"a" : 1 }\r\n']) {
        assert.deepEqual(parseStrictJson(text, 10).value, JSON.parse(text));
      }
    });
  });

  describe('batches (protocol 2025-03-26 only)', () => {
    const policyFile = fileURLToPath(new URL('../../../samples/policies/inventory-tools.yaml', import.meta.url));
    const [loaded] = loadResourceFile(policyFile);
    const compiled = compileToolPolicy(loaded?.value as MCPToolPolicyResource, policyFile, { target: 'mcp-server' });

    const smuggling = `[
      {"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_inventory","arguments":{"product_id":"p1","qty":1.50,"big":12345678901234567890}}},
      ${call(2, 'drop_table', { table: 'orders' })},
      {"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":9}},
      {"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"arguments":{}}},
      {"jsonrpc":"2.0","id":5,"method":"tools/list"}
    ]`;

    it('judges each entry: the forbidden call is never forwarded, the allowed ones are, byte for byte', () => {
      const inspection = ok(inspectMcpRequest({ body: smuggling, headers: { 'MCP-Protocol-Version': '2025-03-26' } }));
      assert.equal(inspection.batch, true);
      const decisions = new Map<number, string>();
      const plan = rewriteBatch(inspection, (message) => {
        if (message.kind === 'response') return undefined;
        const made = evaluateToolPolicy(compiled, {
          callerAppId: 'analyst-agent',
          method: message.method,
          toolName: message.kind === 'request' ? message.toolName : undefined,
          arguments: message.kind === 'request' ? message.arguments : undefined,
        });
        decisions.set(message.index, made.rule);
        return made.allowed ? undefined : deniedResponse(message.kind === 'request' ? message.id : null, made);
      });
      assert.deepEqual(plan.forwarded, [0, 4]);
      assert.ok(plan.forward);
      assert.ok(!plan.forward.includes('drop_table'));
      assert.ok(!plan.forward.includes('notifications/cancelled'));
      // Byte for byte: numbers keep their spelling even where JavaScript would change them.
      assert.ok(plan.forward.includes('"qty":1.50'));
      assert.ok(plan.forward.includes('12345678901234567890'));
      const forwarded = JSON.parse(plan.forward) as Array<{ id: number }>;
      assert.deepEqual(forwarded.map((entry) => entry.id), [1, 5]);
      assert.equal(plan.answers.length, 2, 'one for the denied call, one for the invalid entry; none for the notification');
      const [denied, invalid] = plan.answers;
      assert.equal(denied?.id, 2);
      assert.equal(denied?.error.code, JSONRPC_CODES.SKEIN_FORBIDDEN);
      assert.deepEqual(denied?.error.data, {
        errorCode: 'ERR_MCP_TOOL_DENIED',
        source: 'tool-policy',
        rule: 'default',
        reason: 'no rule of policy "inventory-tools" matches tools/call "drop_table", so the default action "deny" applies',
        tool: 'drop_table',
      });
      assert.match(denied?.error.message ?? '', /^denied by tool-policy rule "default": /);
      assert.equal(invalid?.id, 4);
      assert.equal(invalid?.error.code, JSONRPC_CODES.INVALID_PARAMS);
      assert.equal(decisions.get(1), 'default');
      assert.equal(decisions.get(0), 'analyst-agent-tools');
    });

    it('when every entry is refused nothing is forwarded', () => {
      const inspection = ok(parseJsonRpcBody(`[${call(1, 'drop_table')},${call(2, 'update_stock')}]`));
      const plan = rewriteBatch(inspection, (message) => (message.kind === 'request' ? deniedResponse(message.id, evaluateToolPolicy(compiled, { callerAppId: 'analyst-agent', method: message.method, toolName: message.toolName })) : undefined));
      assert.equal(plan.forward, undefined);
      assert.deepEqual(plan.answers.map((answer) => answer.id), [1, 2]);
    });

    it('a single message is forwarded as sent, or answered', () => {
      const body = call(3, 'get_schema');
      const plan = rewriteBatch(ok(parseJsonRpcBody(body)), () => undefined);
      assert.equal(plan.forward, body);
      const refusedPlan = rewriteBatch(ok(parseJsonRpcBody(body)), () => problemResponse(refused(parseJsonRpcBody('x'))));
      assert.equal(refusedPlan.forward, undefined);
    });

    it('merges the server answer with the sidecar answers', () => {
      const answers = [deniedResponse(2, evaluateToolPolicy(compiled, { callerAppId: 'x', method: 'tools/call', toolName: 'drop_table' }))];
      const merged = JSON.parse(mergeBatchAnswers('[{"jsonrpc":"2.0","id":1,"result":{}}]', answers) ?? '[]') as Array<{ id: number }>;
      assert.deepEqual(merged.map((entry) => entry.id), [1, 2]);
      assert.equal((JSON.parse(mergeBatchAnswers(undefined, answers) ?? '[]') as unknown[]).length, 1);
      assert.equal(mergeBatchAnswers('', []), undefined);
    });

    it('batches are refused outside 2025-03-26', () => {
      const batch = `[${call(1, 'get_schema')}]`;
      ok(inspectMcpRequest({ body: batch, headers: {} }));
      ok(inspectMcpRequest({ body: batch, headers: { 'mcp-protocol-version': '2025-03-26' } }));
      for (const version of ['2025-06-18', '2025-11-25', '2026-07-28', '2024-11-05']) {
        const problem = refused(inspectMcpRequest({ body: batch, headers: { 'mcp-protocol-version': version } }));
        assert.equal(problem.code, JSONRPC_CODES.INVALID_REQUEST, version);
        assert.match(problem.message, /batches exist only in protocol 2025-03-26/);
      }
      const modernBody = `[${call(1, 'get_schema', {}, MODERN_META)}]`;
      assert.equal(refused(inspectMcpRequest({ body: modernBody, headers: {} })).code, JSONRPC_CODES.INVALID_REQUEST);
    });

    it('initialize may not be batched', () => {
      const problem = refused(inspectMcpRequest({ body: '[{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}]', headers: {} }));
      assert.match(problem.message, /initialize/);
      assert.equal(problem.id, 1);
    });

    it('a batch that is not an array of objects', () => {
      const inspection = ok(parseJsonRpcBody('[1, "x", null]'));
      assert.ok(inspection.messages.every((message) => message.kind === 'invalid'));
      const plan = rewriteBatch(inspection, () => undefined);
      assert.equal(plan.forward, undefined);
      assert.equal(plan.answers.length, 3);
    });
  });

  describe('protocol 2026-07-28 mirrored headers', () => {
    const body = call(1, 'get_inventory', { region: 'us-west1', count: 42, urgent: true, nested: { zone: 'b' } }, MODERN_META);
    const good = { 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/call', 'Mcp-Name': 'get_inventory' };

    it('matching headers pass', () => {
      const inspection = ok(inspectMcpRequest({ body, headers: good }));
      assert.equal(inspection.protocolVersion, '2026-07-28');
    });

    it('header names are case-insensitive', () => {
      ok(inspectMcpRequest({ body, headers: { 'mcp-protocol-version': '2026-07-28', 'MCP-METHOD': 'tools/call', 'mcp-name': 'get_inventory' } }));
    });

    const mismatches: Array<[string, Record<string, string | string[] | undefined>, RegExp, string]> = [
      ['Mcp-Name names another tool', { ...good, 'Mcp-Name': 'drop_table' }, /Mcp-Name header value 'drop_table' does not match body value 'get_inventory'/, 'header Mcp-Name'],
      ['Mcp-Method names another method', { ...good, 'Mcp-Method': 'tools/list' }, /Mcp-Method header value 'tools\/list'/, 'header Mcp-Method'],
      ['Mcp-Method is missing', { ...good, 'Mcp-Method': undefined }, /Mcp-Method is required/, 'header Mcp-Method'],
      ['Mcp-Name is missing', { ...good, 'Mcp-Name': undefined }, /Mcp-Name is required/, 'header Mcp-Name'],
      ['the version header is missing', { ...good, 'MCP-Protocol-Version': undefined }, /MCP-Protocol-Version is required|does not match/, 'header MCP-Protocol-Version'],
      ['the version header disagrees with _meta', { ...good, 'MCP-Protocol-Version': '2027-01-01' }, /MCP-Protocol-Version header value '2027-01-01' does not match body value '2026-07-28'/, 'header MCP-Protocol-Version'],
      ['an old version header with a modern body', { ...good, 'MCP-Protocol-Version': '2025-11-25' }, /does not match/, 'header MCP-Protocol-Version'],
      ['Mcp-Name is sent twice', { ...good, 'Mcp-Name': ['get_inventory', 'drop_table'] }, /more than once/, 'header Mcp-Name'],
      ['Mcp-Name joined from two headers', { ...good, 'Mcp-Name': 'get_inventory, drop_table' }, /does not match/, 'header Mcp-Name'],
      ['Mcp-Name with broken base64', { ...good, 'Mcp-Name': '=?base64?!!!?=' }, /malformed/, 'header Mcp-Name'],
      ['Mcp-Name with non-ASCII text', { ...good, 'Mcp-Name': 'get_inventorÿ' }, /malformed/, 'header Mcp-Name'],
    ];
    for (const [title, headers, message, where] of mismatches) {
      it(`400 / -32020 when ${title}`, () => {
        const problem = refused(inspectMcpRequest({ body, headers }));
        assert.equal(problem.code, JSONRPC_CODES.HEADER_MISMATCH);
        assert.equal(problem.httpStatus, 400);
        assert.equal(problem.errorCode, 'ERR_MCP_HEADER_MISMATCH');
        assert.equal(problem.id, 1);
        assert.equal(problem.where, where);
        assert.match(problem.message, message);
        const answer = problemResponse(problem);
        assert.equal(answer.id, 1);
        assert.equal(answer.error.code, -32020);
      });
    }

    it('Mcp-Name in the Base64 sentinel form is decoded before comparing', () => {
      // Tool names are ASCII only; a prompt name may be any text, so it is what needs the sentinel form.
      const name = 'summarise ÿ 世界';
      const unicodeBody = JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'prompts/get', params: { name, _meta: MODERN_META } });
      const encoded = `=?base64?${Buffer.from(name).toString('base64')}?=`;
      ok(inspectMcpRequest({ body: unicodeBody, headers: { ...good, 'Mcp-Method': 'prompts/get', 'Mcp-Name': encoded } }));
      const wrong = `=?base64?${Buffer.from('summarise ÿ').toString('base64')}?=`;
      assert.equal(refused(inspectMcpRequest({ body: unicodeBody, headers: { ...good, 'Mcp-Method': 'prompts/get', 'Mcp-Name': wrong } })).code, -32020);
      assert.equal(decodeMcpHeaderValue('=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?='), '=?base64?literal?=');
      assert.equal(decodeMcpHeaderValue('=?base64?abc?='), undefined);
    });

    it('an Mcp-Name on a method that names nothing is refused', () => {
      const list = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: { _meta: MODERN_META } });
      ok(inspectMcpRequest({ body: list, headers: { 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/list' } }));
      assert.equal(refused(inspectMcpRequest({ body: list, headers: { 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/list', 'Mcp-Name': 'drop_table' } })).code, -32020);
    });

    it('resources/read mirrors params.uri', () => {
      const read = JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'resources/read', params: { uri: 'file:///a.json', _meta: MODERN_META } });
      ok(inspectMcpRequest({ body: read, headers: { 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'resources/read', 'Mcp-Name': 'file:///a.json' } }));
      assert.equal(refused(inspectMcpRequest({ body: read, headers: { 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'resources/read', 'Mcp-Name': 'file:///b.json' } })).code, -32020);
    });

    it('a body without its protocol version under a modern header is refused', () => {
      const bare = call(1, 'get_inventory');
      assert.equal(refused(inspectMcpRequest({ body: bare, headers: good })).code, -32020);
    });

    describe('Mcp-Param-* headers (x-mcp-header)', () => {
      const annotations = mcpParamHeaders({
        type: 'object',
        properties: {
          region: { type: 'string', 'x-mcp-header': 'Region' },
          count: { type: 'integer', 'x-mcp-header': 'Count' },
          urgent: { type: 'boolean', 'x-mcp-header': 'Urgent' },
          nested: { type: 'object', properties: { zone: { type: 'string', 'x-mcp-header': 'Zone' } } },
          missing: { type: 'string', 'x-mcp-header': 'Missing' },
        },
      });
      const paramHeadersOf = (tool: string) => (tool === 'get_inventory' ? annotations : undefined);
      const params = { 'Mcp-Param-Region': 'us-west1', 'Mcp-Param-Count': '42', 'Mcp-Param-Urgent': 'true', 'Mcp-Param-Zone': 'b' };

      it('reads the annotations of a tool schema', () => {
        assert.deepEqual(
          annotations?.map((annotation) => [annotation.header, annotation.path.join('.')]),
          [
            ['mcp-param-region', 'region'],
            ['mcp-param-count', 'count'],
            ['mcp-param-urgent', 'urgent'],
            ['mcp-param-zone', 'nested.zone'],
            ['mcp-param-missing', 'missing'],
          ],
        );
      });

      it('invalid annotations make the tool definition invalid', () => {
        assert.equal(mcpParamHeaders({ properties: { n: { type: 'number', 'x-mcp-header': 'N' } } }), undefined);
        assert.equal(mcpParamHeaders({ properties: { a: { type: 'array', items: { type: 'string', 'x-mcp-header': 'A' } } } }), undefined);
        assert.equal(mcpParamHeaders({ properties: { a: { type: 'string', 'x-mcp-header': 'X' }, b: { type: 'string', 'x-mcp-header': 'x' } } }), undefined);
        assert.equal(mcpParamHeaders({ properties: { a: { type: 'string', 'x-mcp-header': 'bad name' } } }), undefined);
        assert.equal(mcpParamHeaders({ anyOf: [{ properties: { a: { type: 'string', 'x-mcp-header': 'A' } } }] }), undefined);
        assert.deepEqual(mcpParamHeaders({ type: 'object' }), []);
      });

      it('matching values pass; integers compare numerically', () => {
        ok(inspectMcpRequest({ body, headers: { ...good, ...params }, paramHeadersOf }));
        ok(inspectMcpRequest({ body, headers: { ...good, ...params, 'Mcp-Param-Count': '42.0' }, paramHeadersOf }));
      });

      const paramMismatches: Array<[string, Record<string, string | undefined>]> = [
        ['a different string', { 'Mcp-Param-Region': 'eu-west1' }],
        ['a different integer', { 'Mcp-Param-Count': '43' }],
        ['a non-number for an integer', { 'Mcp-Param-Count': 'forty-two' }],
        ['a boolean spelled differently', { 'Mcp-Param-Urgent': 'True' }],
        ['a nested value that differs', { 'Mcp-Param-Zone': 'c' }],
        ['a missing header for a value in the body', { 'Mcp-Param-Region': undefined }],
        ['a header for a value absent from the body', { 'Mcp-Param-Missing': 'x' }],
        ['a malformed encoded value', { 'Mcp-Param-Region': '=?base64?***?=' }],
      ];
      for (const [title, change] of paramMismatches) {
        it(`-32020 for ${title}`, () => {
          assert.equal(refused(inspectMcpRequest({ body, headers: { ...good, ...params, ...change }, paramHeadersOf })).code, -32020);
        });
      }

      it('unrecognised Mcp-Param-* headers are ignored, and never decide anything', () => {
        ok(inspectMcpRequest({ body, headers: { ...good, 'Mcp-Param-Region': 'anything' } }));
        ok(inspectMcpRequest({ body, headers: { ...good, ...params, 'Mcp-Param-Other': 'x' }, paramHeadersOf }));
      });
    });

    it('in the session era headers are ignored: the body alone names the tool', () => {
      const sessionBody = call(1, 'drop_table');
      const inspection = ok(inspectMcpRequest({ body: sessionBody, headers: { 'MCP-Protocol-Version': '2025-06-18', 'Mcp-Method': 'tools/list', 'Mcp-Name': 'get_inventory' } }));
      assert.equal((inspection.messages[0] as InspectedRequest).toolName, 'drop_table');
    });

    it('a notification may omit Mcp-Method but may not contradict it', () => {
      const note = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { _meta: MODERN_META } });
      ok(inspectMcpRequest({ body: note, headers: { 'MCP-Protocol-Version': '2026-07-28' } }));
      assert.equal(refused(inspectMcpRequest({ body: note, headers: { 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/call' } })).code, -32020);
    });
  });

  describe('answers', () => {
    it('transformJsonRpcResponses rewrites tools/list results and leaves other bodies alone', () => {
      const policyFile = fileURLToPath(new URL('../../../samples/policies/inventory-tools.yaml', import.meta.url));
      const [loaded] = loadResourceFile(policyFile);
      const compiled = compileToolPolicy(loaded?.value as MCPToolPolicyResource, policyFile);
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'get_inventory' }, { name: 'drop_table' }] } });
      const filtered = transformJsonRpcResponses(body, (message) => filterToolsListResponse(compiled, { callerAppId: 'analyst-agent' }, message));
      assert.deepEqual(JSON.parse(filtered), { jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'get_inventory' }] } });
      assert.equal(transformJsonRpcResponses(body, (message) => message), body);
      assert.equal(transformJsonRpcResponses('not json', (message) => message), 'not json');
      const batch = transformJsonRpcResponses(`[${body},{"jsonrpc":"2.0","id":2,"result":{}}]`, (message) => filterToolsListResponse(compiled, { callerAppId: 'analyst-agent' }, message));
      assert.equal((JSON.parse(batch) as unknown[]).length, 2);
    });

    it('a problem answer carries the code, the Skein code and where', () => {
      const problem = refused(parseJsonRpcBody('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}'));
      assert.deepEqual(problemResponse(problem), {
        jsonrpc: '2.0',
        id: 1,
        error: { code: -32602, message: 'tools/call needs "params.name", a non-empty string', data: { errorCode: 'ERR_MALFORMED_REQUEST', where: '/params/name' } },
      });
    });
  });
});
