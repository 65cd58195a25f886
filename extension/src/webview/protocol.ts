/**
 * The typed messages between the extension and its webviews (the trace waterfall, the workflow instance). Every
 * message a webview sends is checked with `parseFromWebview` before it is acted on: a webview is a page, and what
 * it posts is input.
 */
import type { Waterfall } from '../model/traces.js';
import type { InstanceView } from '../model/workflows.js';

/** Details of an instance only its app's sidecar has (payloads never cross the telemetry stream). */
export interface InstanceDetails {
  readonly input?: string;
  readonly output?: string;
  readonly customStatus?: string;
  readonly failure?: string;
  /** The history, one line per event: time, type and a short summary. */
  readonly history: ReadonlyArray<{ readonly time: string; readonly type: string; readonly summary: string }>;
}

/** A workflow action the instance view offers. */
export type InstanceAction = 'terminate' | 'suspend' | 'resume' | 'raise' | 'purge' | 'rerun';
export const INSTANCE_ACTIONS: readonly InstanceAction[] = Object.freeze(['terminate', 'suspend', 'resume', 'raise', 'purge', 'rerun']);

/** What the extension sends a webview. */
export type ToWebview =
  | { readonly type: 'trace'; readonly waterfall: Waterfall; readonly redacted: boolean }
  | { readonly type: 'instance'; readonly view: InstanceView; readonly details?: InstanceDetails; readonly detailsError?: string; readonly server?: string; readonly tool?: string };

/** What a webview sends the extension. */
export type FromWebview =
  | { readonly type: 'ready' }
  | { readonly type: 'copyTraceId'; readonly traceId: string }
  | { readonly type: 'openTrace'; readonly traceId: string }
  | { readonly type: 'openInstance'; readonly instanceId: string }
  | { readonly type: 'action'; readonly action: InstanceAction }
  | { readonly type: 'debug'; readonly until?: number };

const ID = /^[A-Za-z0-9._:@-]{1,256}$/;

/** The message a webview posted, or undefined when it is not one of ours (or its fields are not what they must be). */
export function parseFromWebview(value: unknown): FromWebview | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const message = value as Record<string, unknown>;
  switch (message['type']) {
    case 'ready':
      return { type: 'ready' };
    case 'copyTraceId':
    case 'openTrace': {
      const traceId = message['traceId'];
      return typeof traceId === 'string' && /^[0-9a-f]{32}$/.test(traceId) ? { type: message['type'], traceId } : undefined;
    }
    case 'openInstance': {
      const instanceId = message['instanceId'];
      return typeof instanceId === 'string' && ID.test(instanceId) ? { type: 'openInstance', instanceId } : undefined;
    }
    case 'action': {
      const action = message['action'];
      return typeof action === 'string' && (INSTANCE_ACTIONS as readonly string[]).includes(action) ? { type: 'action', action: action as InstanceAction } : undefined;
    }
    case 'debug': {
      const until = message['until'];
      if (until === undefined) return { type: 'debug' };
      return typeof until === 'number' && Number.isInteger(until) && until >= 1 && until <= 1_000_000 ? { type: 'debug', until } : undefined;
    }
    default:
      return undefined;
  }
}
