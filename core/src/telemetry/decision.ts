/**
 * The one shape every policy check answers with. App-ID access control, MCP tool policy, bearer-token validation and
 * workflow access policy each return a `Decision`; the same object is put in the caller's error, on the trace and, as a `DecisionEvent`,
 * on the bus for the editor. Keeping one shape means a person reads every refusal the same way.
 */

/** Which check decided. */
export type DecisionSource = 'acl' | 'tool-policy' | 'jwt' | 'workflow-policy' | 'mcp-hook';

/** The outcome of one policy check, with the rule that decided and why. Always frozen. */
export interface Decision {
  /** True when the call may proceed past this check. */
  readonly allowed: boolean;
  /** The check that decided. */
  readonly source: DecisionSource;
  /**
   * The rule that decided: a rule's name or index (`policies[0].operations[1]`, `analyst-read`), `default` when no
   * rule matched and a default action applied, or a fixed word naming a refusal before any rule could match
   * (`malformed-caller`, `malformed-operation`, `invalid-condition`, the bearer component's name, ...).
   */
  readonly rule: string;
  /** One sentence a person can act on. Never contains tokens or tool arguments. */
  readonly reason: string;
  /** The caller: its SPIFFE ID when known, else its App ID, else `anonymous` (or `malformed`). */
  readonly caller: string;
  /** The App ID being called (the app behind the sidecar that decided). */
  readonly target: string;
  /** The HTTP operation (`POST /mcp`), gRPC method or JSON-RPC method the decision was about. */
  readonly method?: string;
  /** The MCP tool named by the call, for `tools/call`. */
  readonly tool?: string;
  /** OAuth scopes the rule requires and the token lacks; present only on an `insufficient_scope` refusal. */
  readonly missingScopes?: readonly string[];
}

/** Builds a frozen Decision, dropping optional fields that are undefined so the JSON form stays minimal. */
export function decision(fields: Decision): Decision {
  const out: { -readonly [K in keyof Decision]: Decision[K] } = {
    allowed: fields.allowed,
    source: fields.source,
    rule: fields.rule,
    reason: fields.reason,
    caller: fields.caller,
    target: fields.target,
  };
  if (fields.method !== undefined) out.method = fields.method;
  if (fields.tool !== undefined) out.tool = fields.tool;
  if (fields.missingScopes !== undefined) out.missingScopes = Object.freeze([...fields.missingScopes]);
  return Object.freeze(out);
}

/**
 * A decision as published on the bus (schema: `@skein/proto/schemas/decision-event.schema.json`). The fields
 * around the decision say where and when it was made; they come from the pipeline, never from policy code, which
 * has no clock.
 */
export interface DecisionEvent {
  /** Schema version of this event shape. */
  readonly version: 1;
  /** When the decision was made, RFC 3339 in UTC. */
  readonly time: string;
  /** App ID of the sidecar that decided. */
  readonly appId: string;
  /** Namespace of the sidecar that decided. */
  readonly namespace: string;
  /** W3C trace id (32 lowercase hex) of the call, when traced. */
  readonly traceId?: string;
  /** W3C span id (16 lowercase hex) of the span that decided, when traced. */
  readonly spanId?: string;
  /** JSON-RPC id of the message decided on, for MCP traffic. */
  readonly requestId?: string | number | null;
  /** Position in a JSON-RPC batch, when the message was part of one. */
  readonly batchIndex?: number;
  /** The decision itself, unchanged. */
  readonly decision: Decision;
}

/** Where and when a decision was made, as the pipeline knows it. */
export interface DecisionContext {
  time: Date;
  appId: string;
  namespace: string;
  traceId?: string;
  spanId?: string;
  requestId?: string | number | null;
  batchIndex?: number;
}

/** Wraps a decision into the event published on the bus. */
export function toDecisionEvent(made: Decision, context: DecisionContext): DecisionEvent {
  const event: { -readonly [K in keyof DecisionEvent]: DecisionEvent[K] } = {
    version: 1,
    time: context.time.toISOString(),
    appId: context.appId,
    namespace: context.namespace,
    decision: made,
  };
  if (context.traceId !== undefined) event.traceId = context.traceId;
  if (context.spanId !== undefined) event.spanId = context.spanId;
  if (context.requestId !== undefined) event.requestId = context.requestId;
  if (context.batchIndex !== undefined) event.batchIndex = context.batchIndex;
  return Object.freeze(event);
}
