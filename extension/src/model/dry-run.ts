/**
 * A policy dry run: the tool-policy decisions recorded on the mesh, decided again by the MCPToolPolicy being
 * edited (compiled by the runtime's own compiler), and what would change — allowed → denied and back — before the
 * file is saved. A record keeps the caller, method and tool, never the arguments or the token, so a decision that
 * hinges on a `when` or on claims is marked uncertain rather than guessed. Pure.
 */
import { parseSpiffeId, type DecisionEvent } from '@skein/core';
import { compileToolPoliciesOfText, replayToolDecision, toolPolicyAppliesTo } from '@skein/runtime/editor';

/** One recorded call, decided then and now. */
export interface DryRunRow {
  readonly time: string;
  readonly app: string;
  readonly caller: string;
  readonly method: string;
  readonly tool?: string;
  readonly before: { readonly allowed: boolean; readonly rule: string };
  readonly after: { readonly allowed: boolean; readonly rule: string; readonly reason: string };
  /** False when the new deciding rule needs the arguments or the token, which records do not keep. */
  readonly certain: boolean;
  /** `allowed → denied`, `denied → allowed`, `same`. */
  readonly change: 'now-denied' | 'now-allowed' | 'same';
}

/** The outcome of a dry run. */
export interface DryRun {
  /** Policies of the text that compiled. */
  readonly policies: readonly string[];
  /** Recorded calls to the apps those policies protect. */
  readonly replayed: number;
  readonly rows: readonly DryRunRow[];
  readonly nowDenied: number;
  readonly nowAllowed: number;
  readonly uncertain: number;
}

/** Replays `recorded` (tool-policy decisions, oldest first) against the MCPToolPolicies of `text`. */
export function dryRunToolPolicy(text: string, recorded: readonly DecisionEvent[]): DryRun {
  const policies = compileToolPoliciesOfText(text);
  const rows: DryRunRow[] = [];
  for (const event of recorded) {
    const made = event.decision;
    if (made.source !== 'tool-policy' || made.method === undefined) continue;
    const policy = policies.find((candidate) => toolPolicyAppliesTo(candidate, event.appId));
    if (!policy) continue;
    const callerAppId = parseSpiffeId(made.caller)?.appId;
    const replayed = replayToolDecision({ ...policy, target: event.appId }, { callerAppId, caller: made.caller, method: made.method, ...(made.tool !== undefined ? { toolName: made.tool } : {}) });
    const after = replayed.decision;
    rows.push({
      time: event.time,
      app: event.appId,
      caller: made.caller,
      method: made.method,
      ...(made.tool !== undefined ? { tool: made.tool } : {}),
      before: { allowed: made.allowed, rule: made.rule },
      after: { allowed: after.allowed, rule: after.rule, reason: after.reason },
      certain: replayed.certain,
      change: made.allowed === after.allowed ? 'same' : after.allowed ? 'now-allowed' : 'now-denied',
    });
  }
  return {
    policies: policies.map((policy) => policy.name),
    replayed: rows.length,
    rows,
    nowDenied: rows.filter((row) => row.change === 'now-denied').length,
    nowAllowed: rows.filter((row) => row.change === 'now-allowed').length,
    uncertain: rows.filter((row) => !row.certain).length,
  };
}

/** The dry run as lines of text: a summary, then every call whose outcome changes or is uncertain. */
export function formatDryRun(run: DryRun): string[] {
  if (run.policies.length === 0) return ['No MCPToolPolicy in this file compiles; fix its problems first.'];
  const lines = [
    `Policies ${run.policies.join(', ')}: ${run.replayed} recorded call${run.replayed === 1 ? '' : 's'} replayed; ${run.nowDenied} allowed → denied, ${run.nowAllowed} denied → allowed, ${run.uncertain} depend on arguments or tokens not recorded.`,
  ];
  for (const row of run.rows) {
    if (row.change === 'same' && row.certain) continue;
    const arrow = row.change === 'now-denied' ? 'ALLOW → DENY' : row.change === 'now-allowed' ? 'DENY → ALLOW' : `${row.before.allowed ? 'ALLOW' : 'DENY'} (same)`;
    lines.push(`${row.time}  ${row.app}  ${row.caller}  ${row.method}${row.tool ? ` ${row.tool}` : ''}  ${arrow}  rule ${row.before.rule} → ${row.after.rule}${row.certain ? '' : '  (uncertain)'}  ${row.after.reason}`);
  }
  return lines;
}
