import type { Readable } from 'node:stream';
import { type SpiffeId, type HeaderList, type Decision } from '@skein/core';
import type { Context, Span } from '@opentelemetry/api';

/** A span and the context in which it is the active one. */
export interface TraceScope {
  span: Span;
  context: Context;
}

/**
 * One call travelling through a pipeline. Every stage — access control, tool policy, token checks, the app
 * channel or the remote hop at the end — sees the same shape. Stages may replace `headers` and `body`
 * (for example after reading a JSON-RPC body whole) but never the identity fields.
 */
export interface PipelineRequest {
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
  /** The MCP method (and, for `tools/call`, the tool) of a JSON-RPC call, once a stage has read its body. */
  mcp?: { method: string; tool?: string };
  /** Aborts when the caller goes away; stages doing I/O pass it on. */
  readonly signal: AbortSignal;
}

/** The response head with its body still streaming. */
export interface PipelineResponse {
  status: number;
  headers: HeaderList;
  body: Readable;
}

/** Whatever answers a request: the next stage, or the terminal (app channel, remote sidecar). */
export type Handler = (request: PipelineRequest) => Promise<PipelineResponse>;

/** One stage. It may answer or refuse by itself, or call `next` and look at (or transform) what comes back. */
export interface Middleware {
  readonly name: string;
  handle(request: PipelineRequest, next: Handler): Promise<PipelineResponse>;
}

/** Chains `stages` in order in front of `terminal`. With no stages, the terminal itself. */
export function compose(stages: readonly Middleware[], terminal: Handler): Handler {
  return stages.reduceRight<Handler>((next, stage) => (request) => stage.handle(request, next), terminal);
}
