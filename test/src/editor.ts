/**
 * The real editor for end-to-end tests: code-server (VS Code in the browser) serving a workspace, with an extension
 * loaded from its folder as under development, and headless Chromium driven by Playwright, used as a person would
 * (command palette, quick open, clicks). Both run through the harness as process groups, so a failing test leaks
 * neither; `scripts/editor-tools.mjs` installs them.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Harness, ManagedProcess } from './harness.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** code-server's entry script, as `scripts/editor-tools.mjs` installs it (`SKEIN_CODE_SERVER` overrides). */
export const CODE_SERVER_ENTRY = process.env['SKEIN_CODE_SERVER'] ?? join(REPO_ROOT, '.tools', 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js');
/** The Chromium Playwright drives (`SKEIN_CHROMIUM` overrides). */
export const CHROMIUM = process.env['SKEIN_CHROMIUM'] ?? '/usr/bin/chromium';
/** Where screenshots and logs of editor tests go, one folder per editor (gitignored). */
export const ARTIFACTS_DIR = join(REPO_ROOT, 'test', 'artifacts');

/** Flags for a headless Chromium that reaches nothing but loopback and keeps no state of its own. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-dev-shm-usage',
  '--disable-quic',
  '--window-size=1400,900',
];

/** User settings that keep the workbench quiet and the same on every run: no welcome page, tips or updates. */
const USER_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'security.workspace.trust.enabled': false,
  'window.restoreWindows': 'none',
  'chat.commandCenter.enabled': false,
};

/** Bounds on waits for the editor; guards against hanging, never a synchronisation delay. */
const START_TIMEOUT_MS = 60_000;
const UI_TIMEOUT_MS = 20_000;

/** What `startEditor` opens. */
export interface EditorOptions {
  /** The folder opened as the workspace (created when missing). */
  workspace: string;
  /** A folder holding an extension to load as under development (its package.json and built `main`). */
  extensionPath?: string;
  /** Written to the workspace's `.vscode/settings.json`. */
  settings?: Record<string, unknown>;
  /** Extra environment for code-server and so for the extension host (e.g. `SKEIN_HOME`). */
  env?: NodeJS.ProcessEnv;
  /** Name of this editor's artefacts folder under `test/artifacts/` (default `editor`). */
  name?: string;
}

/** A running code-server with a Chromium page on its workbench. */
export class Editor {
  /** The Playwright page showing the workbench. */
  readonly page: Page;
  /** The workbench URL the page opened. */
  readonly url: string;
  /** Folder of this editor's screenshots and logs. */
  readonly artifacts: string;
  readonly codeServer: ManagedProcess;
  readonly browserProcess: ManagedProcess;
  /** Lines the page wrote to its console, its uncaught errors and its failed requests. */
  readonly consoleLines: string[];
  private readonly browser: Browser;
  private closed = false;

  constructor(parts: { page: Page; url: string; artifacts: string; codeServer: ManagedProcess; browserProcess: ManagedProcess; browser: Browser; consoleLines: string[] }) {
    this.page = parts.page;
    this.url = parts.url;
    this.artifacts = parts.artifacts;
    this.codeServer = parts.codeServer;
    this.browserProcess = parts.browserProcess;
    this.browser = parts.browser;
    this.consoleLines = parts.consoleLines;
  }

  /** Saves a PNG of the whole window as `<artifacts>/<name>.png`; resolves with its path. */
  async screenshot(name: string): Promise<string> {
    const path = join(this.artifacts, `${name}.png`);
    await this.page.screenshot({ path });
    return path;
  }

  /** Runs a command as a person would: F1, type its title as the palette shows it (`Skein: Reconnect`), pick it. */
  async runCommand(title: string): Promise<void> {
    await this.focusWorkbench();
    await this.page.keyboard.press('F1');
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    await input.fill(`>${title}`);
    // The palette ranks recently used commands first: pick the row whose label is exactly the title.
    const row = this.page.locator('.quick-input-list .monaco-list-row', { has: this.page.locator('.label-name', { hasText: exactly(title) }) }).first();
    await row.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    await row.click();
    await this.page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: UI_TIMEOUT_MS });
  }

  /** Opens a workspace file through quick open (Ctrl+P) and waits until its editor tab is the active one. */
  async openFile(relativePath: string): Promise<void> {
    await this.focusWorkbench();
    await this.page.keyboard.press('Control+P');
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    await input.fill(relativePath);
    const name = basename(relativePath);
    // Quick open lists the file once the file search (ripgrep in code-server) found it; the row names the file and
    // its folder, so match the folder too when the path has one.
    const folder = relativePath.includes('/') ? relativePath.slice(0, relativePath.lastIndexOf('/')) : undefined;
    let row = this.page.locator('.quick-input-list .monaco-list-row', { has: this.page.locator('.label-name', { hasText: exactly(name) }) });
    if (folder) row = row.filter({ has: this.page.locator('.label-description', { hasText: new RegExp(`(^|/)${escapeRegExp(folder)}$`) }) });
    await row.first().waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    await row.first().click();
    await this.page.locator(`.tabs-container .tab.active[data-resource-name="${cssString(name)}"]`).waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  }

  /** Disconnects Playwright, stops Chromium and code-server, and writes their logs next to the screenshots. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.browser.close().catch(() => undefined);
    await this.browserProcess.stop(3000);
    await this.codeServer.stop(3000);
    writeFileSync(join(this.artifacts, 'code-server.log'), `${this.codeServer.output()}\n`);
    writeFileSync(join(this.artifacts, 'chromium.log'), `${this.browserProcess.output()}\n`);
    writeFileSync(join(this.artifacts, 'console.log'), `${this.consoleLines.join('\n')}\n`);
  }

  /** Keyboard shortcuts reach the workbench only while it has focus (a fresh page has none). */
  private async focusWorkbench(): Promise<void> {
    await this.page.locator('.monaco-workbench').focus();
  }
}

/**
 * Starts code-server on a free loopback port serving `workspace`, launches headless Chromium on the workbench with
 * `extensionPath` loaded as an extension under development, and resolves once the workbench is up. Both processes
 * belong to `harness`; `close()` also runs at `harness.cleanup()`.
 */
export async function startEditor(harness: Harness, options: EditorOptions): Promise<Editor> {
  if (!existsSync(CODE_SERVER_ENTRY)) throw new Error(`code-server is not installed at ${CODE_SERVER_ENTRY}: run \`node scripts/editor-tools.mjs\` (npm test runs it)`);
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not installed at ${CHROMIUM}: run \`node scripts/editor-tools.mjs\` as root, or set SKEIN_CHROMIUM`);
  const artifacts = join(ARTIFACTS_DIR, options.name ?? 'editor');
  mkdirSync(artifacts, { recursive: true });

  mkdirSync(join(options.workspace, '.vscode'), { recursive: true });
  writeFileSync(join(options.workspace, '.vscode', 'settings.json'), `${JSON.stringify(options.settings ?? {}, null, 2)}\n`);

  const state = harness.dir(`editor-${harness.processes.length}`);
  const userData = join(state, 'user-data');
  mkdirSync(join(userData, 'User'), { recursive: true });
  writeFileSync(join(userData, 'User', 'settings.json'), `${JSON.stringify(USER_SETTINGS, null, 2)}\n`);
  // A config of our own, or code-server writes one with a generated password under HOME.
  const config = join(state, 'config.yaml');
  writeFileSync(config, 'auth: none\n');

  // No extension gallery (code-server's default is open-vsx.org): the editor reaches nothing but loopback.
  const codeServer = harness.start('code-server', process.execPath, [
    CODE_SERVER_ENTRY,
    '--config', config,
    '--bind-addr', '127.0.0.1:0',
    '--auth', 'none',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
    '--ignore-last-opened',
    '--user-data-dir', userData,
    '--extensions-dir', join(state, 'extensions'),
  ], { env: { EXTENSIONS_GALLERY: '{}', ...options.env }, cwd: options.workspace });
  const listening = await codeServer.waitFor(/HTTP server listening on http:\/\/127\.0\.0\.1:\d+\//, START_TIMEOUT_MS);
  const port = Number(/127\.0\.0\.1:(\d+)\//.exec(listening)?.[1]);

  const query = new URLSearchParams({ folder: options.workspace });
  if (options.extensionPath) query.set('payload', JSON.stringify([['extensionDevelopmentPath', `vscode-remote://127.0.0.1:${port}${options.extensionPath}`]]));
  const url = `http://127.0.0.1:${port}/?${query.toString()}`;

  const browserProc = harness.start('chromium', CHROMIUM, [...CHROMIUM_ARGS, '--remote-debugging-port=0', `--user-data-dir=${join(state, 'chromium')}`, 'about:blank']);
  const devtools = await browserProc.waitFor(/^DevTools listening on ws:\/\//, START_TIMEOUT_MS);
  const browser = await chromium.connectOverCDP(devtools.slice('DevTools listening on '.length).trim(), { timeout: START_TIMEOUT_MS });
  const context = browser.contexts()[0] ?? (await browser.newContext());
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleLines: string[] = [];
  page.on('console', (message) => consoleLines.push(`[${message.type()}] ${message.text()}`));
  page.on('pageerror', (error) => consoleLines.push(`[pageerror] ${error.message}`));
  page.on('requestfailed', (request) => consoleLines.push(`[requestfailed] ${request.url()} ${request.failure()?.errorText ?? ''}`));

  const editor = new Editor({ page, url, artifacts, codeServer, browserProcess: browserProc, browser, consoleLines });
  harness.onCleanup(() => editor.close());
  try {
    await page.goto(url, { timeout: START_TIMEOUT_MS });
    // The workbench is up once its parts are laid out and the status bar shows.
    await page.locator('.monaco-workbench .part.statusbar').waitFor({ state: 'visible', timeout: START_TIMEOUT_MS });
  } catch (error) {
    await editor.screenshot('startup-failure').catch(() => undefined);
    throw error;
  }
  return editor;
}

/** A regular expression matching exactly `text`. */
function exactly(text: string): RegExp {
  return new RegExp(`^${escapeRegExp(text)}$`);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function cssString(text: string): string {
  return text.replace(/["\\]/g, '\\$&');
}
