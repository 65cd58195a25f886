/**
 * gRPC status codes (grpc/doc/statuscodes.md), as plain numbers so that the error catalogue and everything reading
 * it need no gRPC library. The values are the wire values; grpc-js's `status` enum has the same numbers.
 */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** One gRPC status code. */
export type GrpcStatus = (typeof GrpcStatus)[keyof typeof GrpcStatus];
