import assert from 'node:assert/strict';
import { decodeGrpcMessage, encodeGrpcMessage, frameMessage, FramingError, MessageReader } from '../src/transport/grpc-frame.js';

describe('gRPC framing', function () {
  const read = (chunks: Buffer[], max = 1024): Buffer[] => {
    const reader = new MessageReader(max);
    const out: Buffer[] = [];
    for (const chunk of chunks) reader.push(chunk, (message) => out.push(Buffer.from(message)));
    assert.equal(reader.partial, false);
    return out;
  };

  it('prefixes a message with a zero flag and its big-endian length, in one buffer', function () {
    const framed = frameMessage(Buffer.from('hello'));
    assert.deepEqual([...framed.subarray(0, 5)], [0, 0, 0, 0, 5]);
    assert.equal(framed.subarray(5).toString(), 'hello');
  });

  it('reads messages however the stream cuts them: whole, split byte by byte, several in one chunk, empty', function () {
    const messages = ['a', 'bb'.repeat(300), '', 'last'].map((text) => Buffer.from(text));
    const stream = Buffer.concat(messages.map((message) => frameMessage(message)));
    const expected = messages.map((message) => message.toString());
    assert.deepEqual(read([stream]).map(String), expected);
    assert.deepEqual(read([...stream].map((byte) => Buffer.from([byte]))).map(String), expected);
    assert.deepEqual(read([stream.subarray(0, 3), stream.subarray(3, 700), stream.subarray(700)]).map(String), expected);
  });

  it('notices a stream that stops inside a message', function () {
    const reader = new MessageReader(1024);
    reader.push(frameMessage(Buffer.from('truncated')).subarray(0, 8), () => assert.fail('no whole message'));
    assert.equal(reader.partial, true);
  });

  it('refuses compressed messages and messages over the limit', function () {
    assert.throws(() => read([Buffer.from([1, 0, 0, 0, 1, 0])]), FramingError);
    assert.throws(() => read([frameMessage(Buffer.alloc(2000))], 1024), /over the limit of 1024/);
  });

  it('percent-encodes grpc-message and decodes it back', function () {
    assert.equal(encodeGrpcMessage('plain text'), 'plain text');
    const text = 'caf\u00e9 100% \n done';
    const encoded = encodeGrpcMessage(text);
    assert.match(encoded, /^[\x20-\x7e]*$/);
    assert.equal(encoded, 'caf%C3%A9 100%25 %0A done');
    assert.equal(decodeGrpcMessage(encoded), text);
  });
});
