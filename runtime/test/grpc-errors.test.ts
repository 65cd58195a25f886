import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { google } from '@skein/proto';
import { SkeinError } from '@skein/core';
import { errorTrailers } from '../src/api/grpc.js';

/** What a rich-error gRPC client reads from the trailers: the status and its details by type. */
function statusOf(error: SkeinError): { code: number; message: string; details: Map<string, Uint8Array> } {
  const bin = errorTrailers(error).get('grpc-status-details-bin')[0];
  assert.ok(Buffer.isBuffer(bin), 'no grpc-status-details-bin trailer');
  const decoded = google.rpc.Status.decode(bin);
  return { code: decoded.code, message: decoded.message, details: new Map(decoded.details.map((detail) => [detail.type_url ?? '', detail.value ?? new Uint8Array()])) };
}

describe('gRPC API errors', function () {
  it("carry the catalogue's code and HTTP status in an ErrorInfo", function () {
    const error = new SkeinError('ERR_DIRECT_INVOKE', 'failed to invoke, id: nobody');
    const rich = statusOf(error);
    assert.equal(rich.code, error.grpcStatus);
    assert.equal(rich.message, 'failed to invoke, id: nobody');
    const info = google.rpc.ErrorInfo.decode(rich.details.get('type.googleapis.com/google.rpc.ErrorInfo') ?? new Uint8Array());
    assert.equal(info.domain, 'dapr.io');
    assert.equal(info.reason, error.wireCode());
    assert.deepEqual({ ...info.metadata }, { errorCode: 'ERR_DIRECT_INVOKE', 'http.code': String(error.httpStatus) });
    assert.equal(rich.details.has('type.googleapis.com/google.rpc.RetryInfo'), false, 'nothing to retry');
  });

  it('say when to retry a refusal for overload or an open breaker (RetryInfo, as HTTP says Retry-After)', function () {
    for (const code of ['ERR_DIRECT_INVOKE_PEER_UNAVAILABLE', 'ERR_CIRCUIT_BREAKER_OPEN'] as const) {
      const rich = statusOf(new SkeinError(code, 'try later'));
      assert.equal(rich.code, status.UNAVAILABLE, code);
      const retry = google.rpc.RetryInfo.decode(rich.details.get('type.googleapis.com/google.rpc.RetryInfo') ?? new Uint8Array());
      assert.equal(Number(retry.retryDelay?.seconds), 1, code);
    }
  });
});
