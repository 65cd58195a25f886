/**
 * The three trees of the Skein view container: traces (app → trace → spans), decisions (app → decision) and
 * workflows (app → status → instance). Each reads its store's view model; VS Code asks for children lazily, so a
 * store of 10,000 spans costs only the rows on screen.
 */
import * as vscode from 'vscode';
import { formatMs, shortCaller, type SpanEvent } from '@skein/core';
import { parseToolWorkflow } from '@skein/runtime/editor';
import type { TraceFilter, TraceItem, TraceStore } from '../model/traces.js';
import { isFailedSpan } from '../model/traces.js';
import type { DecisionFilter, DecisionItem, DecisionStore } from '../model/decisions.js';
import type { InstanceStatus, InstanceView, WorkflowStore } from '../model/workflows.js';

/** Rows under one app or status at most; the newest are shown. */
const ROWS_PER_GROUP = 200;

function time(ms: number): string {
  return new Date(ms).toISOString().slice(11, 23);
}

type TraceNode = { kind: 'app'; app: string; count: number; errors: number } | { kind: 'trace'; app: string; item: TraceItem } | { kind: 'span'; span: SpanEvent; traceId: string };

/** Traces: app → trace → its spans (flat, by start). */
export class TracesTree implements vscode.TreeDataProvider<TraceNode> {
  private readonly changed = new vscode.EventEmitter<TraceNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  filter: TraceFilter = {};

  constructor(private readonly store: TraceStore) {}

  refresh(): void {
    this.changed.fire(undefined);
  }

  getTreeItem(node: TraceNode): vscode.TreeItem {
    switch (node.kind) {
      case 'app': {
        const item = new vscode.TreeItem(node.app, vscode.TreeItemCollapsibleState.Expanded);
        item.description = `${node.count} trace${node.count === 1 ? '' : 's'}${node.errors > 0 ? ` · ${node.errors} failed` : ''}`;
        item.iconPath = new vscode.ThemeIcon('server-process');
        item.contextValue = 'app';
        item.id = `app:${node.app}`;
        return item;
      }
      case 'trace': {
        const { item: trace } = node;
        const item = new vscode.TreeItem(trace.tools.length > 0 ? `${trace.rootName} · ${trace.tools.join(', ')}` : trace.rootName, vscode.TreeItemCollapsibleState.Collapsed);
        item.description = `${time(trace.startMs)} · ${formatMs(trace.durationMs)} · ${trace.spanCount} spans${trace.status === 'error' ? ' · ERROR' : ''}`;
        item.tooltip = `trace ${trace.traceId}\napps ${trace.apps.join(', ')}${trace.methods.length > 0 ? `\nMCP ${trace.methods.join(', ')}` : ''}`;
        item.iconPath = new vscode.ThemeIcon(trace.status === 'error' ? 'error' : 'pass', new vscode.ThemeColor(trace.status === 'error' ? 'errorForeground' : 'testing.iconPassed'));
        item.contextValue = 'trace';
        item.id = `trace:${node.app}:${trace.traceId}`;
        item.command = { command: 'skein.openTrace', title: 'Open trace', arguments: [trace.traceId] };
        return item;
      }
      case 'span': {
        const { span } = node;
        const item = new vscode.TreeItem(span.name, vscode.TreeItemCollapsibleState.None);
        item.description = `${span.appId} · ${formatMs(span.durationMs)}`;
        item.iconPath = new vscode.ThemeIcon(isFailedSpan(span) ? 'error' : 'circle-small');
        item.id = `span:${node.traceId}:${span.spanId}`;
        item.command = { command: 'skein.openTrace', title: 'Open trace', arguments: [node.traceId] };
        return item;
      }
    }
  }

  getChildren(node?: TraceNode): TraceNode[] {
    if (!node) {
      return this.store.byApp(this.filter).map(({ app, traces }) => ({ kind: 'app' as const, app, count: traces.length, errors: traces.filter((trace) => trace.status === 'error').length }));
    }
    if (node.kind === 'app') return this.store.byApp({ ...this.filter, app: node.app }, ROWS_PER_GROUP).flatMap(({ traces }) => traces.map((item) => ({ kind: 'trace' as const, app: node.app, item })));
    if (node.kind === 'trace') {
      return [...this.store.spansOf(node.item.traceId)].sort((a, b) => (BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1)).map((span) => ({ kind: 'span' as const, span, traceId: node.item.traceId }));
    }
    return [];
  }
}

type DecisionNode = { kind: 'app'; app: string; count: number; denied: number } | { kind: 'decision'; item: DecisionItem };

/** Decisions: app → decision (newest first). */
export class DecisionsTree implements vscode.TreeDataProvider<DecisionNode> {
  private readonly changed = new vscode.EventEmitter<DecisionNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  filter: DecisionFilter = {};

  constructor(private readonly store: DecisionStore) {}

  refresh(): void {
    this.changed.fire(undefined);
  }

  getTreeItem(node: DecisionNode): vscode.TreeItem {
    if (node.kind === 'app') {
      const item = new vscode.TreeItem(node.app, vscode.TreeItemCollapsibleState.Expanded);
      item.description = `${node.count} decision${node.count === 1 ? '' : 's'} · ${node.denied} denied`;
      item.iconPath = new vscode.ThemeIcon('shield');
      item.id = `decisions:${node.app}`;
      return item;
    }
    const { event } = node.item;
    const made = event.decision;
    // The default namespace goes without saying; another one is named.
    const caller = shortCaller(made.caller).replace(/^default\//, '');
    const item = new vscode.TreeItem(`${made.allowed ? 'ALLOW' : 'DENY'} ${caller} → ${made.tool ?? made.method ?? made.target}`, vscode.TreeItemCollapsibleState.None);
    item.description = `${made.source} · ${made.rule} · ${event.time.slice(11, 23)}`;
    item.tooltip = new vscode.MarkdownString().appendText(`${made.allowed ? 'Allowed' : 'Denied'} by ${made.source} rule "${made.rule}"\n\n${made.reason}\n\ncaller ${made.caller}\ntarget ${made.target}${made.method ? `\nmethod ${made.method}` : ''}${made.tool ? `\ntool ${made.tool}` : ''}${event.traceId ? `\ntrace ${event.traceId}` : ''}`);
    item.iconPath = new vscode.ThemeIcon(made.allowed ? 'check' : 'circle-slash', new vscode.ThemeColor(made.allowed ? 'testing.iconPassed' : 'errorForeground'));
    item.contextValue = event.traceId ? 'decision-traced' : 'decision';
    item.id = `decision:${node.item.seq}`;
    item.command = event.traceId ? { command: 'skein.openDecisionTrace', title: 'Open trace', arguments: [node] } : { command: 'skein.openDecisionRule', title: 'Go to rule', arguments: [node] };
    return item;
  }

  getChildren(node?: DecisionNode): DecisionNode[] {
    if (!node) return this.store.byApp(this.filter).map((group) => ({ kind: 'app' as const, app: group.app, count: group.decisions.length, denied: group.denied }));
    if (node.kind === 'app') return this.store.list({ ...this.filter, app: node.app }, ROWS_PER_GROUP).map((item) => ({ kind: 'decision' as const, item }));
    return [];
  }
}

/** A node of the decisions tree that is a decision. */
export function decisionOf(node: unknown): DecisionItem | undefined {
  const candidate = node as DecisionNode | undefined;
  return candidate?.kind === 'decision' ? candidate.item : undefined;
}

type WorkflowNode = { kind: 'app'; app: string; count: number } | { kind: 'status'; app: string; status: InstanceStatus; count: number } | { kind: 'instance'; view: InstanceView };

/** Workflows: app → status → instance. */
export class WorkflowsTree implements vscode.TreeDataProvider<WorkflowNode> {
  private readonly changed = new vscode.EventEmitter<WorkflowNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;

  constructor(private readonly store: WorkflowStore) {}

  refresh(): void {
    this.changed.fire(undefined);
  }

  getTreeItem(node: WorkflowNode): vscode.TreeItem {
    if (node.kind === 'app') {
      const item = new vscode.TreeItem(node.app, vscode.TreeItemCollapsibleState.Expanded);
      item.description = `${node.count} instance${node.count === 1 ? '' : 's'}`;
      item.iconPath = new vscode.ThemeIcon('server-process');
      item.id = `wf-app:${node.app}`;
      return item;
    }
    if (node.kind === 'status') {
      const item = new vscode.TreeItem(node.status, node.status === 'RUNNING' || node.status === 'FAILED' ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed);
      item.description = String(node.count);
      item.id = `wf-status:${node.app}:${node.status}`;
      return item;
    }
    const { view } = node;
    const tool = parseToolWorkflow(view.workflowName);
    const item = new vscode.TreeItem(tool ? `${tool.server} ${tool.kind === 'call' ? tool.tool : 'tools/list'}` : view.workflowName, vscode.TreeItemCollapsibleState.None);
    item.description = `${view.instanceId} · ${view.durationMs === undefined ? 'running' : formatMs(view.durationMs)}`;
    item.tooltip = `${view.workflowName}\n${view.instanceId}\n${view.status}${view.failure ? `\n${view.failure.type}: ${view.failure.message}` : ''}`;
    item.iconPath = new vscode.ThemeIcon(
      { RUNNING: 'sync', SUSPENDED: 'debug-pause', COMPLETED: 'pass', FAILED: 'error', TERMINATED: 'stop-circle' }[view.status],
    );
    item.contextValue = `instance-${view.status}`;
    item.id = `wf:${view.appId}:${view.instanceId}`;
    item.command = { command: 'skein.openInstance', title: 'Open instance', arguments: [view.appId, view.instanceId] };
    return item;
  }

  getChildren(node?: WorkflowNode): WorkflowNode[] {
    const tree = this.store.byAppAndStatus(ROWS_PER_GROUP);
    if (!node) return tree.map(({ app, statuses }) => ({ kind: 'app' as const, app, count: statuses.reduce((sum, entry) => sum + entry.count, 0) }));
    if (node.kind === 'app') return (tree.find((entry) => entry.app === node.app)?.statuses ?? []).map(({ status, count }) => ({ kind: 'status' as const, app: node.app, status, count }));
    if (node.kind === 'status') {
      const group = tree.find((entry) => entry.app === node.app)?.statuses.find((entry) => entry.status === node.status);
      return (group?.instances ?? []).map((view) => ({ kind: 'instance' as const, view }));
    }
    return [];
  }
}

/** The instance a workflows-tree node (or command argument) stands for. */
export function instanceOf(node: unknown): InstanceView | undefined {
  const candidate = node as WorkflowNode | undefined;
  return candidate?.kind === 'instance' ? candidate.view : undefined;
}
