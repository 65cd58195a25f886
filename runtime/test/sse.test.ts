import assert from 'node:assert/strict';
import { serializeSseEvent, SseJsonRpcFilter, SseLimitError, SseParser, type SseBlock } from '../src/mcp/sse.js';

function feed(parser: SseParser, chunks: ReadonlyArray<string | Uint8Array>): SseBlock[] {
  return [...chunks.flatMap((chunk) => parser.push(chunk)), ...parser.end()];
}

/** Every way of cutting `text` in two, to prove the parser does not care where chunks end. */
function everySplit(text: string): Array<[string, string]> {
  return Array.from({ length: text.length + 1 }, (_, index) => [text.slice(0, index), text.slice(index)]);
}

describe('SSE', () => {
  describe('parser', () => {
    it('parses events with data, event, id and retry', () => {
      const blocks = feed(new SseParser(), ['event: message\nid: 7\nretry: 1500\ndata: {"a":1}\n\n']);
      assert.equal(blocks.length, 1);
      assert.deepEqual(blocks[0]?.event, { event: 'message', id: '7', retry: 1500, data: '{"a":1}' });
    });

    it('joins multi-line data, strips one leading space, ignores comments and unknown fields', () => {
      const [block] = feed(new SseParser(), [': keep-alive\ndata:first\ndata:  second\nfoo: bar\ndata\n\n']);
      assert.deepEqual(block?.event, { data: 'first\n second\n' });
    });

    it('accepts LF, CRLF and CR line endings', () => {
      for (const text of ['data: x\n\n', 'data: x\r\n\r\n', 'data: x\r\r']) {
        assert.deepEqual(feed(new SseParser(), [text])[0]?.event, { data: 'x' }, JSON.stringify(text));
      }
    });

    it('gives the same events however the stream is cut', () => {
      const text = 'id: 1\r\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\r\n\r\n: ping\r\n\r\ndata: é世\r\n\r\n';
      const whole = feed(new SseParser(), [text]).map((block) => block.event);
      for (const [head, tail] of everySplit(text)) assert.deepEqual(feed(new SseParser(), [head, tail]).map((block) => block.event), whole);
      const bytes = Buffer.from(text);
      for (let cut = 0; cut <= bytes.length; cut += 1) {
        assert.deepEqual(feed(new SseParser(), [bytes.subarray(0, cut), bytes.subarray(cut)]).map((block) => block.event), whole, `cut at byte ${cut}`);
      }
    });

    it('blocks without data dispatch no event but are kept', () => {
      const blocks = feed(new SseParser(), [': only a comment\n\nid: 5\n\n']);
      assert.equal(blocks.length, 2);
      assert.ok(blocks.every((block) => block.event === undefined));
      assert.equal(blocks[0]?.raw, ': only a comment\n\n');
    });

    it('drops an event cut off at the end of the stream', () => {
      assert.deepEqual(feed(new SseParser(), ['data: complete\n\ndata: cut off']).map((block) => block.event?.data), ['complete']);
      assert.deepEqual(feed(new SseParser(), ['data: cut off\n']).length, 0);
    });

    it('ignores an id containing NUL and a non-numeric retry', () => {
      assert.deepEqual(feed(new SseParser(), ['id: a\u0000b\nretry: 1s\ndata: x\n\n'])[0]?.event, { data: 'x' });
    });

    it('refuses a block longer than the limit, even without a line break', () => {
      const parser = new SseParser({ maxBlockLength: 100 });
      assert.throws(() => parser.push(`data: ${'x'.repeat(200)}`), SseLimitError);
      const lines = new SseParser({ maxBlockLength: 100 });
      assert.throws(() => {
        for (let index = 0; index < 20; index += 1) lines.push('data: 0123456789\n');
      }, SseLimitError);
    });

    it('serialises events, splitting multi-line data', () => {
      assert.equal(serializeSseEvent({ event: 'message', id: '3', data: 'a\nb' }), 'event: message\nid: 3\ndata: a\ndata: b\n\n');
    });
  });

  describe('JSON-RPC filter (tools/list over SSE)', () => {
    const dropDropTable = (message: Record<string, unknown>): Record<string, unknown> => {
      const result = message['result'] as { tools?: Array<{ name: string }> } | undefined;
      if (message['id'] !== 1 || !result?.tools) return message;
      return { ...message, result: { ...result, tools: result.tools.filter((tool) => tool.name !== 'drop_table') } };
    };
    const progress = 'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\n\n';
    const list = 'event: message\nid: 42\ndata: {"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"get_inventory"},{"name":"drop_table"}]}}\n\n';

    it('filters the tools/list result and passes everything else on unchanged', () => {
      const filter = new SseJsonRpcFilter(dropDropTable);
      const out = filter.push(`: hello\n\n${progress}`) + filter.push(list) + filter.end();
      assert.ok(out.startsWith(`: hello\n\n${progress}`));
      assert.ok(!out.includes('drop_table'));
      const [, filteredEvent] = feed(new SseParser(), [out]).filter((block) => block.event);
      assert.equal(filteredEvent?.event?.id, '42');
      assert.deepEqual(JSON.parse(filteredEvent?.event?.data ?? 'null'), { jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'get_inventory' }] } });
    });

    it('is not fooled by chunk boundaries', () => {
      const stream = progress + list;
      for (const [head, tail] of everySplit(stream)) {
        const filter = new SseJsonRpcFilter(dropDropTable);
        const out = filter.push(head) + filter.push(tail) + filter.end();
        assert.ok(!out.includes('drop_table'), `cut at ${head.length}`);
        assert.ok(out.includes('get_inventory'));
      }
    });

    it('never passes on a cut-off event unfiltered', () => {
      const filter = new SseJsonRpcFilter(dropDropTable);
      const out = filter.push(list.slice(0, -2)) + filter.end();
      assert.equal(out, '');
    });

    it('leaves other event types and non-JSON data alone', () => {
      const custom = 'event: custom\ndata: {"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"drop_table"}]}}\n\n';
      const text = 'data: not json\n\n';
      const filter = new SseJsonRpcFilter(dropDropTable);
      assert.equal(filter.push(custom + text) + filter.end(), custom + text);
    });
  });
});
