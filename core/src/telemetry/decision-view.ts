/**
 * Reading and showing decision events (`skein decisions`): parsing, filtering, one line per decision. Pure.
 */
import type { DecisionEvent, DecisionSource } from './decision.js';

/** The sources a decision can come from, for validating `--source`. */
export const DECISION_SOURCES: readonly DecisionSource[] = Object.freeze(['acl', 'tool-policy', 'jwt', 'workflow-policy', 'mcp-hook']);

/** What `skein decisions` filters on, besides the subject (app, namespace) and the time window. */
export interface DecisionFilter {
  source?: DecisionSource;
  /** Only refusals. */
  deniedOnly?: boolean;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A message of the stream as a `DecisionEvent` of version 1, or undefined when it is not one. */
export function parseDecisionEvent(data: unknown): DecisionEvent | undefined {
  if (!isRecord(data) || data['version'] !== 1 || typeof data['time'] !== 'string' || typeof data['appId'] !== 'string' || typeof data['namespace'] !== 'string') return undefined;
  const made = data['decision'];
  if (!isRecord(made) || typeof made['allowed'] !== 'boolean' || !DECISION_SOURCES.includes(made['source'] as DecisionSource)) return undefined;
  for (const field of ['rule', 'reason', 'caller', 'target']) if (typeof made[field] !== 'string') return undefined;
  return data as unknown as DecisionEvent;
}

/** True when `event` passes `filter`. */
export function matchesDecision(event: DecisionEvent, filter: DecisionFilter): boolean {
  if (filter.deniedOnly && event.decision.allowed) return false;
  if (filter.source && event.decision.source !== filter.source) return false;
  return true;
}

/** `spiffe://public/ns/default/agent` → `default/agent`: the trust domain is the same everywhere in one mesh. */
export function shortCaller(caller: string): string {
  const match = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/(.+)$/.exec(caller);
  return match ? `${match[1]}/${match[2]}` : caller;
}

/** One decision as a line: time, app, caller, result, source, rule, tool, reason. */
export function formatDecisionLine(event: DecisionEvent): string {
  const made = event.decision;
  return [
    event.time.padEnd(24),
    event.appId.padEnd(16),
    shortCaller(made.caller).padEnd(24),
    (made.allowed ? 'ALLOW' : 'DENY').padEnd(6),
    made.source.padEnd(11),
    made.rule.padEnd(16),
    (made.tool ?? '-').padEnd(14),
    made.reason,
  ].join('  ');
}

/** The header line matching `formatDecisionLine`. */
export function decisionHeader(): string {
  return ['TIME'.padEnd(24), 'APP'.padEnd(16), 'CALLER'.padEnd(24), 'RESULT', 'SOURCE'.padEnd(11), 'RULE'.padEnd(16), 'TOOL'.padEnd(14), 'REASON'].join('  ');
}
