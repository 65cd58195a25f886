/**
 * The Skein extension: connects to a mesh (the local `skein up`, or a configured remote one), shows its traces,
 * decisions and workflow instances live, checks resource YAML as it is typed, and puts the mesh's commands in the
 * palette under "Skein". The views read pure models (`model/`); this file wires them to VS Code.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { parseDuration, type DecisionEvent } from '@skein/core';
import { WorkflowApi, summarizeEvent } from '@skein/runtime/editor';
import { MeshConnection, localSidecars, meshHome, type LocalSidecar, type MeshSettings, type MeshStatus } from './mesh.js';
import { replayLaunchConfiguration } from './model/replay-debug.js';
import { TraceStore } from './model/traces.js';
import { DecisionStore } from './model/decisions.js';
import { WorkflowStore } from './model/workflows.js';
import { locateRule } from './model/rule-location.js';
import { dryRunToolPolicy, formatDryRun } from './model/dry-run.js';
import { DecisionsTree, TracesTree, WorkflowsTree, decisionOf, instanceOf } from './views/trees.js';
import { InstancePanel, TracePanel } from './views/panels.js';
import { registerEditing } from './views/editing.js';
import type { InstanceAction, InstanceDetails } from './webview/protocol.js';

/** How often the trees redraw at most while telemetry streams in (new items show within this, well under 1 s). */
const REFRESH_MS = 250;

function settingsOf(): MeshSettings & { maxSpans: number } {
  const config = vscode.workspace.getConfiguration('skein');
  let historyMs = 3_600_000;
  try {
    historyMs = parseDuration(config.get<string>('history') ?? '1h');
  } catch {
    void vscode.window.showWarningMessage('Skein: skein.history is not a duration (30m, 1h, 24h); reading the last hour.');
  }
  const text = (name: string): string | undefined => {
    const value = config.get<string>(name);
    return value && value.trim() !== '' ? value : undefined;
  };
  return {
    home: meshHome(text('home')),
    ...(text('natsUrl') ? { natsUrl: text('natsUrl') } : {}),
    ...(text('trustBundle') ? { trustBundle: text('trustBundle') } : {}),
    ...(text('certFile') ? { certFile: text('certFile') } : {}),
    ...(text('keyFile') ? { keyFile: text('keyFile') } : {}),
    historyMs,
    maxSpans: config.get<number>('maxSpans') ?? 50_000,
  };
}

function statusText(status: MeshStatus): { text: string; tooltip: string } {
  switch (status.kind) {
    case 'connected':
      return { text: `$(pulse) Skein: ${status.apps} app${status.apps === 1 ? '' : 's'}`, tooltip: `Connected to ${status.url}: ${status.apps} live app${status.apps === 1 ? '' : 's'}` };
    case 'connecting':
      return { text: '$(sync~spin) Skein: connecting', tooltip: `Connecting to ${status.detail}` };
    case 'disconnected':
      return { text: '$(debug-disconnect) Skein: disconnected', tooltip: `Disconnected: ${status.reason}. Reconnects by itself; "Skein: Start the local mesh" starts one.` };
  }
}

/** What the extension hands its tests and other extensions. */
export interface SkeinApi {
  status(): MeshStatus;
  counts(): { traces: number; spans: number; decisions: number; instances: number };
}

export function activate(context: vscode.ExtensionContext): SkeinApi {
  const settings = settingsOf();
  const traces = new TraceStore({ maxSpans: settings.maxSpans });
  const decisions = new DecisionStore();
  const workflows = new WorkflowStore();
  const tracesTree = new TracesTree(traces);
  const decisionsTree = new DecisionsTree(decisions);
  const workflowsTree = new WorkflowsTree(workflows);
  const tracePanels = new Map<string, TracePanel>();
  const instancePanels = new Map<string, InstancePanel>();

  const statusItem = vscode.window.createStatusBarItem('skein.status', vscode.StatusBarAlignment.Left, 10);
  statusItem.name = 'Skein';
  statusItem.command = 'skein.reconnect';
  statusItem.show();

  let dirty = { traces: false, decisions: false, workflows: false };
  const touched = new Set<string>();
  const timer = setInterval(() => {
    if (dirty.traces) tracesTree.refresh();
    if (dirty.decisions) decisionsTree.refresh();
    if (dirty.workflows) workflowsTree.refresh();
    for (const key of touched) {
      tracePanels.get(key)?.update();
      // An instance that moved on has a new history and maybe an output: read them from its sidecar again.
      void instancePanels.get(key)?.load();
    }
    touched.clear();
    dirty = { traces: false, decisions: false, workflows: false };
  }, REFRESH_MS);

  let mesh: MeshConnection | undefined;
  const connect = (): void => {
    const current = settingsOf();
    // A new connection reads the history window again: start from nothing rather than count things twice.
    traces.clear();
    decisions.clear();
    workflows.clear();
    dirty = { traces: true, decisions: true, workflows: true };
    mesh = new MeshConnection(current, {
      status(status) {
        const { text, tooltip } = statusText(status);
        statusItem.text = text;
        statusItem.tooltip = tooltip;
      },
      span(span) {
        if (traces.add(span)) {
          dirty.traces = true;
          touched.add(span.traceId);
        }
      },
      decision(event) {
        decisions.add(event);
        dirty.decisions = true;
      },
      workflow(event) {
        if (workflows.add(event)) {
          dirty.workflows = true;
          touched.add(`${event.appId}/${event.instanceId}`);
        }
      },
    });
    const { text, tooltip } = statusText(mesh.status);
    statusItem.text = text;
    statusItem.tooltip = tooltip;
    mesh.start();
  };
  connect();

  const openTrace = (traceId: string): void => {
    const existing = tracePanels.get(traceId);
    if (existing) {
      existing.panel.reveal();
      return;
    }
    const panel = new TracePanel(traceId, traces, context.extensionUri, () => tracePanels.delete(traceId));
    tracePanels.set(traceId, panel);
  };

  const localSidecar = (appId: string): LocalSidecar => {
    const sidecar = localSidecars(settingsOf().home).get(appId);
    if (!sidecar) throw new Error(`no sidecar of ${appId} runs on this machine (skein list shows them); its workflows can be watched but not acted on from here`);
    return sidecar;
  };
  const debugInstance = async (appId: string, instanceId: string, until?: number): Promise<void> => {
    try {
      const sidecar = localSidecar(appId);
      const view = workflows.instance(appId, instanceId);
      const folder = vscode.workspace.workspaceFolders?.[0];
      const configuration = replayLaunchConfiguration({
        instanceId,
        workflowName: view?.workflowName ?? 'workflow',
        grpcPort: sidecar.grpcPort,
        ...(until === undefined ? {} : { until }),
        appCommand: sidecar.command,
        cliPath: skeinCliPath(),
        cwd: folder?.uri.fsPath ?? process.cwd(),
      });
      const started = await vscode.debug.startDebugging(folder, { ...configuration, args: [...configuration.args], skipFiles: [...configuration.skipFiles] });
      if (!started) void vscode.window.showErrorMessage(`Skein: the debugger did not start the replay of ${instanceId}`);
    } catch (error) {
      void vscode.window.showErrorMessage(`Skein: cannot debug ${instanceId}: ${(error as Error).message}`);
    }
  };
  const sidecarOf = (appId: string): WorkflowApi => {
    const sidecar = localSidecar(appId);
    return new WorkflowApi(`http://127.0.0.1:${sidecar.httpPort}`, process.env['DAPR_API_TOKEN']);
  };
  const actions = {
    async details(appId: string, instanceId: string): Promise<InstanceDetails> {
      const api = sidecarOf(appId);
      const [state, history] = await Promise.all([api.get(instanceId), api.history(instanceId)]);
      const properties = state.properties ?? {};
      const failure = [properties['dapr.workflow.failure.error_type'], properties['dapr.workflow.failure.error_message']].filter((part) => part).join(': ');
      return {
        ...(properties['dapr.workflow.input'] !== undefined ? { input: properties['dapr.workflow.input'] } : {}),
        ...(properties['dapr.workflow.output'] !== undefined ? { output: properties['dapr.workflow.output'] } : {}),
        ...(properties['dapr.workflow.custom_status'] !== undefined ? { customStatus: properties['dapr.workflow.custom_status'] } : {}),
        ...(failure ? { failure } : {}),
        history: history.map((event) => ({ time: event.timestamp, type: event.kind, summary: summarizeEvent(event) })),
      };
    },
    async act(action: InstanceAction, appId: string, instanceId: string): Promise<void> {
      const api = sidecarOf(appId);
      switch (action) {
        case 'terminate':
        case 'purge':
        case 'resume':
          await api.operation(instanceId, action);
          return;
        case 'suspend':
          await api.operation(instanceId, 'pause');
          return;
        case 'raise': {
          const name = await vscode.window.showInputBox({ prompt: `Event name to raise on ${instanceId}` });
          if (!name) return;
          const data = await vscode.window.showInputBox({ prompt: 'Event data (JSON, empty for none)', validateInput: (value) => jsonProblem(value) });
          if (data === undefined) return;
          await api.raiseEvent(instanceId, name, data === '' ? undefined : data);
          return;
        }
        case 'rerun': {
          const state = await api.get(instanceId);
          const started = await api.start(state.workflowName, undefined, state.properties?.['dapr.workflow.input']);
          void vscode.window.showInformationMessage(`Skein: started ${state.workflowName} again as ${started}`);
          return;
        }
      }
    },
  };
  const openInstance = (appId: string, instanceId: string): void => {
    const key = `${appId}/${instanceId}`;
    const existing = instancePanels.get(key);
    if (existing) {
      existing.panel.reveal();
      void existing.load();
      return;
    }
    instancePanels.set(key, new InstancePanel(appId, instanceId, workflows, { ...actions, debug: (until) => debugInstance(appId, instanceId, until) }, context.extensionUri, () => instancePanels.delete(key)));
  };

  const dryRunOutput = vscode.window.createOutputChannel('Skein: policy dry run');
  const dryRun = (): void => {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showWarningMessage('Skein: open the MCPToolPolicy file to dry-run first');
      return;
    }
    const count = vscode.workspace.getConfiguration('skein').get<number>('dryRunCalls') ?? 500;
    const run = dryRunToolPolicy(editor.document.getText(), decisions.recentToolCalls(count).map((item) => item.event));
    const lines = formatDryRun(run);
    dryRunOutput.clear();
    dryRunOutput.appendLine(`Dry run of ${editor.document.uri.fsPath}${editor.document.isDirty ? ' (unsaved)' : ''} against the last ${count} recorded tool-policy decisions`);
    lines.forEach((line) => dryRunOutput.appendLine(line));
    dryRunOutput.show(true);
    void vscode.window.showInformationMessage(`Skein dry run: ${lines[0] ?? ''}`);
  };

  const terminal = (name: string, command: string): void => {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const created = vscode.window.createTerminal({ name, ...(folder ? { cwd: folder } : {}) });
    created.show();
    created.sendText(command);
  };

  const workflowAction = (action: InstanceAction) => async (node: unknown): Promise<void> => {
    const view = instanceOf(node);
    if (!view) return;
    try {
      await actions.act(action, view.appId, view.instanceId);
      await instancePanels.get(`${view.appId}/${view.instanceId}`)?.load();
    } catch (error) {
      void vscode.window.showErrorMessage(`Skein: ${action} ${view.instanceId}: ${(error as Error).message}`);
    }
  };

  context.subscriptions.push(
    statusItem,
    { dispose: () => clearInterval(timer) },
    { dispose: () => void mesh?.close() },
    vscode.window.registerTreeDataProvider('skein.traces', tracesTree),
    vscode.window.registerTreeDataProvider('skein.decisions', decisionsTree),
    vscode.window.registerTreeDataProvider('skein.workflows', workflowsTree),
    ...registerEditing(),
    vscode.commands.registerCommand('skein.reconnect', async () => {
      await mesh?.close();
      connect();
    }),
    dryRunOutput,
    vscode.commands.registerCommand('skein.dryRunPolicy', dryRun),
    vscode.commands.registerCommand('skein.up', () => terminal('skein up', `${skeinCommand()} up`)),
    vscode.commands.registerCommand('skein.demo', () => {
      if (!workspaceScripts()['start']?.includes('mcp-demo')) {
        void vscode.window.showWarningMessage('Skein: the demo is started from a checkout of Skein (npm start there); this workspace is not one');
        return;
      }
      terminal('Skein demo', 'npm start');
    }),
    vscode.commands.registerCommand('skein.openTrace', async (traceId?: string) => {
      const id = traceId ?? (await vscode.window.showInputBox({ prompt: 'Trace id (32 hex digits, or the start of one)' }))?.trim().toLowerCase();
      if (!id) return;
      const matches = traces.list().filter((item) => item.traceId.startsWith(id));
      if (matches.length === 0) {
        void vscode.window.showWarningMessage(`Skein: no trace ${id} has been seen (the last ${settingsOf().historyMs / 60_000} min of telemetry are read)`);
        return;
      }
      openTrace((matches.find((item) => item.traceId === id) ?? matches[0])?.traceId as string);
    }),
    vscode.commands.registerCommand('skein.copyTraceId', async (argument: unknown) => {
      const traceId = typeof argument === 'string' ? argument : (argument as { item?: { traceId?: string } } | undefined)?.item?.traceId;
      if (!traceId) return;
      await vscode.env.clipboard.writeText(traceId);
      void vscode.window.setStatusBarMessage(`Skein: copied trace id ${traceId}`, 3000);
    }),
    vscode.commands.registerCommand('skein.filterTraces', async () => {
      const facets = traces.facets();
      const picks = [
        ...facets.apps.map((app) => ({ label: `app: ${app}`, apply: { app } })),
        ...facets.methods.map((method) => ({ label: `MCP method: ${method}`, apply: { method } })),
        ...facets.tools.map((tool) => ({ label: `tool: ${tool}`, apply: { tool } })),
        { label: 'status: error', apply: { status: 'error' as const } },
        { label: 'status: ok', apply: { status: 'ok' as const } },
        { label: 'last 5 minutes', apply: { sinceMs: Date.now() - 300_000 } },
        { label: 'last hour', apply: { sinceMs: Date.now() - 3_600_000 } },
      ];
      const chosen = await vscode.window.showQuickPick(picks, { canPickMany: true, placeHolder: 'Show traces matching all of these' });
      if (!chosen) return;
      tracesTree.filter = Object.assign({}, ...chosen.map((pick) => pick.apply)) as typeof tracesTree.filter;
      tracesTree.refresh();
    }),
    vscode.commands.registerCommand('skein.clearTraceFilter', () => {
      tracesTree.filter = {};
      tracesTree.refresh();
    }),
    vscode.commands.registerCommand('skein.filterDecisions', async () => {
      const chosen = await vscode.window.showQuickPick(
        [{ label: 'denied only', apply: { deniedOnly: true } }, ...(['acl', 'tool-policy', 'jwt', 'workflow-policy', 'mcp-hook'] as const).map((source) => ({ label: `source: ${source}`, apply: { source } }))],
        { canPickMany: true, placeHolder: 'Show decisions matching all of these (none: all)' },
      );
      if (!chosen) return;
      decisionsTree.filter = Object.assign({}, ...chosen.map((pick) => pick.apply)) as typeof decisionsTree.filter;
      decisionsTree.refresh();
    }),
    vscode.commands.registerCommand('skein.tracesOfAppUnderCursor', () => {
      const editor = vscode.window.activeTextEditor;
      if (!editor) return;
      const range = editor.document.getWordRangeAtPosition(editor.selection.active, /[A-Za-z0-9][A-Za-z0-9-]*/);
      const app = range ? editor.document.getText(range) : undefined;
      if (!app) return;
      tracesTree.filter = { app };
      tracesTree.refresh();
      void vscode.commands.executeCommand('skein.traces.focus');
    }),
    vscode.commands.registerCommand('skein.openDecisionTrace', (node: unknown) => {
      const item = decisionOf(node);
      if (item?.event.traceId) openTrace(item.event.traceId);
    }),
    vscode.commands.registerCommand('skein.openDecisionRule', async (node: unknown) => {
      const item = decisionOf(node);
      if (item) await openRule(item.event);
    }),
    vscode.commands.registerCommand('skein.openInstance', async (appId?: string, instanceId?: string) => {
      if (appId && instanceId) {
        openInstance(appId, instanceId);
        return;
      }
      const query = await vscode.window.showInputBox({ prompt: 'Workflow instance id (or part of it, or a workflow name)' });
      if (!query) return;
      const found = workflows.find(query);
      const pick = found.length === 1 ? found[0] : await vscode.window.showQuickPick(found.map((view) => ({ label: view.instanceId, description: `${view.workflowName} · ${view.appId} · ${view.status}`, view })), { placeHolder: `${found.length} instances match` }).then((chosen) => chosen?.view);
      if (!pick) {
        if (found.length === 0) void vscode.window.showWarningMessage(`Skein: no workflow instance matching ${query} has been seen`);
        return;
      }
      openInstance(pick.appId, pick.instanceId);
    }),
    vscode.commands.registerCommand('skein.workflow.terminate', workflowAction('terminate')),
    vscode.commands.registerCommand('skein.workflow.suspend', workflowAction('suspend')),
    vscode.commands.registerCommand('skein.workflow.resume', workflowAction('resume')),
    vscode.commands.registerCommand('skein.workflow.raise', workflowAction('raise')),
    vscode.commands.registerCommand('skein.workflow.purge', workflowAction('purge')),
    vscode.commands.registerCommand('skein.workflow.rerun', workflowAction('rerun')),
    vscode.commands.registerCommand('skein.workflow.debug', async (node: unknown) => {
      const view = instanceOf(node);
      if (view) await debugInstance(view.appId, view.instanceId);
    }),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (!event.affectsConfiguration('skein')) return;
      await mesh?.close();
      connect();
    }),
  );

  return {
    status: () => mesh?.status ?? { kind: 'disconnected', reason: 'not started' },
    counts: () => ({ traces: traces.size, spans: traces.spans, decisions: decisions.size, instances: workflows.size }),
  };
}

/** Opens the YAML rule that made a decision, searching the workspace's resource files. */
async function openRule(event: DecisionEvent): Promise<void> {
  const uris = await vscode.workspace.findFiles('**/*.{yaml,yml}', '**/node_modules/**', 500);
  const files = await Promise.all(uris.map(async (uri) => ({ uri: uri.toString(), text: (await vscode.workspace.openTextDocument(uri)).getText() })));
  const location = locateRule(event, files);
  if (!location) {
    void vscode.window.showWarningMessage(`Skein: the ${event.decision.source} rule "${event.decision.rule}" is not in a YAML file of this workspace`);
    return;
  }
  const document = await vscode.workspace.openTextDocument(vscode.Uri.parse(location.uri));
  const range = new vscode.Range(location.range.start.line, location.range.start.character, location.range.end.line, location.range.end.character);
  await vscode.window.showTextDocument(document, { selection: range });
}

/** The `scripts` of the first workspace folder's package.json (none when it has none). */
function workspaceScripts(): Record<string, string> {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (!folder) return {};
  try {
    const manifest = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
    return manifest.scripts ?? {};
  } catch {
    return {};
  }
}

/**
 * The `skein` CLI script the debugger launches for a replay: the `skein.cliPath` setting, else the checkout's own
 * build (in a Skein checkout), else the one installed in the workspace, else `skein` on the PATH.
 */
function skeinCliPath(): string {
  const configured = vscode.workspace.getConfiguration('skein').get<string>('cliPath');
  if (configured && configured.trim() !== '') return configured;
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const candidates = folder ? [join(folder, 'runtime', 'dist', 'src', 'cli.js'), join(folder, 'node_modules', '@skein', 'runtime', 'dist', 'src', 'cli.js')] : [];
  for (const dir of (process.env['PATH'] ?? '').split(':')) if (dir) candidates.push(join(dir, 'skein'));
  for (const candidate of candidates) {
    try {
      return realpathSync(candidate);
    } catch {
      // Not there.
    }
  }
  throw new Error('no skein CLI found: set skein.cliPath to its cli.js, or open a Skein checkout or a workspace that installs @skein/runtime');
}

/** How to run the CLI here: the checkout's own script in a Skein checkout, else `skein` from the PATH. */
function skeinCommand(): string {
  return workspaceScripts()['skein'] ? 'npm run skein --' : 'skein';
}

function jsonProblem(value: string): string | undefined {
  if (value === '') return undefined;
  try {
    JSON.parse(value);
    return undefined;
  } catch (error) {
    return `not JSON: ${(error as Error).message}`;
  }
}

export function deactivate(): void {
  // Everything is disposed through the context's subscriptions.
}
