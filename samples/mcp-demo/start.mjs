#!/usr/bin/env node
// The demo behind `npm start`: brings up the local control plane (NATS + sentry), runs the sample MCP server
// as App ID "inventory" and the sample agent as App ID "agent", each beside its own sidecar, and shows the
// agent listing and calling tools by App ID through the mesh. The mesh stays up until Ctrl-C.
//   --once             stop everything after the agent finishes (exit code = the agent's)
//   --home DIR         Skein home folder (default $SKEIN_HOME or ~/.skein)
//   --ephemeral-ports  let NATS and sentry pick free ports
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(root, 'runtime', 'dist', 'src', 'cli.js');
const argv = process.argv.slice(2);
const once = argv.includes('--once');
const homeAt = argv.indexOf('--home');
const env = { ...process.env, SKEIN_LOG_FORMAT: 'json', ...(homeAt !== -1 ? { SKEIN_HOME: argv[homeAt + 1] } : {}) };
const children = [];

const colors = { up: 36, inventory: 33, agent: 32 };
function print(name, line) {
  process.stdout.write(`\x1b[${colors[name] ?? 37}m${name.padEnd(9)}|\x1b[0m ${line}\n`);
}

/** Turns a JSON log line into a short human line; keeps anything else as it is. */
function humanize(line) {
  if (!line.startsWith('{')) return line;
  try {
    const record = JSON.parse(line);
    const { time: _t, level, logger, msg, ...fields } = record;
    const extra = Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : '';
    return `${level === 'info' ? '' : `${level.toUpperCase()} `}${logger}: ${msg}${extra}`;
  } catch {
    return line;
  }
}

function start(name, args, extraEnv = {}) {
  const child = spawn(process.execPath, [cli, ...args], { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(child);
  const waiters = [];
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream.on('data', (chunk) => {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop();
      for (const line of lines) {
        print(name, humanize(line));
        for (const waiter of [...waiters]) {
          if (!waiter.test(line)) continue;
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    });
  }
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
  const ready = new Promise((resolve, reject) => {
    waiters.push({ test: (line) => line.includes('"msg":"ready"'), resolve: (line) => resolve(JSON.parse(line)) });
    exited.then((code) => reject(new Error(`${name} exited with code ${code} before it was ready`)));
  });
  return { child, ready, exited };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function stopAll() {
  for (const child of children.reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      continue;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }, 5000);
    await exited;
    clearTimeout(timer);
  }
}

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    print('up', 'stopping the demo mesh');
    stopAll().then(() => process.exit(0));
  });
}

try {
  const upArgs = ['up', ...(argv.includes('--ephemeral-ports') ? ['--nats-port', '0', '--sentry-port', '0', '--placement-port', '0'] : [])];
  const up = start('up', upArgs);
  const controlPlane = await up.ready;
  const plane = ['--nats-url', controlPlane.natsUrl, '--sentry-address', controlPlane.sentryAddress, '--trust-anchors-file', controlPlane.trustBundle];

  const appPort = await freePort();
  const server = start('inventory', ['run', '--app-id', 'inventory', '--app-port', String(appPort), ...plane, '--', process.execPath, join(root, 'samples', 'mcp-server', 'dist', 'server.js')]);
  await server.ready;
  const agent = start('agent', ['run', '--app-id', 'agent', ...plane, '--', process.execPath, join(root, 'samples', 'mcp-agent', 'dist', 'agent.js')], { MCP_SERVER_APP_ID: 'inventory' });
  const agentCode = await agent.exited;
  print('agent', agentCode === 0 ? 'the agent finished: its tool calls went agent → sidecar → mTLS → sidecar → inventory' : `the agent failed with exit code ${agentCode}`);
  if (once) {
    stopping = true;
    await stopAll();
    process.exit(agentCode);
  }
  const serverSidecar = await server.ready;
  print('up', `The mesh is still up. Call the MCP server through its sidecar, e.g.:`);
  print('up', `  curl -s -X POST http://127.0.0.1:${serverSidecar.httpPort}/v1.0/invoke/inventory/method/mcp -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'`);
  print('up', 'Press Ctrl-C to stop.');
} catch (error) {
  print('up', `demo failed: ${error.message}`);
  stopping = true;
  await stopAll();
  process.exit(1);
}
