import assert from 'node:assert/strict';
import { status as grpcJsStatus } from '@grpc/grpc-js';
import { ERROR_CATALOGUE, GrpcStatus, JSONRPC_CODES, SkeinError, jsonRpcCodeOf, type ErrorCode } from '../src/index.js';

describe('error catalogue', function () {
  it('gives every code an HTTP status, a gRPC status and a JSON-RPC code', function () {
    for (const code of Object.keys(ERROR_CATALOGUE) as ErrorCode[]) {
      const row = ERROR_CATALOGUE[code];
      assert.ok(row.http >= 400 && row.http < 600, code);
      assert.ok(Object.values(GrpcStatus).includes(row.grpc), code);
      const jsonrpc = jsonRpcCodeOf(code);
      // Either a JSON-RPC 2.0 / MCP code (-32768..-32000) or one of Skein's own, outside that range as MCP asks.
      assert.ok((Object.values(JSONRPC_CODES) as number[]).includes(jsonrpc), `${code}: ${jsonrpc}`);
    }
  });

  it('uses the wire values of gRPC status codes', function () {
    for (const [name, value] of Object.entries(GrpcStatus)) assert.equal(value, (grpcJsStatus as unknown as Record<string, number>)[name], name);
  });

  it('maps the families a front end must tell apart', function () {
    assert.equal(new SkeinError('ERR_MALFORMED_REQUEST', 'x').jsonRpcCode, -32600);
    assert.equal(new SkeinError('ERR_BODY_TOO_LARGE', 'x').jsonRpcCode, -32600);
    assert.equal(new SkeinError('ERR_INTERNAL', 'x').jsonRpcCode, -32603);
    assert.equal(new SkeinError('ERR_UNAUTHENTICATED', 'x').jsonRpcCode, -31001);
    assert.equal(new SkeinError('ERR_MCP_TOOL_DENIED', 'x').jsonRpcCode, -31003);
    // MCP 2026-07-28: a header that disagrees with the body is -32020.
    assert.equal(new SkeinError('ERR_MCP_HEADER_MISMATCH', 'x').jsonRpcCode, -32020);
    assert.notEqual(new SkeinError('ERR_DIRECT_INVOKE_ACL_DENIED', 'x').jsonRpcCode, new SkeinError('ERR_UNAUTHENTICATED', 'x').jsonRpcCode);
  });
});
