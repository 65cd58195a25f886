/**
 * The webview panels: a trace's waterfall and a workflow instance. Each page runs one script (`dist/bundle/webview.js`)
 * under a Content-Security-Policy that allows only that script, by nonce, and talks to the extension through the
 * typed messages of `protocol.ts`. A panel stays live: new spans of its trace, or events of its instance, redraw it.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { layoutWaterfall, type TraceStore } from '../model/traces.js';
import { parseFromWebview, type FromWebview, type InstanceDetails, type ToWebview } from '../webview/protocol.js';
import type { WorkflowStore } from '../model/workflows.js';
import { parseToolWorkflow } from '@skein/runtime/editor';

/** The HTML of a panel: the page's root, its styles and its script, allowed by nonce and nothing else. */
export function panelHtml(webview: vscode.Webview, extensionUri: vscode.Uri, title: string): string {
  const nonce = randomBytes(16).toString('base64');
  const script = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'bundle', 'webview.js'));
  const style = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', 'webview.css'));
  const csp = [`default-src 'none'`, `script-src 'nonce-${nonce}'`, `style-src ${webview.cspSource}`, `img-src ${webview.cspSource}`, `font-src ${webview.cspSource}`].join('; ');
  const escapedTitle = title.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style.toString()}">
<title>${escapedTitle}</title>
</head>
<body>
<div id="root"><p class="note">Loading…</p></div>
<script nonce="${nonce}" src="${script.toString()}"></script>
</body>
</html>`;
}

/** One open panel and what it shows. */
abstract class Panel {
  readonly panel: vscode.WebviewPanel;
  private ready = false;

  constructor(viewType: string, title: string, extensionUri: vscode.Uri, onDispose: () => void) {
    this.panel = vscode.window.createWebviewPanel(viewType, title, vscode.ViewColumn.Active, {
      enableScripts: true,
      retainContextWhenHidden: true,
      localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')],
    });
    this.panel.webview.html = panelHtml(this.panel.webview, extensionUri, title);
    this.panel.webview.onDidReceiveMessage((raw: unknown) => {
      const message = parseFromWebview(raw);
      if (!message) return;
      if (message.type === 'ready') {
        this.ready = true;
        this.update();
        return;
      }
      void this.handle(message);
    });
    this.panel.onDidDispose(onDispose);
  }

  protected post(message: ToWebview): void {
    if (this.ready) void this.panel.webview.postMessage(message);
  }

  abstract update(): void;
  protected abstract handle(message: FromWebview): Promise<void>;
}

/** A trace's waterfall. */
export class TracePanel extends Panel {
  constructor(
    readonly traceId: string,
    private readonly store: TraceStore,
    extensionUri: vscode.Uri,
    onDispose: () => void,
  ) {
    super('skein.trace', `Trace ${traceId.slice(0, 8)}`, extensionUri, onDispose);
  }

  update(): void {
    this.post({ type: 'trace', waterfall: layoutWaterfall(this.traceId, this.store.spansOf(this.traceId)), redacted: true });
  }

  protected async handle(message: FromWebview): Promise<void> {
    if (message.type === 'copyTraceId') await vscode.commands.executeCommand('skein.copyTraceId', message.traceId);
  }
}

/** What the instance panel asks of the extension. */
export interface InstanceActions {
  details(appId: string, instanceId: string): Promise<InstanceDetails>;
  act(action: Extract<FromWebview, { type: 'action' }>['action'], appId: string, instanceId: string): Promise<void>;
  /** Replays the instance under the debugger, up to a history event (from 1) or all of it. */
  debug(until: number | undefined): Promise<void>;
}

/** A workflow instance: timeline, payloads and history from its sidecar, actions. */
export class InstancePanel extends Panel {
  private details: InstanceDetails | undefined;
  private detailsError: string | undefined;

  constructor(
    readonly appId: string,
    readonly instanceId: string,
    private readonly store: WorkflowStore,
    private readonly actions: InstanceActions,
    extensionUri: vscode.Uri,
    onDispose: () => void,
  ) {
    super('skein.instance', `Workflow ${instanceId}`, extensionUri, onDispose);
    void this.load();
  }

  /** Reads the instance's payloads and history from its sidecar again. */
  async load(): Promise<void> {
    try {
      this.details = await this.actions.details(this.appId, this.instanceId);
      this.detailsError = undefined;
    } catch (error) {
      this.detailsError = `Input, output and history come from the sidecar of ${this.appId}: ${(error as Error).message}`;
    }
    this.update();
  }

  update(): void {
    const view = this.store.instance(this.appId, this.instanceId);
    if (!view) return;
    const tool = parseToolWorkflow(view.workflowName);
    this.post({ type: 'instance', view, ...(this.details ? { details: this.details } : {}), ...(this.detailsError ? { detailsError: this.detailsError } : {}), ...(tool ? { server: tool.server, ...(tool.kind === 'call' ? { tool: tool.tool } : {}) } : {}) });
  }

  protected async handle(message: FromWebview): Promise<void> {
    if (message.type === 'openTrace') await vscode.commands.executeCommand('skein.openTrace', message.traceId);
    else if (message.type === 'debug') await this.actions.debug(message.until);
    else if (message.type === 'openInstance') await vscode.commands.executeCommand('skein.openInstance', this.appId, message.instanceId);
    else if (message.type === 'action') {
      try {
        await this.actions.act(message.action, this.appId, this.instanceId);
        await this.load();
      } catch (error) {
        void vscode.window.showErrorMessage(`Skein: ${message.action} ${this.instanceId}: ${(error as Error).message}`);
      }
    }
  }
}
