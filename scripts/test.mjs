#!/usr/bin/env node
// The README's test command: set up (install, build), run every package's lint and tests through turbo, and
// close with one line totalling every package's "N passed, N failed".
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (command, args, onLine) =>
  new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' } });
    let rest = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) onLine?.(line);
    });
    child.on('exit', (code, signal) => {
      if (rest) onLine?.(rest);
      resolve(code ?? (signal ? 1 : 0));
    });
  });

const setup = await run(process.execPath, [join(root, 'scripts', 'bootstrap.mjs'), '--with-editor-tools']);
if (setup !== 0) process.exit(setup);
let passed = 0;
let failed = 0;
const code = await run(join(root, 'node_modules', '.bin', 'turbo'), ['run', 'lint', 'test', '--concurrency=1', '--continue'], (line) => {
  const match = /(\d+) passed, (\d+) failed/.exec(line.replace(/\x1b\[[0-9;]*m/g, ''));
  if (match) {
    passed += Number(match[1]);
    failed += Number(match[2]);
  }
});
process.stdout.write(`\nTotal: ${passed} passed, ${failed} failed\n`);
process.exit(code !== 0 ? code : failed > 0 ? 1 : 0);
