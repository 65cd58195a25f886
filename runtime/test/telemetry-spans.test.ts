import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { loadSchema } from '@skein/proto';
import { encodeSpanEvent, parseSpanEvent, type SpanEvent, telemetryStreamConfig, TELEMETRY_SUBJECTS } from '@skein/core';
import { hrTimeToUnixNano, toSpanEvent } from '../src/telemetry/span-convert.js';

function schemaValidator() {
  const ajv = new Ajv({ strict: true, allowUnionTypes: true });
  ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
  return ajv.compile(loadSchema('span-event'));
}

/** Records spans with the real SDK and hands back what an exporter would get. */
function record(build: (tracer: ReturnType<BasicTracerProvider['getTracer']>) => void): ReadableSpan[] {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  build(provider.getTracer('skein.test', '1.2.3'));
  return exporter.getFinishedSpans();
}

describe('span events', () => {
  const validate = schemaValidator();
  const source = { appId: 'mcp-server', namespace: 'default' };

  it('convert SDK spans into events that match the published schema', () => {
    const spans = record((tracer) => {
      const root = tracer.startSpan('tools/call get_weather', { kind: SpanKind.SERVER, attributes: { 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'get_weather', 'jsonrpc.request.id': 7, tags: ['a', 'b'] } });
      const child = tracer.startSpan('skein access-control', { attributes: { 'skein.stage': 'access-control' } }, trace.setSpan(context.active(), root));
      child.addEvent('skein.decision', { 'skein.decision.allowed': false, 'skein.decision.source': 'acl' });
      child.setStatus({ code: SpanStatusCode.ERROR, message: 'denied' });
      child.end();
      root.addLink({ context: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 } });
      root.end();
    });
    const [child, root] = spans.map((span) => toSpanEvent(span, source));
    assert.ok(child && root);
    for (const event of [child, root]) assert.ok(validate(JSON.parse(JSON.stringify(event))), JSON.stringify(validate.errors));
    assert.equal(root.kind, 'server');
    assert.equal(root.parentSpanId, undefined);
    assert.equal(child.parentSpanId, root.spanId);
    assert.equal(child.traceId, root.traceId);
    assert.deepEqual(child.status, { code: 'error', message: 'denied' });
    assert.deepEqual(root.attributes, { 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'get_weather', 'jsonrpc.request.id': 7, tags: ['a', 'b'] });
    assert.deepEqual(child.events.map((event) => [event.name, event.attributes]), [['skein.decision', { 'skein.decision.allowed': false, 'skein.decision.source': 'acl' }]]);
    assert.deepEqual(root.links, [{ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', attributes: {} }]);
    assert.deepEqual(root.scope, { name: 'skein.test', version: '1.2.3' });
    assert.equal(root.appId, 'mcp-server');
    // Start times are millisecond-rounded by the SDK and durations are exact, so only each span's own order holds.
    for (const event of [child, root]) assert.ok(BigInt(event.endTimeUnixNano) >= BigInt(event.startTimeUnixNano));
    assert.equal(root.startTime, new Date(Number(BigInt(root.startTimeUnixNano) / 1_000_000n)).toISOString());
  });

  it('keep nanosecond times exact', () => {
    assert.equal(hrTimeToUnixNano([1795256130, 123456789]), '1795256130123456789');
    assert.equal(hrTimeToUnixNano([0, 5]), '5');
  });

  it('shorten oversized spans but keep identity, timing and status', () => {
    const [span] = record((tracer) => {
      const big = tracer.startSpan('big', { attributes: { huge: 'x'.repeat(100_000), small: 'ok' } });
      for (let i = 0; i < 40; i += 1) big.addEvent(`event ${i}`, { detail: 'y'.repeat(1000) });
      big.end();
    });
    assert.ok(span);
    const event = toSpanEvent(span, source);
    const shortened = JSON.parse(encodeSpanEvent(event, 16 * 1024)) as SpanEvent;
    assert.ok(validate(shortened), JSON.stringify(validate.errors));
    assert.equal(shortened.truncated, true);
    assert.equal(shortened.spanId, event.spanId);
    assert.equal((shortened.attributes['huge'] as string).length, 257);
    assert.equal(shortened.attributes['small'], 'ok');
    assert.equal(shortened.events.length, 16);
    const bare = JSON.parse(encodeSpanEvent(event, 1024)) as SpanEvent;
    assert.ok(validate(bare), JSON.stringify(validate.errors));
    assert.deepEqual([bare.attributes, bare.events, bare.truncated, bare.startTimeUnixNano], [{}, [], true, event.startTimeUnixNano]);
    assert.equal(encodeSpanEvent(event, 10 * 1024 * 1024), JSON.stringify(event), 'small enough spans are untouched');
  });

  it('parse back what was published, and refuse what is not a version-1 span', () => {
    const [span] = record((tracer) => tracer.startSpan('one').end());
    assert.ok(span);
    const event = toSpanEvent(span, source);
    assert.deepEqual(parseSpanEvent(JSON.parse(JSON.stringify(event))), event);
    for (const junk of [null, 'text', { ...event, version: 2 }, { ...event, traceId: 'XYZ' }, { ...event, startTimeUnixNano: 12 }, { ...event, status: { code: 'weird' } }, { ...event, parentSpanId: 'short' }]) {
      assert.equal(parseSpanEvent(JSON.parse(JSON.stringify(junk)) as unknown), undefined, JSON.stringify(junk).slice(0, 80));
    }
  });

  it('the schema example is valid', () => {
    for (const example of loadSchema('span-event')['examples'] as unknown[]) assert.ok(validate(example), JSON.stringify(validate.errors));
  });
});

describe('telemetry stream settings', () => {
  it('bound the stream by age and size, dropping the oldest, and capture decisions and spans', () => {
    const config = telemetryStreamConfig({ maxAgeMs: 2 * 3_600_000, maxBytes: 64 * 1024 * 1024 });
    assert.equal(config.name, 'skein-telemetry');
    assert.deepEqual(config.subjects, ['skein.decisions.>', 'skein.spans.>', 'skein.workflows.>']);
    assert.deepEqual(TELEMETRY_SUBJECTS, config.subjects);
    assert.equal(config.max_age, 2 * 3_600_000 * 1e6);
    assert.equal(config.max_bytes, 64 * 1024 * 1024);
    assert.equal(config.discard, 'old');
    assert.equal(config.retention, 'limits');
    assert.equal(telemetryStreamConfig({ maxAgeMs: 30_000, maxBytes: 4096 }).duplicate_window, 30_000 * 1e6, 'the dedup window never exceeds the max age');
    assert.throws(() => telemetryStreamConfig({ maxAgeMs: 10, maxBytes: 4096 }), /at least 1s/);
    assert.throws(() => telemetryStreamConfig({ maxAgeMs: 60_000, maxBytes: 10 }), /at least 1Ki/);
  });
});
