import type { Readable } from 'node:stream';
import type { Decision, HeaderList, SpiffeId } from '@skein/core';
import type { Context, Span } from '@opentelemetry/api';
import type { McpMessage } from '../mcp/call-info.js';

/** A span and the context in which it is the active one. */
export interface TraceScope {
  span: Span;
  context: Context;
}

/**
 * One call, the only request shape of the data plane. A front end (the HTTP or gRPC API on the caller's side, the
 * internal hop on the callee's) decodes into it; every stage of both pipelines — MCP inspection, metrics, the server
 * span, access control, tool policy, token checks, resiliency — and the terminal at the end (the app channel, an
 * HTTPEndpoint, the remote sidecar) sees the same object. Stages may replace `headers` and `body` (for example
 * after reading a JSON-RPC body whole) but never the identity fields.
 */
export interface Call {
  /** The caller's identity from its mTLS certificate; undefined on the outbound side (the caller is our own app). */
  readonly caller: SpiffeId | undefined;
  /** The app being called. */
  readonly target: { readonly appId: string; readonly namespace: string };
  readonly verb: string;
  /** Raw method path, validated, no leading slash. */
  readonly method: string;
  readonly query: string;
  headers: HeaderList;
  /** Whole when small enough to have been read at once; a stream otherwise. */
  body: Buffer | Readable;
  /** Decisions made on this call so far, in order; published and put on the trace by the sidecar. */
  readonly decisions: Decision[];
  /** Claims of a bearer token a stage validated for this call; policy stages read them. */
  claims?: Readonly<Record<string, unknown>>;
  /** The innermost span this call runs in, and its context; stages add events (decisions) and children to it. */
  trace?: TraceScope;
  /** W3C trace context the transport carried (HTTP headers, the internal hop's metadata), for the server span. */
  readonly traceCarrier?: Readonly<Record<string, string>>;
  /** The JSON-RPC (MCP) message of the body, parsed strictly once by the inspection stage. */
  mcp?: McpMessage;
  /** Aborts when the caller goes away; stages doing I/O pass it on. */
  readonly signal: AbortSignal;
}

/** The response head with its body still streaming. */
export interface CallResponse {
  status: number;
  headers: HeaderList;
  body: Readable;
}

/** Whatever answers a call: the next stage, or the terminal (app channel, remote sidecar, HTTPEndpoint). */
export type Handler = (call: Call) => Promise<CallResponse>;

/** One stage. It may answer or refuse by itself, or call `next` and look at (or transform) what comes back. */
export interface Middleware {
  readonly name: string;
  handle(call: Call, next: Handler): Promise<CallResponse>;
}

/** Chains `stages` in order in front of `terminal`. With no stages, the terminal itself. */
export function compose(stages: readonly Middleware[], terminal: Handler): Handler {
  return stages.reduceRight<Handler>((next, stage) => (call) => stage.handle(call, next), terminal);
}

/** The first value of header `name` (lower-case) in a call's or response's header list. */
export function headerOf(headers: HeaderList, name: string): string | undefined {
  for (const [key, value] of headers) if (key === name) return value;
  return undefined;
}

/** The W3C trace-context headers of a header list, as a carrier for the server span. */
export function traceCarrierOf(headers: HeaderList): Record<string, string> | undefined {
  let carrier: Record<string, string> | undefined;
  for (const [key, value] of headers) {
    if (key === 'traceparent' || key === 'tracestate') (carrier ??= {})[key] = value;
  }
  return carrier;
}
