import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Harness, type SidecarHandle } from '../src/harness.js';

const MCP_SERVER = fileURLToPath(new URL('../../../samples/mcp-server/dist/server.js', import.meta.url));

describe('MCP session affinity behind a scaled MCP server', function () {
  const harness = new Harness();
  let agent: SidecarHandle;
  after(() => harness.cleanup());

  before(async function () {
    await harness.controlPlane();
    // Two replicas of one stateful MCP server: each keeps its sessions in its own memory.
    const replicas = await Promise.all(
      ['a', 'b'].map(async (name) => {
        const server = harness.start(`mcp-server-${name}`, process.execPath, [MCP_SERVER], { env: { PORT: '0' } });
        return Number((JSON.parse(await server.waitFor(/^\{"listening":\d+/)) as { listening: number }).listening);
      }),
    );
    await Promise.all(replicas.map((port) => harness.sidecar({ appId: 'inventory', appPort: port })));
    agent = await harness.sidecar({ appId: 'agent' });
  });

  it('sends every request of a session to the replica that created it, so no agent sees "session not found"', async function () {
    // Calls are otherwise spread round-robin over the replicas: without affinity, every other request would land
    // on the replica that has never heard of the session.
    const clients = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const client = new Client({ name: 'affinity', version: '1.0.0' });
        await client.connect(new StreamableHTTPClientTransport(new URL(`${agent.url}/v1.0/invoke/inventory/method/mcp`)));
        return client;
      }),
    );
    for (let round = 0; round < 5; round++) {
      await Promise.all(
        clients.map(async (client) => {
          assert.equal((await client.listTools()).tools.length, 4);
          const result = await client.callTool({ name: 'get_inventory', arguments: { sku: 'A-100' } });
          assert.notEqual(result['isError'], true);
        }),
      );
    }
    await Promise.all(clients.map((client) => client.close()));
  });
});
