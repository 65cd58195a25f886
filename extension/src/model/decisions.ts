/**
 * The decisions the editor shows: allow/deny events from the telemetry stream, grouped by the app that made them,
 * newest first. Pure.
 */
import type { DecisionEvent, DecisionSource } from '@skein/core';

/** What the decision list filters on. */
export interface DecisionFilter {
  app?: string;
  source?: DecisionSource;
  deniedOnly?: boolean;
}

/** A decision with the key the list knows it by. */
export interface DecisionItem {
  /** Stable within one session of the store: the order it arrived in. */
  readonly seq: number;
  readonly event: DecisionEvent;
  readonly timeMs: number;
}

/** True when `item` passes `filter`. */
export function matchesDecision(item: DecisionItem, filter: DecisionFilter): boolean {
  if (filter.app !== undefined && item.event.appId !== filter.app) return false;
  if (filter.source !== undefined && item.event.decision.source !== filter.source) return false;
  if (filter.deniedOnly && item.event.decision.allowed) return false;
  return true;
}

/** The most recent decisions, at most `max`; the oldest go first. */
export class DecisionStore {
  private readonly items: DecisionItem[] = [];
  private readonly max: number;
  private seq = 0;

  constructor(options: { max?: number } = {}) {
    this.max = options.max ?? 20_000;
  }

  add(event: DecisionEvent): DecisionItem {
    const item = { seq: this.seq++, event, timeMs: Date.parse(event.time) };
    this.items.push(item);
    if (this.items.length > this.max) this.items.splice(0, this.items.length - this.max);
    return item;
  }

  get size(): number {
    return this.items.length;
  }

  /** Forgets everything (a new connection reads the history window again). */
  clear(): void {
    this.items.length = 0;
  }

  /** Decisions passing `filter`, newest first. */
  list(filter: DecisionFilter = {}, limit = Infinity): DecisionItem[] {
    const out: DecisionItem[] = [];
    for (let index = this.items.length - 1; index >= 0 && out.length < limit; index -= 1) {
      const item = this.items[index] as DecisionItem;
      if (matchesDecision(item, filter)) out.push(item);
    }
    return out;
  }

  /** Decisions by app (the app whose sidecar decided), apps by name, each newest first with its deny count. */
  byApp(filter: DecisionFilter = {}, limitPerApp = Infinity): Array<{ app: string; denied: number; decisions: DecisionItem[] }> {
    const groups = new Map<string, { app: string; denied: number; decisions: DecisionItem[] }>();
    for (const item of this.list(filter)) {
      const group = groups.get(item.event.appId) ?? { app: item.event.appId, denied: 0, decisions: [] };
      if (!item.event.decision.allowed) group.denied += 1;
      if (group.decisions.length < limitPerApp) group.decisions.push(item);
      groups.set(item.event.appId, group);
    }
    return [...groups.values()].sort((a, b) => a.app.localeCompare(b.app));
  }

  /** The decisions made on spans of one trace, oldest first (the waterfall's markers come from the spans). */
  ofTrace(traceId: string): DecisionItem[] {
    return this.items.filter((item) => item.event.traceId === traceId);
  }

  /** The most recent `count` tool-policy decisions, oldest first: the calls a policy dry run replays. */
  recentToolCalls(count: number): DecisionItem[] {
    const out: DecisionItem[] = [];
    for (let index = this.items.length - 1; index >= 0 && out.length < count; index -= 1) {
      const item = this.items[index] as DecisionItem;
      if (item.event.decision.source === 'tool-policy') out.push(item);
    }
    return out.reverse();
  }
}
