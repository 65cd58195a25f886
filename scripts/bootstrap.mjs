#!/usr/bin/env node
// Makes a fresh clone ready to run: checks Node, installs npm dependencies when the lock file changed,
// installs nats-server from Debian when it is absent (as root), the editor test tools (scripts/editor-tools.mjs)
// for the tests, and builds every package.
// Uses only Node's standard library, since it runs before anything is installed.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const say = (line) => process.stdout.write(`[setup] ${line}\n`);
const fail = (line) => {
  process.stderr.write(`[setup] ERROR: ${line}\n`);
  process.exit(1);
};
const run = (command, args, options = {}) => {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options });
  if (result.error) fail(`${command} could not start: ${result.error.message}`);
  return result.status ?? 1;
};

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) fail(`Node.js 20.19 or newer is required (this is ${process.versions.node}).`);

// npm dependencies: reinstall only when package-lock.json changed since the last install.
const lock = join(root, 'package-lock.json');
const stamp = join(root, 'node_modules', '.skein-stamp');
const lockHash = existsSync(lock) ? createHash('sha256').update(readFileSync(lock)).digest('hex') : 'none';
if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== lockHash) {
  say('installing npm dependencies (npm install, from package-lock.json)');
  const env = { ...process.env, npm_config_yes: 'true', npm_config_fund: 'false', npm_config_audit: 'false' };
  // `npm install` rather than `npm ci`: with lock files written without resolved URLs, `npm ci` rejects the lock
  // over other platforms' optional packages it never needs; `npm install` installs exactly the locked versions.
  if (run('npm', ['install'], { env }) !== 0) fail('npm could not install the dependencies; see the output above.');
  // Stamp what the lock says after the install (npm may have completed it), so the next run does not reinstall.
  writeFileSync(stamp, existsSync(lock) ? createHash('sha256').update(readFileSync(lock)).digest('hex') : 'none');
}

// nats-server: Debian's package, installed when absent and we are root.
const natsCandidates = [...(process.env.PATH ?? '').split(':').map((dir) => join(dir, 'nats-server')), '/usr/sbin/nats-server'];
if (!process.env.SKEIN_NATS_SERVER && !natsCandidates.some((path) => existsSync(path))) {
  const isRoot = process.getuid?.() === 0;
  if (!isRoot || !existsSync('/usr/bin/apt-get')) {
    fail('nats-server is not installed. On Debian/Ubuntu run: sudo apt-get update && sudo apt-get install -y nats-server\n' +
      '        Elsewhere install NATS Server 2.9+ and put it on PATH, or set SKEIN_NATS_SERVER to its path.');
  }
  say('installing nats-server from Debian (apt-get)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (run('apt-get', ['update', '-qq'], { env }) !== 0 || run('apt-get', ['install', '-y', '-qq', 'nats-server'], { env }) !== 0) {
    fail('apt-get could not install nats-server; install it by hand (apt-get install nats-server) and run this again.');
  }
}

// Editor test tools (Chromium, code-server, playwright-core) for the real-editor tests, when the tests are what
// runs (`--with-editor-tools`, which `npm test` passes): installed when missing, a stamp check otherwise.
// SKEIN_SKIP_EDITOR_TOOLS=1 leaves them out; the editor tests then fail saying what to run.
if (process.argv.includes('--with-editor-tools')) {
  if (process.env.SKEIN_SKIP_EDITOR_TOOLS) say('leaving out the editor test tools (SKEIN_SKIP_EDITOR_TOOLS is set)');
  else if (run(process.execPath, [join(root, 'scripts', 'editor-tools.mjs')]) !== 0) fail('the editor test tools are missing; see the output above.');
}

if (process.argv.includes('--no-build')) process.exit(0);
say('building');
const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' };
if (run(join(root, 'node_modules', '.bin', 'turbo'), ['run', 'build', '--output-logs=errors-only'], { env }) !== 0) fail('the build failed; see the output above.');
const cli = join(root, 'runtime', 'dist', 'src', 'cli.js');
try {
  execFileSync('node', [cli, '--help'], { stdio: 'ignore' });
} catch {
  fail('the build finished but the skein CLI does not run.');
}
// npm links a workspace's bin only if the file exists at install time, which on a fresh clone it does not: link it
// now, so `npx skein` works from the repository root.
chmodSync(cli, 0o755);
const bin = join(root, 'node_modules', '.bin', 'skein');
if (!existsSync(bin)) {
  mkdirSync(dirname(bin), { recursive: true });
  rmSync(bin, { force: true });
  symlinkSync(relative(dirname(bin), cli), bin);
}
