/**
 * Workflow instances as the editor shows them live: built from the `workflow.*` events of the telemetry stream
 * (which carry no payloads), by app and status, each with a timeline of its activities, timers, events and child
 * workflows. Inputs, outputs and custom status come from the app's sidecar when an instance is opened. Pure.
 */
import type { WorkflowEvent } from '@skein/core';

/** Dapr's names of an instance's status. */
export type InstanceStatus = 'RUNNING' | 'COMPLETED' | 'FAILED' | 'TERMINATED' | 'SUSPENDED';

/** Every status, in the order the tree shows them. */
export const INSTANCE_STATUSES: readonly InstanceStatus[] = Object.freeze(['RUNNING', 'SUSPENDED', 'FAILED', 'TERMINATED', 'COMPLETED']);

/** One entry of an instance's timeline. */
export interface TimelineEntry {
  readonly kind: 'activity' | 'timer' | 'event' | 'child' | 'lifecycle';
  readonly label: string;
  /** When it started (an activity's scheduling, a timer's creation), ms since the epoch. */
  readonly startMs: number;
  readonly durationMs?: number;
  readonly status: 'running' | 'ok' | 'failed' | 'waiting';
  /** How many times an activity of this name was scheduled in the instance (retries count). */
  readonly attempt?: number;
  readonly failure?: { readonly type: string; readonly message: string };
  /** The history event the entry stands for, for "replay up to here". */
  readonly eventType: WorkflowEvent['type'];
  /** The instance id of a child workflow. */
  readonly childInstanceId?: string;
}

/** One instance. */
export interface InstanceView {
  readonly appId: string;
  readonly namespace: string;
  readonly instanceId: string;
  readonly workflowName: string;
  readonly executionId: string;
  readonly traceId: string;
  readonly status: InstanceStatus;
  readonly createdMs: number;
  readonly updatedMs: number;
  readonly durationMs?: number;
  readonly failure?: { readonly type: string; readonly message: string };
  readonly parentInstanceId?: string;
  readonly timeline: readonly TimelineEntry[];
}

interface Building {
  view: Omit<InstanceView, 'timeline'>;
  timeline: TimelineEntry[];
  /** Timeline index of each activity by task id, and of each timer by timer id. */
  tasks: Map<number, number>;
  timers: Map<number, number>;
  attempts: Map<string, number>;
  seen: Set<string>;
}

function key(namespace: string, appId: string, instanceId: string): string {
  return `${namespace}\u0000${appId}\u0000${instanceId}`;
}

const FINAL: Partial<Record<WorkflowEvent['type'], InstanceStatus>> = {
  'workflow.completed': 'COMPLETED',
  'workflow.failed': 'FAILED',
  'workflow.terminated': 'TERMINATED',
};

/** The instances seen on the stream, at most `max` (the least recently updated finished ones go first). */
export class WorkflowStore {
  private readonly instances = new Map<string, Building>();
  private readonly max: number;

  constructor(options: { max?: number } = {}) {
    this.max = options.max ?? 5000;
  }

  get size(): number {
    return this.instances.size;
  }

  /** Forgets everything (a new connection reads the history window again). */
  clear(): void {
    this.instances.clear();
  }

  /** Applies one event; false when it was applied already (the stream is read again after a reconnect). */
  add(event: WorkflowEvent): boolean {
    const id = key(event.namespace, event.appId, event.instanceId);
    const timeMs = Date.parse(event.time);
    let held = this.instances.get(id);
    const fingerprint = `${event.executionId}|${event.type}|${event.time}|${event.taskId ?? ''}|${event.timerId ?? ''}|${event.eventName ?? ''}`;
    if (held?.seen.has(fingerprint)) return false;
    if (!held || (event.type === 'workflow.created' && held.view.executionId !== event.executionId)) {
      held = {
        view: { appId: event.appId, namespace: event.namespace, instanceId: event.instanceId, workflowName: event.workflowName, executionId: event.executionId, traceId: event.traceId, status: 'RUNNING', createdMs: timeMs, updatedMs: timeMs, ...(event.parentInstanceId ? { parentInstanceId: event.parentInstanceId } : {}) },
        timeline: [],
        tasks: new Map(),
        timers: new Map(),
        attempts: new Map(),
        seen: new Set(),
      };
      this.instances.set(id, held);
    }
    held.seen.add(fingerprint);
    this.apply(held, event, timeMs);
    if (event.type === 'workflow.created' && event.parentInstanceId) this.linkChild(event, timeMs);
    this.evict();
    return true;
  }

  private apply(held: Building, event: WorkflowEvent, timeMs: number): void {
    const view = { ...held.view, updatedMs: Math.max(held.view.updatedMs, timeMs) };
    const { timeline } = held;
    switch (event.type) {
      case 'workflow.created':
        timeline.push({ kind: 'lifecycle', label: 'started', startMs: timeMs, status: 'ok', eventType: event.type });
        break;
      case 'workflow.activity.scheduled': {
        const name = event.activityName ?? '?';
        const attempt = (held.attempts.get(name) ?? 0) + 1;
        held.attempts.set(name, attempt);
        if (event.taskId !== undefined) held.tasks.set(event.taskId, timeline.length);
        timeline.push({ kind: 'activity', label: name, startMs: timeMs, status: 'running', attempt, eventType: event.type });
        break;
      }
      case 'workflow.activity.completed':
      case 'workflow.activity.failed': {
        const index = event.taskId === undefined ? undefined : held.tasks.get(event.taskId);
        const failed = event.type === 'workflow.activity.failed';
        const done = { status: failed ? ('failed' as const) : ('ok' as const), ...(event.durationMs !== undefined ? { durationMs: event.durationMs } : {}), ...(event.failure ? { failure: event.failure } : {}) };
        const entry = index === undefined ? undefined : timeline[index];
        if (entry && index !== undefined) timeline[index] = { ...entry, ...done, eventType: event.type };
        else timeline.push({ kind: 'activity', label: event.activityName ?? '?', startMs: timeMs - (event.durationMs ?? 0), ...done, eventType: event.type });
        break;
      }
      case 'workflow.timer.created':
        if (event.timerId !== undefined) held.timers.set(event.timerId, timeline.length);
        timeline.push({ kind: 'timer', label: `timer until ${event.fireAt ?? '?'}`, startMs: timeMs, status: 'waiting', eventType: event.type });
        break;
      case 'workflow.timer.fired': {
        const index = event.timerId === undefined ? undefined : held.timers.get(event.timerId);
        const entry = index === undefined ? undefined : timeline[index];
        if (entry && index !== undefined) timeline[index] = { ...entry, status: 'ok', durationMs: timeMs - entry.startMs, eventType: event.type };
        else timeline.push({ kind: 'timer', label: 'timer fired', startMs: timeMs, status: 'ok', eventType: event.type });
        break;
      }
      case 'workflow.event.raised':
        timeline.push({ kind: 'event', label: `event ${event.eventName ?? '?'}`, startMs: timeMs, status: 'ok', eventType: event.type });
        break;
      case 'workflow.suspended':
        view.status = 'SUSPENDED';
        timeline.push({ kind: 'lifecycle', label: 'suspended', startMs: timeMs, status: 'ok', eventType: event.type });
        break;
      case 'workflow.resumed':
        view.status = 'RUNNING';
        timeline.push({ kind: 'lifecycle', label: 'resumed', startMs: timeMs, status: 'ok', eventType: event.type });
        break;
      case 'workflow.continued_as_new':
        timeline.push({ kind: 'lifecycle', label: 'continued as new', startMs: timeMs, status: 'ok', eventType: event.type });
        break;
      case 'workflow.completed':
      case 'workflow.failed':
      case 'workflow.terminated': {
        view.status = FINAL[event.type] as InstanceStatus;
        if (event.durationMs !== undefined) view.durationMs = event.durationMs;
        if (event.failure) view.failure = event.failure;
        timeline.push({ kind: 'lifecycle', label: event.type.slice('workflow.'.length), startMs: timeMs, status: event.type === 'workflow.completed' ? 'ok' : 'failed', eventType: event.type, ...(event.failure ? { failure: event.failure } : {}) });
        break;
      }
    }
    held.view = view;
  }

  /** Puts a child workflow on its parent's timeline, where the parent is known. */
  private linkChild(event: WorkflowEvent, timeMs: number): void {
    const parent = this.instances.get(key(event.namespace, event.appId, event.parentInstanceId as string));
    if (!parent) return;
    parent.timeline.push({ kind: 'child', label: `child ${event.workflowName}`, startMs: timeMs, status: 'running', eventType: event.type, childInstanceId: event.instanceId });
  }

  private evict(): void {
    if (this.instances.size <= this.max) return;
    const finished = [...this.instances.entries()].filter(([, held]) => held.view.status !== 'RUNNING' && held.view.status !== 'SUSPENDED').sort(([, a], [, b]) => a.view.updatedMs - b.view.updatedMs);
    const candidates = finished.length > 0 ? finished : [...this.instances.entries()].sort(([, a], [, b]) => a.view.updatedMs - b.view.updatedMs);
    for (const [id] of candidates.slice(0, this.instances.size - this.max)) this.instances.delete(id);
  }

  /** One instance, with the status of its children read from their own events. */
  instance(appId: string, instanceId: string, namespace?: string): InstanceView | undefined {
    const held = namespace !== undefined ? this.instances.get(key(namespace, appId, instanceId)) : [...this.instances.values()].find((candidate) => candidate.view.appId === appId && candidate.view.instanceId === instanceId);
    if (!held) return undefined;
    const timeline = held.timeline.map((entry) => {
      if (entry.kind !== 'child' || entry.childInstanceId === undefined) return entry;
      const child = this.instances.get(key(held.view.namespace, held.view.appId, entry.childInstanceId));
      if (!child || child.view.status === 'RUNNING' || child.view.status === 'SUSPENDED') return entry;
      return { ...entry, status: child.view.status === 'COMPLETED' ? ('ok' as const) : ('failed' as const), ...(child.view.durationMs !== undefined ? { durationMs: child.view.durationMs } : {}) };
    });
    return { ...held.view, timeline };
  }

  /** Instances whose id or workflow name contains `query` (case-insensitive), most recently updated first. */
  find(query: string): InstanceView[] {
    const wanted = query.toLowerCase();
    return this.list().filter((view) => view.instanceId.toLowerCase().includes(wanted) || view.workflowName.toLowerCase().includes(wanted));
  }

  /** Every instance (timelines left out), most recently updated first. */
  list(filter: { app?: string; status?: InstanceStatus; name?: string } = {}): InstanceView[] {
    const out: InstanceView[] = [];
    for (const held of this.instances.values()) {
      const view = held.view;
      if (filter.app !== undefined && view.appId !== filter.app) continue;
      if (filter.status !== undefined && view.status !== filter.status) continue;
      if (filter.name !== undefined && view.workflowName !== filter.name) continue;
      out.push({ ...view, timeline: [] });
    }
    return out.sort((a, b) => b.updatedMs - a.updatedMs || a.instanceId.localeCompare(b.instanceId));
  }

  /** The tree: app → status → instances (most recently updated first), statuses with no instance left out. */
  byAppAndStatus(limitPerStatus = Infinity): Array<{ app: string; statuses: Array<{ status: InstanceStatus; count: number; instances: InstanceView[] }> }> {
    const apps = new Map<string, Map<InstanceStatus, InstanceView[]>>();
    for (const view of this.list()) {
      const statuses = apps.get(view.appId) ?? new Map<InstanceStatus, InstanceView[]>();
      const list = statuses.get(view.status) ?? [];
      list.push(view);
      statuses.set(view.status, list);
      apps.set(view.appId, statuses);
    }
    return [...apps.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([app, statuses]) => ({
        app,
        statuses: INSTANCE_STATUSES.filter((status) => statuses.has(status)).map((status) => {
          const instances = statuses.get(status) ?? [];
          return { status, count: instances.length, instances: instances.slice(0, limitPerStatus) };
        }),
      }));
  }
}
