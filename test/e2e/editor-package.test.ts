import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Harness, type ManagedProcess } from '../src/harness.js';
import { CODE_SERVER_ENTRY } from '../src/editor.js';

const EXTENSION = fileURLToPath(new URL('../../../extension/', import.meta.url));
const VSCE = fileURLToPath(new URL('../../../node_modules/@vscode/vsce/vsce', import.meta.url));

/** Waits for a process to end and hands back its exit code (after its output is drained). */
function exited(proc: ManagedProcess): Promise<number | null> {
  return new Promise((resolve) => proc.child.once('close', (code) => resolve(code)));
}

describe('the extension packaged offline as a .vsix, installed in code-server', function () {
  this.timeout(180_000);
  const harness = new Harness();
  after(() => harness.cleanup());

  it('packages without network and installs where code-server keeps extensions, bundle and schemas included', async function () {
    const out = join(harness.dir('package'), 'skein.vsix');
    // The built bundle (the extension's `build` ran before the tests) is what the package holds.
    const pack = harness.start('vsce', process.execPath, [VSCE, 'package', '--no-dependencies', '--allow-missing-repository', '--skip-license', '--out', out], { cwd: EXTENSION });
    assert.equal(await exited(pack), 0, pack.output());
    assert.ok(existsSync(out), pack.output());

    const extensions = harness.dir('extensions');
    const userData = harness.dir('user-data');
    const common = ['--extensions-dir', extensions, '--user-data-dir', userData];
    const install = harness.start('install', process.execPath, [CODE_SERVER_ENTRY, ...common, '--install-extension', out], { env: { HOME: harness.dir('home'), EXTENSIONS_GALLERY: '{}' } });
    assert.equal(await exited(install), 0, install.output());
    const list = harness.start('list', process.execPath, [CODE_SERVER_ENTRY, ...common, '--list-extensions', '--show-versions'], { env: { HOME: harness.dir('home'), EXTENSIONS_GALLERY: '{}' } });
    assert.equal(await exited(list), 0, list.output());
    assert.match(list.output(), /skein\.skein-vscode@0\.1\.0/);

    const installed = join(extensions, 'skein.skein-vscode-0.1.0');
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { main: string };
    assert.ok(existsSync(join(installed, manifest.main)), 'the bundle the manifest names is installed');
    assert.ok(existsSync(join(installed, 'dist', 'bundle', 'webview.js')));
    assert.ok(existsSync(join(installed, 'dist', 'schemas', 'mcptoolpolicy.schema.json')), 'the schemas travel with the bundle');
    assert.ok(!existsSync(join(installed, 'src')), 'sources are not packaged');
  });
});
