import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { Harness, TEST_APPS } from '../src/harness.js';
import { httpRequest } from '../src/http.js';
import { freePort, isAlive } from '../src/ports.js';

const execFileAsync = promisify(execFile);

describe('skein CLI: bad input', function () {
  const harness = new Harness();
  after(() => harness.cleanup());

  async function fails(args: string[], code: number, pattern: RegExp, env: NodeJS.ProcessEnv = {}): Promise<string> {
    const proc = harness.skein('cli', args, { env });
    const { code: exitCode } = await proc.exited;
    const output = proc.output();
    assert.equal(exitCode, code, output);
    assert.match(output, pattern);
    return output;
  }

  it('runs as the README says: npx skein and npm run skein from the repository root, and tells its version', async function () {
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    for (const [command, args] of [['npx', ['skein', '--version']], ['npm', ['run', '--silent', 'skein', '--', '--version']]] as const) {
      const { stdout } = await execFileAsync(command, [...args], { cwd: root, env: { ...process.env, npm_config_yes: 'false', npm_config_update_notifier: 'false' } });
      assert.equal(stdout.trim(), 'skein 0.1.0', `${command} ${args.join(' ')}`);
    }
  });

  it('rejects unknown commands and flags, naming them, with exit code 2', async function () {
    await fails(['frobnicate'], 2, /unknown command "frobnicate"/);
    await fails(['run', '--app-id', 'a', '--bogus'], 2, /--bogus/);
    await fails(['run', '--app-id', 'bad id!'], 2, /--app-id "bad id!" is not a valid App ID/);
    await fails(['run', '--app-id', 'a', '--app-port', '70000'], 2, /--app-port must be a port number/);
    await fails(['run', '--app-id', 'a', '--max-body-size', 'lots'], 2, /--max-body-size must be a size/);
    await fails(['run'], 2, /--app-id is required/);
  });

  it('rejects invalid Configuration and resource YAML, naming file, field and reason', async function () {
    const dir = harness.dir('bad-config');
    const write = (name: string, text: string): string => {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    };
    const base = ['run', '--app-id', 'a', '--trust-anchors-file', harness.trustBundle];
    const unknown = write('unknown.yaml', 'apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: c\nspec:\n  accessControl:\n    defaultAction: deny\n    bogus: 1\n');
    await fails([...base, '--config', unknown], 1, /unknown\.yaml: \/spec\/accessControl\/bogus: unknown field "bogus"/);
    const incomplete = write('incomplete.yaml', 'apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: c\nspec:\n  accessControl:\n    policies:\n      - appId: agent\n        trustDomain: public\n');
    await fails([...base, '--config', incomplete], 1, /incomplete\.yaml: \/spec\/accessControl\/policies\/0: missing required field "namespace"/);
    const badValue = write('bad-value.yaml', 'apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: c\nspec:\n  accessControl:\n    defaultAction: maybe\n');
    await fails([...base, '--config', badValue], 1, /bad-value\.yaml: \/spec\/accessControl\/defaultAction: must be one of/);
    const syntax = write('syntax.yaml', 'kind: Configuration\nmetadata: [unclosed\n');
    await fails([...base, '--config', syntax], 1, /syntax\.yaml: line \d+, column \d+: YAML syntax error/);
    // A billion-laughs alias bomb: refused with the file named, never expanded, no stack trace.
    const laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]', ...'bcdefghi'.split('').map((name, i) => `${name}: &${name} [${Array.from({ length: 9 }, () => `*${'abcdefghi'[i]}`).join(',')}]`)];
    const bomb = write('bomb.yaml', `apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: c\n${laughs.join('\n')}\n`);
    const refused = await fails([...base, '--config', bomb], 1, /bomb\.yaml: \/: YAML aliases cannot be resolved: Excessive alias count/);
    assert.doesNotMatch(refused, /ReferenceError|\n\s+at /, 'no stack trace');
    const resources = harness.dir('bad-resources');
    writeFileSync(join(resources, 'thing.yaml'), 'apiVersion: v1\nkind: Frobnicator\nmetadata:\n  name: x\n');
    await fails([...base, '--resources-path', resources], 1, /thing\.yaml: \/kind: kind "Frobnicator" is not supported/);
    await fails([...base, '--config', join(dir, 'missing.yaml')], 1, /missing\.yaml: \/: cannot read the file: ENOENT/);
  });

  it('explains how to install nats-server when it is missing', async function () {
    const missing = { SKEIN_NATS_SERVER: join(harness.root, 'no-such-nats-server') };
    await fails(['up', '--home', harness.dir('no-nats'), '--nats-port', '0', '--sentry-port', '0', '--placement-port', '0'], 1, /SKEIN_NATS_SERVER is set to .*no-such-nats-server, which does not exist\. nats-server is not installed\. On Debian or Ubuntu run `sudo apt-get update && sudo apt-get install -y nats-server`/, missing);
  });
});

describe('skein up', function () {
  const harness = new Harness();
  after(() => harness.cleanup());

  it('starts NATS, sentry and placement, is idempotent, and stops everything cleanly on Ctrl-C', async function () {
    const home = harness.dir('up-home');
    const up = harness.skein('up', ['up', '--home', home, '--nats-port', '0', '--sentry-port', '0', '--placement-port', '0']);
    const ready = await up.waitForRecord('ready', { what: 'control-plane' });
    assert.match(String(ready['natsUrl']), /^tls:\/\/127\.0\.0\.1:\d+$/);
    assert.match(String(ready['sentryAddress']), /^127\.0\.0\.1:\d+$/);
    const natsPid = Number(ready['natsPid']);
    assert.ok(isAlive(natsPid));
    assert.match(String(ready['placementAddress']), /^127\.0\.0\.1:\d+$/);
    const placementPid = Number(ready['placementPid']);
    assert.ok(isAlive(placementPid));
    const again = harness.skein('up-again', ['up', '--home', home, '--nats-port', '0', '--sentry-port', '0', '--placement-port', '0']);
    assert.equal((await again.exited).code, 0);
    assert.match(again.output(), /already running/);
    up.signal('SIGINT');
    assert.equal((await up.exited).code, 0);
    assert.match(up.output(), /control plane stopped/);
    assert.equal(isAlive(natsPid), false, 'nats-server was stopped');
    assert.equal(isAlive(placementPid), false, 'placement was stopped');
  });
});

describe('skein run', function () {
  const harness = new Harness();
  let natsUrl: string;
  after(() => harness.cleanup());
  before(async function () {
    // The control plane as a user starts it, so `skein run` finds it without flags.
    const up = harness.skein('up', ['up', '--nats-port', '0', '--sentry-port', '0', '--placement-port', '0']);
    natsUrl = String((await up.waitForRecord('ready', { what: 'control-plane' }))['natsUrl']);
  });

  it('starts the app after --, with DAPR_HTTP_PORT and APP_ID, and stops it with the sidecar', async function () {
    const port = await freePort();
    const sidecar = harness.skein('run', ['run', '--app-id', 'echo', '--app-port', String(port), '--', process.execPath, join(TEST_APPS, 'echo-app.js')], { env: { PORT: String(port) } });
    const appLine = await sidecar.waitFor(/^\{"listening":\d+/);
    const appPid = (JSON.parse(appLine) as { pid: number }).pid;
    const ready = await sidecar.waitForRecord('ready', { what: 'sidecar' });
    assert.ok(natsUrl.length > 0);
    const res = await httpRequest(`http://127.0.0.1:${String(ready['httpPort'])}/v1.0/invoke/echo/method/env`);
    const echo = res.json<{ appId: string; daprHttpPort: string }>();
    assert.equal(echo.appId, 'echo');
    assert.equal(echo.daprHttpPort, String(ready['httpPort']));
    sidecar.signal('SIGTERM');
    await sidecar.exited;
    assert.equal(isAlive(appPid), false, 'the app was stopped with its sidecar');
  });

  it('stops the sidecar with the app\'s exit code when the app exits', async function () {
    const sidecar = harness.skein('run', ['run', '--app-id', 'short-lived', '--', process.execPath, '-e', 'setTimeout(() => process.exit(3), 200)']);
    assert.equal((await sidecar.exited).code, 3);
  });

  it('runs every app of a multi-app run file, which reach each other by App ID', async function () {
    const [portA, portB] = [await freePort(), await freePort()];
    const dir = harness.dir('multi');
    const file = join(dir, 'skein.yaml');
    writeFileSync(
      file,
      [
        'version: 1',
        'common:',
        '  env:',
        '    SHARED: "yes"',
        'apps:',
        `  - appID: front`,
        `    appPort: ${portA}`,
        `    command: ["${process.execPath}", "${join(TEST_APPS, 'echo-app.js')}"]`,
        `    env: { PORT: "${portA}", INSTANCE: front }`,
        `  - appID: back`,
        `    appPort: ${portB}`,
        `    command: ["${process.execPath}", "${join(TEST_APPS, 'echo-app.js')}"]`,
        `    env: { PORT: "${portB}", INSTANCE: back }`,
        '',
      ].join('\n'),
    );
    const run = harness.skein('run-file', ['run', '-f', file]);
    const frontReady = await run.waitFor(/== APP - front == .*"msg":"ready"/);
    await run.waitFor(/== APP - back == .*"msg":"ready"/);
    const frontPort = Number(/"httpPort":(\d+)/.exec(frontReady)?.[1]);
    const res = await httpRequest(`http://127.0.0.1:${frontPort}/call`, { headers: { 'dapr-app-id': 'back' } });
    assert.equal(res.status, 200, res.body);
    const echo = res.json<{ instance: string; headers: Record<string, string> }>();
    assert.equal(echo.instance, 'back');
    assert.equal(echo.headers['dapr-caller-app-id'], 'front');
    const appPids = run.lines.filter((line) => line.includes('"listening"')).map((line) => (JSON.parse(line.replace(/^== APP - \w+ == /, '')) as { pid: number }).pid);
    assert.equal(appPids.length, 2);
    run.signal('SIGTERM');
    await run.exited;
    assert.deepEqual(appPids.filter(isAlive), [], 'every app stopped');
  });

  it('rejects an invalid run file naming the field', async function () {
    const file = join(harness.dir('bad-run'), 'skein.yaml');
    writeFileSync(file, 'version: 1\napps:\n  - appID: front\n    appPort: "eighty"\n');
    const run = harness.skein('run-file', ['run', '-f', file]);
    assert.equal((await run.exited).code, 1);
    assert.match(run.output(), /skein\.yaml: \/apps\/0\/appPort: must be integer/);
  });
});

describe('production sentry with join tokens', function () {
  const harness = new Harness();
  after(() => harness.cleanup());

  it('admits a sidecar with a join token from `skein token` and refuses one without', async function () {
    await Promise.all([harness.nats(), harness.sentry(['--mode', 'production'])]);
    const token = harness.skein('token', ['token', '--app-id', 'orders', '--namespace', 'shop', '--ttl', '5m']);
    assert.equal((await token.exited).code, 0);
    const jwt = token.lines[0] ?? '';
    assert.match(jwt, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const sidecar = await harness.sidecar({ appId: 'orders', namespace: 'shop', args: ['--join-token', jwt] });
    assert.ok(sidecar.httpPort > 0);
    const refused = harness.skein('refused', ['run', '--app-id', 'orders', '--namespace', 'shop', '--nats-url', harness.natsHandle?.url ?? '', '--sentry-address', harness.sentryAddress ?? '', '--trust-anchors-file', harness.trustBundle]);
    assert.equal((await refused.exited).code, 1);
    assert.match(refused.output(), /ERR_SENTRY_REFUSED: .*join token is required for spiffe:\/\/public\/ns\/shop\/orders/);
  });
});
