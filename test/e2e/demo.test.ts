import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Harness } from '../src/harness.js';

const DEMO = fileURLToPath(new URL('../../../samples/mcp-demo/start.mjs', import.meta.url));

describe('the demo behind `npm start`', function () {
  const harness = new Harness();
  after(() => harness.cleanup());

  it('brings up a mesh in which the sample agent lists and calls MCP tools by App ID', async function () {
    const demo = harness.start('demo', process.execPath, [DEMO, '--once', '--home', harness.dir('demo-home'), '--ephemeral-ports']);
    const { code } = await demo.exited;
    const output = demo.output();
    assert.equal(code, 0, output.slice(-3000));
    assert.match(output, /\[agent\] tools: get_inventory, get_schema, update_stock, drop_table/);
    assert.match(output, /\[agent\] get_inventory -> \[\{"sku":"A-100"/);
    assert.match(output, /\[agent\] update_stock C-300 \+100 -> \{"sku":"C-300","name":"washers","stock":115\}/);
    assert.match(output, /the agent finished/);
    assert.match(output, /Skein control plane stopped/);
  });
});
