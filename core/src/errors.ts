import { GrpcStatus } from './grpc-status.js';

/**
 * The one error catalogue. Every failure Skein reports carries a stable code; this table maps each code to the
 * HTTP status, gRPC status and JSON-RPC error code the front ends answer with (HTTP and gRPC APIs, the MCP
 * endpoint), so they all fail the same way with the same message. The JSON-RPC column is `jsonrpc` where a row
 * names one, else -32603 (internal error).
 */
export const ERROR_CATALOGUE = {
  ERR_DIRECT_INVOKE: { http: 500, grpc: GrpcStatus.INTERNAL },
  ERR_DIRECT_INVOKE_NO_APP_ID: { http: 404, grpc: GrpcStatus.NOT_FOUND },
  ERR_DIRECT_INVOKE_NOT_FOUND: { http: 404, grpc: GrpcStatus.NOT_FOUND },
  ERR_DIRECT_INVOKE_APP_UNAVAILABLE: { http: 502, grpc: GrpcStatus.UNAVAILABLE },
  ERR_DIRECT_INVOKE_PEER_UNAVAILABLE: { http: 503, grpc: GrpcStatus.UNAVAILABLE },
  ERR_DIRECT_INVOKE_ACL_DENIED: { http: 403, grpc: GrpcStatus.PERMISSION_DENIED, jsonrpc: -31003 },
  ERR_DIRECT_INVOKE_ENDPOINT_UNAVAILABLE: { http: 502, grpc: GrpcStatus.UNAVAILABLE },
  // Resiliency: a timeout policy expired before the target answered; a circuit breaker refused the call unsent.
  ERR_DIRECT_INVOKE_TIMEOUT: { http: 504, grpc: GrpcStatus.DEADLINE_EXCEEDED },
  ERR_CIRCUIT_BREAKER_OPEN: { http: 503, grpc: GrpcStatus.UNAVAILABLE },
  ERR_MALFORMED_REQUEST: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, jsonrpc: -32600 },
  ERR_BODY_TOO_LARGE: { http: 413, grpc: GrpcStatus.RESOURCE_EXHAUSTED, jsonrpc: -32600 },
  ERR_UNAUTHENTICATED: { http: 401, grpc: GrpcStatus.UNAUTHENTICATED, jsonrpc: -31001 },
  ERR_PERMISSION_DENIED: { http: 403, grpc: GrpcStatus.PERMISSION_DENIED, jsonrpc: -31003 },
  ERR_MCP_TOOL_DENIED: { http: 403, grpc: GrpcStatus.PERMISSION_DENIED, jsonrpc: -31003 },
  ERR_MCP_INSUFFICIENT_SCOPE: { http: 403, grpc: GrpcStatus.PERMISSION_DENIED, jsonrpc: -31003 },
  ERR_MCP_HEADER_MISMATCH: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, jsonrpc: -32020 },
  ERR_JWKS_UNAVAILABLE: { http: 401, grpc: GrpcStatus.UNAVAILABLE, jsonrpc: -31001 },
  ERR_OAUTH2_TOKEN_UNAVAILABLE: { http: 502, grpc: GrpcStatus.UNAVAILABLE },
  ERR_HEALTH_NOT_READY: { http: 500, grpc: GrpcStatus.UNAVAILABLE },
  ERR_NOT_FOUND: { http: 404, grpc: GrpcStatus.NOT_FOUND },
  ERR_METHOD_NOT_ALLOWED: { http: 405, grpc: GrpcStatus.UNIMPLEMENTED },
  /** Skein's own: a Dapr building-block API Skein does not offer (state, pub/sub, secrets, ...). */
  ERR_API_NOT_SUPPORTED: { http: 501, grpc: GrpcStatus.UNIMPLEMENTED },
  ERR_CONFIG_INVALID: { http: 500, grpc: GrpcStatus.FAILED_PRECONDITION },
  ERR_CERTIFICATE: { http: 500, grpc: GrpcStatus.UNAUTHENTICATED },
  ERR_SENTRY_REFUSED: { http: 403, grpc: GrpcStatus.PERMISSION_DENIED },
  ERR_PLACEMENT_NOT_LEADER: { http: 503, grpc: GrpcStatus.FAILED_PRECONDITION },
  ERR_PLACEMENT_HOST_DROPPED: { http: 504, grpc: GrpcStatus.DEADLINE_EXCEEDED },
  ERR_INTERNAL: { http: 500, grpc: GrpcStatus.INTERNAL },
  // Dapr's request and actor codes (pkg/messages/errorcodes). Validation failures of reminder and timer specs keep
  // their ERR_ACTOR_*_CREATE code with a 400 override: the code says what failed, the status whose fault it was.
  ERR_BAD_REQUEST: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT },
  ERR_ACTOR_RUNTIME_NOT_FOUND: { http: 500, grpc: GrpcStatus.INTERNAL },
  ERR_ACTOR_INVOKE_METHOD: { http: 500, grpc: GrpcStatus.INTERNAL },
  ERR_ACTOR_NO_APP_CHANNEL: { http: 500, grpc: GrpcStatus.INTERNAL },
  ERR_ACTOR_STACK_DEPTH: { http: 500, grpc: GrpcStatus.INTERNAL },
  ERR_ACTOR_STATE_GET: { http: 500, grpc: GrpcStatus.INTERNAL },
  ERR_ACTOR_STATE_TRANSACTION_SAVE: { http: 500, grpc: GrpcStatus.INTERNAL },
  ERR_ACTOR_REMINDER_CREATE: { http: 500, grpc: GrpcStatus.INTERNAL },
  ERR_ACTOR_REMINDER_GET: { http: 500, grpc: GrpcStatus.INTERNAL },
  ERR_ACTOR_REMINDER_DELETE: { http: 500, grpc: GrpcStatus.INTERNAL },
  ERR_ACTOR_REMINDER_NOT_FOUND: { http: 404, grpc: GrpcStatus.NOT_FOUND },
  ERR_ACTOR_TIMER_CREATE: { http: 500, grpc: GrpcStatus.INTERNAL },
  ERR_ACTOR_TIMER_DELETE: { http: 500, grpc: GrpcStatus.INTERNAL },
  /** Skein's own: the owner is shutting down and did not start the call; the caller retries on the next table. */
  ERR_ACTOR_HOST_LEAVING: { http: 503, grpc: GrpcStatus.UNAVAILABLE },
  // Dapr's workflow codes (pkg/messages/predefined.go).
  ERR_INSTANCE_ID_PROVIDED_MISSING: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT },
  ERR_INSTANCE_ID_TOO_LONG: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT },
  ERR_INSTANCE_ID_INVALID: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT },
  ERR_WORKFLOW_NAME_MISSING: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT },
  ERR_WORKFLOW_EVENT_NAME_MISSING: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT },
  ERR_WORKFLOW_APP_ID_INVALID: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT },
  ERR_INSTANCE_ID_NOT_FOUND: { http: 404, grpc: GrpcStatus.NOT_FOUND },
  ERR_START_WORKFLOW: { http: 500, grpc: GrpcStatus.ALREADY_EXISTS },
  ERR_GET_WORKFLOW: { http: 500, grpc: GrpcStatus.INTERNAL },
  ERR_TERMINATE_WORKFLOW: { http: 500, grpc: GrpcStatus.INTERNAL },
  ERR_RAISE_EVENT_WORKFLOW: { http: 500, grpc: GrpcStatus.INTERNAL },
  ERR_PAUSE_WORKFLOW: { http: 500, grpc: GrpcStatus.INTERNAL },
  ERR_RESUME_WORKFLOW: { http: 500, grpc: GrpcStatus.INTERNAL },
  ERR_PURGE_WORKFLOW: { http: 500, grpc: GrpcStatus.INTERNAL },
  /** Skein's own: a workflow input, output or event payload, or an instance's history, is over its limit. */
  ERR_WORKFLOW_PAYLOAD_TOO_LARGE: { http: 413, grpc: GrpcStatus.RESOURCE_EXHAUSTED },
  /** Skein's own: a WorkflowAccessPolicy of the target app does not allow the calling app this operation on the workflow. */
  ERR_WORKFLOW_ACCESS_DENIED: { http: 403, grpc: GrpcStatus.PERMISSION_DENIED },
  /** Skein's own: no workflow worker (an app running a workflow SDK) is connected for the app. */
  ERR_WORKFLOW_NO_WORKER: { http: 503, grpc: GrpcStatus.UNAVAILABLE },
  /** Skein's own: an MCPServer named by a tool workflow is not loaded (or does not exist) on this sidecar. */
  ERR_MCP_SERVER_UNAVAILABLE: { http: 503, grpc: GrpcStatus.UNAVAILABLE },
  /** Skein's own: an activity result for a task the instance's history does not (yet) show scheduled; it runs again. */
  ERR_WORKFLOW_TASK_NOT_SCHEDULED: { http: 409, grpc: GrpcStatus.FAILED_PRECONDITION },
} as const satisfies Record<string, { http: number; grpc: GrpcStatus; jsonrpc?: number }>;

/**
 * JSON-RPC error codes a row may name. Skein's own codes sit outside the JSON-RPC reserved range, as MCP asks, and
 * mirror HTTP 401 and 403; every row that names none answers -32603 (internal error).
 */
export const JSONRPC_CODES = Object.freeze({
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  /** MCP 2026-07-28 `HeaderMismatch`. */
  HEADER_MISMATCH: -32020,
  SKEIN_UNAUTHENTICATED: -31001,
  SKEIN_FORBIDDEN: -31003,
});

/** A stable Skein error code. */
export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** Where, in a file or request, an error was found. */
export interface ErrorLocation {
  file?: string;
  path?: string;
}

/**
 * An error with a catalogued code. The `errorCode`/`message` pair is what callers see, in Dapr's body shape
 * `{"errorCode","message"}`; `httpStatus` may override the catalogue where Dapr answers differently
 * (for example a 403 that keeps the `ERR_DIRECT_INVOKE` code).
 */
export class SkeinError extends Error {
  override readonly name = 'SkeinError';
  readonly code: ErrorCode;
  readonly httpStatus: number;
  readonly location: ErrorLocation | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; httpStatus?: number; location?: ErrorLocation } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.httpStatus = options.httpStatus ?? ERROR_CATALOGUE[code].http;
    this.location = options.location;
  }

  /** The gRPC status this error maps to. */
  get grpcStatus(): GrpcStatus {
    return ERROR_CATALOGUE[this.code].grpc;
  }

  /** The JSON-RPC error code an MCP or other JSON-RPC front end answers with. */
  get jsonRpcCode(): number {
    return jsonRpcCodeOf(this.code);
  }

  /** The JSON body both APIs send: Dapr's `{"errorCode","message"}`. */
  toBody(): { errorCode: string; message: string } {
    return { errorCode: this.wireCode(), message: this.message };
  }

  /** Dapr reports several of our finer codes under ERR_DIRECT_INVOKE; keep its wire code for compatibility. */
  wireCode(): string {
    return this.code.startsWith('ERR_DIRECT_INVOKE') ? 'ERR_DIRECT_INVOKE' : this.code;
  }
}

/** The JSON-RPC error code of a catalogued error. */
export function jsonRpcCodeOf(code: ErrorCode): number {
  const row: { grpc: GrpcStatus; jsonrpc?: number } = ERROR_CATALOGUE[code];
  return row.jsonrpc ?? JSONRPC_CODES.INTERNAL_ERROR;
}

/** Configuration that failed validation: names the file, the JSON path inside it, and why. */
export class ConfigError extends SkeinError {
  constructor(file: string, path: string, reason: string) {
    super('ERR_CONFIG_INVALID', `${file}: ${path || '/'}: ${reason}`, { location: { file, path } });
  }
}

/** Turns anything thrown into a SkeinError, keeping the original as `cause`. */
export function asSkeinError(error: unknown, fallback: ErrorCode = 'ERR_INTERNAL'): SkeinError {
  if (error instanceof SkeinError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new SkeinError(fallback, message, { cause: error });
}

/** Dapr's table for the statuses it names; every other non-2xx status is UNKNOWN. */
const APP_STATUS_TO_GRPC: Readonly<Record<number, GrpcStatus>> = {
  400: GrpcStatus.INTERNAL,
  401: GrpcStatus.UNAUTHENTICATED,
  403: GrpcStatus.PERMISSION_DENIED,
  404: GrpcStatus.NOT_FOUND,
  408: GrpcStatus.CANCELLED,
  409: GrpcStatus.ALREADY_EXISTS,
  429: GrpcStatus.RESOURCE_EXHAUSTED,
  500: GrpcStatus.UNKNOWN,
  501: GrpcStatus.UNIMPLEMENTED,
  503: GrpcStatus.UNAVAILABLE,
  504: GrpcStatus.DEADLINE_EXCEEDED,
};

/**
 * The gRPC status a non-2xx answer of an app becomes when the call came in over the gRPC API: Dapr's mapping
 * (after grpc's http-grpc-status-mapping), so gRPC callers see what they would see with Dapr. Undefined for 2xx.
 */
export function grpcStatusOfAppStatus(httpStatus: number): GrpcStatus | undefined {
  if (httpStatus >= 200 && httpStatus < 300) return undefined;
  return APP_STATUS_TO_GRPC[httpStatus] ?? GrpcStatus.UNKNOWN;
}
