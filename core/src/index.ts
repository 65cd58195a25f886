/**
 * Public entry of @skein/core: what every Skein process (sidecar, sentry, placement, CLI, editor) shares, and nothing
 * sidecar-specific. The error catalogue, the logger, identity (SPIFFE IDs, the CA, serving gRPC over our TLS), one
 * duration grammar, header utilities, the clock seam, the schema-validator seam, the bus port (connection, KV with
 * recovery, one table of bucket and stream names), the telemetry events and their pure views, and the hash ring.
 */
export * from './errors.js';
export * from './grpc-status.js';
export * from './logger.js';
export * from './truncate.js';
export * from './duration.js';
export * from './headers.js';
export * from './clock.js';
export * from './validator.js';
export * from './hashing.js';
export * from './identity/spiffe.js';
export * from './identity/ca.js';
export * from './identity/home.js';
export * from './identity/grpc-tls.js';
export * from './bus/connection.js';
export * from './bus/names.js';
export * from './bus/kv.js';
export * from './bus/operator.js';
export * from './bus/telemetry-stream.js';
export * from './telemetry/decision.js';
export * from './telemetry/decision-view.js';
export * from './telemetry/span-event.js';
export * from './telemetry/workflow-event.js';
export * from './telemetry/trace-view.js';
export * from './telemetry/stream-reader.js';
