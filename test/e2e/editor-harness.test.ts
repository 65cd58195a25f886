import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Harness } from '../src/harness.js';
import { startEditor, type Editor } from '../src/editor.js';

const EXTENSION = fileURLToPath(new URL('../../../extension/', import.meta.url)).replace(/\/$/, '');

describe('the real editor: code-server and Chromium with the extension loaded from extension/', function () {
  this.timeout(120_000);
  const harness = new Harness();
  let editor: Editor;

  before(async function () {
    const workspace = harness.dir('workspace');
    writeFileSync(join(workspace, 'README.md'), '# a workspace\n');
    editor = await startEditor(harness, { workspace, extensionPath: EXTENSION, settings: { 'skein.history': '30m' }, env: { SKEIN_HOME: harness.home }, name: 'editor-harness' });
  });
  after(() => harness.cleanup());

  it('serves the workbench as an Extension Development Host of extension/', async function () {
    await editor.page.locator('.monaco-workbench .part.activitybar').waitFor({ state: 'visible' });
    // The window title names the kind of window once the workbench knows it (not necessarily by the first paint).
    await editor.page.waitForFunction("document.title.startsWith('[Extension Development Host]')");
    assert.match(await editor.page.title(), /^\[Extension Development Host\] workspace\b/);
    await editor.codeServer.waitFor((line) => line.includes(`Loading development extension at ${EXTENSION}`));
  });

  it("shows the extension's Skein view container in the activity bar and, once it is active, its status-bar item", async function () {
    await editor.page.locator('.activitybar .action-item a[aria-label="Skein"]').waitFor({ state: 'visible' });
    // The item is created by activate(), so it proves the extension's code ran in the extension host. Its text
    // starts with an icon, which the DOM renders as a space before the label.
    await editor.page.locator('.part.statusbar .statusbar-item', { hasText: /^\s*Skein/ }).first().waitFor({ state: 'visible' });
  });

  it('lists the extension among the running extensions, and opens a workspace file', async function () {
    await editor.runCommand('Developer: Show Running Extensions');
    await editor.page.locator('.runtime-extensions-editor .monaco-list-row', { hasText: 'Skein' }).first().waitFor({ state: 'visible' });
    await editor.openFile('README.md');
    await editor.page.locator('.editor-instance .view-line', { hasText: '# a workspace' }).waitFor({ state: 'visible' });
  });

  it('saves a screenshot of the workbench', async function () {
    const path = await editor.screenshot('workbench');
    assert.ok(existsSync(path), `${path} was not written`);
  });
});
