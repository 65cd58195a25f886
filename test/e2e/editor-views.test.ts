import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LogLevel, WorkflowRuntime, type WorkflowActivityContext, type WorkflowContext } from '@dapr/dapr';
import type { FrameLocator, Locator } from 'playwright-core';
import { Harness, type SidecarHandle } from '../src/harness.js';
import { startEditor, type Editor } from '../src/editor.js';
import { eventually } from '../src/eventually.js';
import { httpRequest } from '../src/http.js';

const EXTENSION = fileURLToPath(new URL('../../../extension/', import.meta.url)).replace(/\/$/, '');
const MCP_SERVER = fileURLToPath(new URL('../../../samples/mcp-server/dist/server.js', import.meta.url));
const INVENTORY_POLICY = fileURLToPath(new URL('../../../samples/policies/inventory-tools.yaml', import.meta.url));
const TOOL_POLICY_SCHEMA = fileURLToPath(import.meta.resolve('@skein/proto/schemas/mcptoolpolicy.schema.json'));
const PLACEMENT_ARGS = ['--host-ttl', '2s', '--dissemination-timeout', '4s', '--batch-window', '100ms', '--lease-ttl', '2s'];

/** Every call traced; the MCP server lets only analyst-agent in (App-ID access control), the tool policy does the rest. */
const MCP_SERVER_CONFIG = `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: mcp-server
spec:
  tracing:
    samplingRate: "1"
  accessControl:
    defaultAction: deny
    trustDomain: public
    policies:
    - { appId: analyst-agent, namespace: default, defaultAction: allow }
`;
const TRACED = `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: traced
spec:
  tracing:
    samplingRate: "1"
`;

/** The workflow of the orders app: two activities in a row; and one that waits for an approval that never comes. */
const reserve = (_ctx: WorkflowActivityContext, order: string): string => `reserved ${order}`;
const charge = (_ctx: WorkflowActivityContext, order: string): string => `charged ${order}`;
const checkout = async function* checkout(ctx: WorkflowContext, order: string): AsyncGenerator<unknown, string, string> {
  const reserved = yield ctx.callActivity(reserve, order);
  const charged = yield ctx.callActivity(charge, order);
  return `${reserved}, ${charged}`;
};
const approval = async function* approval(ctx: WorkflowContext): AsyncGenerator<unknown, string, string> {
  return yield ctx.waitForExternalEvent('approved');
};

/** A new W3C trace context, so the test knows the id of the trace a call makes before it is made. */
function newTrace(): { traceId: string; traceparent: string } {
  const traceId = randomBytes(16).toString('hex');
  return { traceId, traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` };
}

/** An official MCP SDK client reaching the MCP server through `sidecar`, every request of its session in one trace. */
async function connectAgent(sidecar: SidecarHandle, traceparent: string): Promise<Client> {
  const client = new Client({ name: 'editor-views-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${sidecar.url}/v1.0/invoke/mcp-server/method/mcp`), { requestInit: { headers: { traceparent } } }));
  return client;
}

describe('the Skein extension in a real editor (code-server and Chromium) against a live mesh', function () {
  this.timeout(60_000);
  const harness = new Harness();
  const clients: Client[] = [];
  let editor: Editor;
  let analyst: SidecarHandle;
  let orders: SidecarHandle;
  let sidecars: SidecarHandle[];
  let runtime: WorkflowRuntime | undefined;
  let policyText: string;

  before(async function () {
    this.timeout(120_000);
    const { nats } = await harness.controlPlane();
    const workspace = harness.dir('workspace');
    mkdirSync(join(workspace, 'policies'));
    copyFileSync(INVENTORY_POLICY, join(workspace, 'policies', 'inventory-tools.yaml'));
    policyText = readFileSync(INVENTORY_POLICY, 'utf8');
    // The editor starts while the mesh does: it connects to NATS at once and follows the sidecars as they come.
    const editorStarted = startEditor(harness, {
      workspace,
      extensionPath: EXTENSION,
      settings: { 'skein.natsUrl': nats.url, 'skein.home': harness.home, 'skein.history': '30m' },
      name: 'editor-views',
    });
    const meshStarted = (async () => {
      const configs = harness.dir('configs');
      writeFileSync(join(configs, 'mcp-server.yaml'), MCP_SERVER_CONFIG);
      writeFileSync(join(configs, 'traced.yaml'), TRACED);
      const resources = harness.dir('resources');
      copyFileSync(INVENTORY_POLICY, join(resources, 'inventory-tools.yaml'));
      const server = harness.start('mcp-server', process.execPath, [MCP_SERVER], { env: { PORT: '0' } });
      const port = Number((JSON.parse(await server.waitFor(/^\{"listening":\d+/)) as { listening: number }).listening);
      const placement = await harness.placement('wf', PLACEMENT_ARGS);
      await placement.proc.waitForRecord('became leader');
      const traced = ['--config', join(configs, 'traced.yaml')];
      const started = await Promise.all([
        harness.sidecar({ appId: 'mcp-server', appPort: port, args: ['--config', join(configs, 'mcp-server.yaml'), '--resources-path', resources] }),
        harness.sidecar({ appId: 'analyst-agent', args: traced }),
        harness.sidecar({ appId: 'orders', args: [...traced, '--placement-address', placement.address] }),
      ]);
      sidecars = started;
      [, analyst, orders] = started;
      const ready = await orders.proc.waitForRecord('ready', { what: 'sidecar' });
      runtime = new WorkflowRuntime({ daprHost: '127.0.0.1', daprPort: String(ready['grpcPort']), logger: { level: LogLevel.Error } })
        .registerWorkflow(checkout)
        .registerWorkflow(approval)
        .registerActivity(reserve)
        .registerActivity(charge);
      await runtime.start();
      await orders.proc.waitForRecord('workflow worker connected');
    })();
    [editor] = await Promise.all([editorStarted, meshStarted]);
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && editor) await editor.screenshot(`failed-${this.currentTest.title.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}`).catch(() => undefined);
  });

  after(async function () {
    await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
    await runtime?.stop().catch(() => undefined);
    await harness.cleanup();
  });

  /** One view of the Skein container, by its name. */
  const pane = (name: string): Locator => editor.page.locator('.pane', { has: editor.page.locator('.pane-header h3.title', { hasText: new RegExp(`^${name}$`) }) });
  /** Rows of a tree view by their accessible name (label and description, or the tooltip where one is set). */
  const rows = (view: Locator, name: RegExp): Locator => view.getByRole('treeitem', { name });
  /** Expands `name` and collapses the other two views, so its rows have the room. */
  async function showOnly(name: string): Promise<void> {
    for (const view of ['Traces', 'Decisions', 'Workflows']) {
      const header = pane(view).locator('.pane-header');
      const expanded = (await header.getAttribute('aria-expanded')) === 'true';
      if (expanded !== (view === name)) {
        await header.click();
        await pane(view).locator(`.pane-header[aria-expanded="${String(view === name)}"]`).waitFor({ state: 'visible' });
      }
    }
  }
  /** The page of the webview panel on screen (VS Code nests it: the panel's iframe, then its active frame). */
  const webview = (): FrameLocator => editor.page.locator('iframe.webview').filter({ visible: true }).contentFrame().frameLocator('#active-frame');
  /** Moves the cursor to the start of a line, through quick open's `:<line>`. */
  async function goToLine(line: number): Promise<void> {
    await editor.page.keyboard.press('Control+P');
    const input = editor.page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible' });
    await input.fill(`:${line}`);
    await editor.page.keyboard.press('Enter');
    await editor.page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
  }
  async function closeEditors(): Promise<void> {
    await editor.runCommand('View: Close All Editors');
    await editor.page.locator('.tabs-container .tab').first().waitFor({ state: 'detached' });
  }

  it('counts the live sidecars in the status bar', async function () {
    const item = editor.page.locator('.part.statusbar .statusbar-item', { hasText: new RegExp(`Skein: ${sidecars.length} apps$`) });
    await item.waitFor({ state: 'visible', timeout: 20_000 });
    assert.equal(sidecars.length, 3);
  });

  it('shows a new trace in the Traces view by itself, and its waterfall with spans of both sidecars and the deny marker', async function () {
    await editor.page.locator('.activitybar .action-item a[aria-label="Skein"]').click();
    const traces = pane('Traces');
    await traces.waitFor({ state: 'visible' });
    await showOnly('Traces');

    // An allowed session: the apps that recorded its spans appear.
    const allowed = await connectAgent(analyst, newTrace().traceparent);
    clients.push(allowed);
    await allowed.callTool({ name: 'get_inventory', arguments: { sku: 'C-300' } });
    await rows(traces, /^analyst-agent \d+ traces?\b/).waitFor({ state: 'visible' });
    await rows(traces, /^mcp-server \d+ traces?\b/).waitFor({ state: 'visible' });

    // A call the tool policy refuses, in a trace of its own.
    const denied = newTrace();
    const refused = await connectAgent(analyst, denied.traceparent);
    clients.push(refused);
    await assert.rejects(refused.callTool({ name: 'update_stock', arguments: { sku: 'C-300', delta: 5 } }), /denied by tool-policy rule "default"/);
    const madeAt = Date.now();
    // Listed under both apps; its label names the tool once the call's span is in.
    const row = rows(traces, new RegExp(`^trace ${denied.traceId}\\s`)).filter({ hasText: /· update_stock/ }).first();
    await row.waitFor({ state: 'visible', timeout: 5_000 });
    process.stdout.write(`      (the trace showed in the tree ${Date.now() - madeAt} ms after the call)\n`);
    await editor.screenshot('traces');

    await row.click();
    await editor.page.locator('.tabs-container .tab.active', { hasText: `Trace ${denied.traceId.slice(0, 8)}` }).waitFor({ state: 'visible' });
    const page = webview();
    await page.locator('h2', { hasText: `trace ${denied.traceId}` }).waitFor({ state: 'visible' });
    const spanRows = page.locator('.span-row');
    await spanRows.filter({ hasText: 'analyst-agent' }).first().waitFor({ state: 'visible' });
    await spanRows.filter({ hasText: 'mcp-server' }).first().waitFor({ state: 'visible' });
    const deny = page.locator('.span-row .marker-decision-deny');
    await deny.first().waitFor({ state: 'visible' });
    assert.match((await deny.first().getAttribute('title')) ?? '', /^denied by tool-policy rule default$/);
    assert.ok((await spanRows.count()) >= 2);
    await editor.screenshot('waterfall');
  });

  it('lists the ALLOW and DENY decisions by app in the Decisions view, and opens the trace of one', async function () {
    // App-ID access control refuses the orders app: a DENY of source acl, in a trace the test names.
    const acl = newTrace();
    const refused = await httpRequest(`${orders.url}/v1.0/invoke/mcp-server/method/mcp`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', traceparent: acl.traceparent } });
    assert.equal(refused.status, 403, refused.body);
    await closeEditors();
    await showOnly('Decisions');
    const decisions = pane('Decisions');
    await rows(decisions, /^mcp-server \d+ decisions · 2 denied$/).waitFor({ state: 'visible', timeout: 5_000 });
    const aclDeny = rows(decisions, /^DENY orders → POST \/mcp acl · /);
    await aclDeny.waitFor({ state: 'visible' });
    await rows(decisions, /^DENY analyst-agent → update_stock tool-policy · default · /).waitFor({ state: 'visible' });
    await rows(decisions, /^ALLOW analyst-agent → get_inventory tool-policy · analyst-agent-tools · /).first().waitFor({ state: 'visible' });
    await editor.screenshot('decisions');

    await aclDeny.click();
    await editor.page.locator('.tabs-container .tab.active', { hasText: `Trace ${acl.traceId.slice(0, 8)}` }).waitFor({ state: 'visible' });
    const page = webview();
    await page.locator('h2', { hasText: `trace ${acl.traceId}` }).waitFor({ state: 'visible' });
    await page.locator('.span-row', { hasText: 'orders' }).first().waitFor({ state: 'visible' });
    const deny = page.locator('.span-row .marker-decision-deny');
    await deny.first().waitFor({ state: 'visible' });
    assert.match((await deny.first().getAttribute('title')) ?? '', /^denied by acl rule /);
  });

  it('shows the workflow instances of the orders app by status, and opens one with its timeline and history', async function () {
    const start = (name: string, instanceId: string, input: unknown): Promise<number> =>
      httpRequest(`${orders.url}/v1.0/workflows/dapr/${name}/start?instanceID=${instanceId}`, { method: 'POST', body: JSON.stringify(input), headers: { 'content-type': 'application/json' } }).then((res) => res.status);
    const suffix = randomBytes(3).toString('hex');
    const done = `order-${suffix}`;
    const waiting = `approval-${suffix}`;
    // The workflow actor type is placed once the worker has connected: the first start may need a moment.
    await eventually(async () => ((await start('checkout', done, done)) === 202 ? true : undefined), 20_000, 'the workflow actor type to be placed');
    assert.equal(await start('approval', waiting, {}), 202);
    const completed = await eventually(async () => {
      const res = await httpRequest(`${orders.url}/v1.0/workflows/dapr/${done}`);
      return res.json<{ runtimeStatus: string }>().runtimeStatus === 'COMPLETED' ? res.json<{ properties: Record<string, string> }>() : undefined;
    }, 20_000, `${done} to complete`);

    await closeEditors();
    await showOnly('Workflows');
    const workflows = pane('Workflows');
    await rows(workflows, /^orders 2 instances$/).waitFor({ state: 'visible', timeout: 5_000 });
    // RUNNING is expanded by default; COMPLETED opens with a click, as a person would.
    await rows(workflows, new RegExp(`^approval\\s${waiting}\\sRUNNING$`)).waitFor({ state: 'visible' });
    await rows(workflows, /^COMPLETED 1$/).click();
    const instance = rows(workflows, new RegExp(`^checkout\\s${done}\\sCOMPLETED$`));
    await instance.waitFor({ state: 'visible' });
    await instance.click();

    await editor.page.locator('.tabs-container .tab.active', { hasText: `Workflow ${done}` }).waitFor({ state: 'visible' });
    const page = webview();
    await page.locator('h2', { hasText: `checkout · ${done}` }).waitFor({ state: 'visible' });
    await page.locator('.facts', { hasText: /^COMPLETED · app orders · / }).waitFor({ state: 'visible' });
    const timeline = page.locator('.timeline .timeline-row');
    await timeline.filter({ hasText: /^completed/ }).waitFor({ state: 'visible' });
    assert.deepEqual(await timeline.locator('.label').allTextContents(), ['started', 'reserve', 'charge', 'completed']);
    // Output and history come from the orders sidecar, which the extension found in the Skein home.
    await page.locator('section.payload', { hasText: 'Output' }).locator('pre', { hasText: completed.properties['dapr.workflow.output'] ?? '' }).waitFor({ state: 'visible' });
    assert.ok((await page.locator('table.history tr').count()) > 0, 'the instance history is shown');
    await editor.screenshot('workflows');
  });

  it('checks a policy YAML as it is typed: unknown field, fixed, CEL that does not compile; hover shows the schema docs', async function () {
    await closeEditors();
    await editor.page.locator('.activitybar .action-item a[aria-label^="Explorer"]').click();
    await editor.openFile('policies/inventory-tools.yaml');
    await editor.page.keyboard.press('Control+Shift+M');
    const problems = editor.page.locator('.markers-panel');
    await problems.waitFor({ state: 'visible' });
    const problem = (message: RegExp): Locator => problems.locator('.monaco-list-row', { hasText: message });
    const squiggles = editor.page.locator('.editor-instance .squiggly-error');
    assert.equal(await squiggles.count(), 0, 'the sample policy has no problem');

    // The analyst's `tools:` line, typed over as `toolz:`.
    const lines = policyText.split('\n');
    const toolsLine = lines.indexOf('      tools: [get_inventory, get_schema]') + 1;
    assert.ok(toolsLine > 0);
    await goToLine(toolsLine);
    await editor.page.keyboard.press('End');
    await editor.page.keyboard.press('Home');
    for (let i = 0; i < 'tool'.length; i++) await editor.page.keyboard.press('ArrowRight');
    await editor.page.keyboard.press('Shift+ArrowRight');
    await editor.page.keyboard.type('z');
    await editor.page.locator('.view-line', { hasText: /^\s*toolz:\s\[get_inventory,\sget_schema\]$/ }).waitFor({ state: 'visible' });
    await problem(/unknown field "toolz"/).waitFor({ state: 'visible', timeout: 5_000 });
    await squiggles.first().waitFor({ state: 'visible' });

    // Fixed: the problem and the squiggle go.
    await editor.page.keyboard.press('Shift+ArrowLeft');
    await editor.page.keyboard.type('s');
    await problem(/unknown field "toolz"/).waitFor({ state: 'detached', timeout: 5_000 });
    await squiggles.first().waitFor({ state: 'detached' });

    // A `when:` whose CEL does not compile, typed on a new line under `tools:`.
    await editor.page.keyboard.press('End');
    await editor.page.keyboard.press('Enter');
    await editor.page.keyboard.type('when: "args.table ==');
    await editor.page.locator('.view-line', { hasText: /^\s*when:\s"args\.table\s=="$/ }).waitFor({ state: 'visible' });
    await problem(/CEL does not compile/).waitFor({ state: 'visible', timeout: 5_000 });
    await squiggles.first().waitFor({ state: 'visible' });
    assert.match((await problem(/CEL does not compile/).textContent()) ?? '', /skein/);
    await editor.screenshot('diagnostics');

    // Hover over `defaultAction` of spec: its documentation from the MCPToolPolicy JSON Schema.
    const schema = JSON.parse(readFileSync(TOOL_POLICY_SCHEMA, 'utf8')) as { properties: { spec: { properties: { defaultAction: { description: string } } } } };
    const documented = schema.properties.spec.properties.defaultAction.description.replace(/`/g, '');
    await editor.page.keyboard.press('Escape');
    await goToLine(lines.indexOf('  defaultAction: deny') + 1);
    const key = editor.page.locator('.view-line', { hasText: /^\s{2}defaultAction:\sdeny$/ }).locator('span > span', { hasText: /^defaultAction$/ });
    await key.hover();
    const hover = editor.page.locator('.monaco-hover', { hasText: documented });
    await hover.waitFor({ state: 'visible', timeout: 5_000 });
    assert.match((await hover.textContent()) ?? '', /MCPToolPolicy.*\/spec\/defaultAction/);
    await editor.screenshot('hover');
  });
});
