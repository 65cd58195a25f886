import { strict as assert } from 'node:assert';
import { fileURLToPath } from 'node:url';
import { Harness, type ManagedProcess, type NatsHandle } from '@skein/test/harness';
import { createRootCa } from '@skein/core';
import { TestHost, issueSvid, ringOf, typesOf, type TestHostOptions } from './support/test-host.js';

const PLACEMENT_BIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const TRUST_DOMAIN = 'public';
/** gRPC status codes the tests expect. */
const FAILED_PRECONDITION = 9;
const PERMISSION_DENIED = 7;
const DEADLINE_EXCEEDED = 4;

interface Replica {
  proc: ManagedProcess;
  address: string;
}

describe('placement service (real nats-server, replicas and gRPC clients)', function () {
  let harness: Harness;
  let nats: NatsHandle;
  let leader: Replica;
  let follower: Replica;
  const hosts: TestHost[] = [];

  async function replica(id: string, extra: string[] = []): Promise<Replica> {
    const proc = harness.start(`placement ${id}`, process.execPath, [
      PLACEMENT_BIN, '--port', '0', '--home', harness.home, '--nats-url', nats.url, '--id', id,
      '--host-ttl', '2s', '--dissemination-timeout', '3s', '--batch-window', '300ms', ...extra,
    ]);
    const ready = await proc.waitForRecord('ready');
    return { proc, address: String(ready['address']) };
  }

  function host(namespace: string, address: string, actorTypes: string[], options: Partial<TestHostOptions> = {}): TestHost {
    const created = new TestHost({
      placements: [leader.address, follower.address],
      ca: harness.ca,
      trustDomain: TRUST_DOMAIN,
      appId: `app-${address.replace(/[^0-9]/g, '')}`,
      namespace,
      address,
      actorTypes,
      ...options,
    });
    hosts.push(created);
    return created;
  }

  before(async function () {
    harness = new Harness(TRUST_DOMAIN);
    nats = await harness.nats();
    leader = await replica('alpha');
    await leader.proc.waitForRecord('became leader', { id: 'alpha' });
    follower = await replica('beta');
  });

  after(async function () {
    for (const created of hosts) created.close();
    await harness.cleanup();
  });

  it('serves on a port and names the leader in the log', async function () {
    assert.match(leader.address, /^127\.0\.0\.1:\d+$/);
    const elected = await leader.proc.waitForRecord('became leader');
    assert.equal(elected['address'], leader.address);
    assert.ok(!follower.proc.records().some((record) => record.msg === 'became leader'));
  });

  it('a follower refuses a stream with FAILED_PRECONDITION and the leader’s address', async function () {
    const probe = host('refusal', '127.0.0.1:40001', ['cart'], { placements: [follower.address], reconnect: false });
    probe.connect();
    const end = await probe.waitForEnd();
    assert.equal(end.code, FAILED_PRECONDITION);
    assert.equal(end.errorCode, 'ERR_PLACEMENT_NOT_LEADER');
    assert.equal(end.leader, leader.address);
    assert.match(end.details, /follower/);
  });

  it('a burst of joins costs one round; each host gets lock → update → unlock with the whole table', async function () {
    const ns = 'burst';
    const members = [
      host(ns, '127.0.0.1:41001', ['cart', 'user']),
      host(ns, '127.0.0.1:41002', ['cart']),
      host(ns, '127.0.0.1:41003', ['cart', 'order']),
    ];
    await Promise.all(members.map((member) => member.prepare()));
    for (const member of members) member.connect();
    const tables = await Promise.all(members.map((member) => member.waitForTable(() => true)));
    for (const [index, applied] of tables.entries()) {
      const member = members[index] as TestHost;
      assert.deepEqual(typesOf(applied), ['cart', 'order', 'user'], member.address);
      assert.deepEqual(ringOf(applied, 'cart'), ['127.0.0.1:41001', '127.0.0.1:41002', '127.0.0.1:41003']);
      assert.deepEqual(ringOf(applied, 'user'), ['127.0.0.1:41001']);
      assert.deepEqual(ringOf(applied, 'order'), ['127.0.0.1:41003']);
      assert.equal(applied.table.virtualNodes, 100);
      assert.deepEqual(applied.lockedTypes, ['cart', 'order', 'user']);
      assert.deepEqual(member.orders.map(({ order }) => order.operation), [1, 2, 3], 'LOCK, UPDATE, UNLOCK');
      assert.ok(member.orders.every(({ order }) => order.version === applied.version));
    }
    assert.equal(new Set(tables.map((applied) => applied.version)).size, 1);
    const rounds = leader.proc.records().filter((record) => record.msg === 'round complete' && record['namespace'] === ns);
    assert.equal(rounds.length, 1, JSON.stringify(rounds));
  });

  it('a join locks only the actor types whose ring changes; a pure caller gets a round of its own', async function () {
    const ns = 'partial';
    const first = host(ns, '127.0.0.1:42001', ['cart', 'user']);
    first.connect();
    await first.waitForTable((applied) => ringOf(applied, 'cart').length === 1);

    const second = host(ns, '127.0.0.1:42002', ['order']);
    second.connect();
    const seen = await first.waitForTable((applied) => ringOf(applied, 'order').length === 1);
    assert.deepEqual(seen.lockedTypes, ['order'], 'cart and user calls never wait');
    assert.deepEqual(ringOf(seen, 'cart'), ['127.0.0.1:42001']);
    const ordersBefore = first.orders.length;

    const caller = host(ns, '127.0.0.1:42003', []);
    caller.connect();
    const own = await caller.waitForTable(() => true);
    assert.deepEqual(own.lockedTypes, []);
    assert.equal(own.version, seen.version, 'an unchanged table keeps its version');
    assert.deepEqual(typesOf(own), ['cart', 'order', 'user']);
    assert.equal(first.orders.length, ordersBefore, 'the other hosts took no part in the caller’s round');
  });

  it('when a host leaves, the others get the new table', async function () {
    const ns = 'leave';
    const staying = host(ns, '127.0.0.1:43001', ['cart']);
    const leaving = host(ns, '127.0.0.1:43002', ['cart', 'user']);
    staying.connect();
    leaving.connect();
    await staying.waitForTable((applied) => ringOf(applied, 'cart').length === 2);
    leaving.leave();
    const after = await staying.waitForTable((applied) => ringOf(applied, 'cart').length === 1);
    assert.deepEqual(ringOf(after, 'cart'), ['127.0.0.1:43001']);
    assert.deepEqual(typesOf(after), ['cart']);
    assert.deepEqual(after.lockedTypes, ['cart', 'user']);
  });

  it('drops a host that stops reporting within a few seconds', async function () {
    const ns = 'silent';
    const healthy = host(ns, '127.0.0.1:44001', ['cart']);
    const hung = host(ns, '127.0.0.1:44002', ['cart'], { reconnect: false });
    healthy.connect();
    hung.connect();
    await healthy.waitForTable((applied) => ringOf(applied, 'cart').length === 2);
    const silencedAt = Date.now();
    hung.silence();
    const after = await healthy.waitForTable((applied) => ringOf(applied, 'cart').length === 1, 10_000);
    const elapsed = Date.now() - silencedAt;
    assert.deepEqual(ringOf(after, 'cart'), ['127.0.0.1:44001']);
    assert.ok(elapsed < 2000 + 4000, `dropped after ${elapsed} ms with a 2 s host TTL`);
    const end = await hung.waitForEnd();
    assert.equal(end.code, DEADLINE_EXCEEDED);
    assert.equal(end.errorCode, 'ERR_PLACEMENT_HOST_DROPPED');
  });

  it('refuses a report for a namespace or App ID other than the certificate’s', async function () {
    const liar = host('honest', '127.0.0.1:45001', ['cart'], { claim: { namespace: 'victim' }, reconnect: false });
    liar.connect();
    const end = await liar.waitForEnd();
    assert.equal(end.code, PERMISSION_DENIED);
    assert.equal(end.errorCode, 'ERR_PERMISSION_DENIED');
    assert.equal(liar.applied.length, 0);
  });

  it('refuses a client whose certificate is not from the trust bundle', async function () {
    // Same trust domain name, another CA: the TLS handshake must fail.
    const svid = issueSvid(createRootCa(TRUST_DOMAIN, 3_600_000), TRUST_DOMAIN, 'stranger', 'app-46001');
    const stranger = host('stranger', '127.0.0.1:46001', ['cart'], { reconnect: false, svid });
    stranger.connect();
    const end = await stranger.waitForEnd();
    assert.notEqual(end.code, 0);
    assert.equal(stranger.applied.length, 0);
  });

  it('when the leader is killed, the follower takes over within 5 s and hosts reconnect without a rebalance', async function () {
    const ns = 'failover';
    const members = [host(ns, '127.0.0.1:47001', ['cart']), host(ns, '127.0.0.1:47002', ['cart', 'user'])];
    for (const member of members) member.connect();
    const before = await Promise.all(members.map((member) => member.waitForTable((applied) => ringOf(applied, 'cart').length === 2)));
    const followerLines = follower.proc.lines.length;

    const killedAt = Date.now();
    await leader.proc.kill();
    await follower.proc.waitForRecord('became leader', { id: 'beta' }, 10_000, followerLines);
    const tookOverMs = Date.now() - killedAt;
    assert.ok(tookOverMs < 5000, `the follower took over after ${tookOverMs} ms`);

    const after = await Promise.all(members.map((member, index) => member.waitForTable((applied) => applied.connection > (before[index]?.connection ?? 0), 15_000)));
    for (const applied of after) {
      assert.deepEqual(ringOf(applied, 'cart'), ['127.0.0.1:47001', '127.0.0.1:47002']);
      assert.deepEqual(ringOf(applied, 'user'), ['127.0.0.1:47002']);
      assert.deepEqual(applied.lockedTypes, [], 'the new leader started from the persisted membership: nothing moved');
    }
    const joined = follower.proc.records().filter((record) => record.msg === 'host joined' && record['namespace'] === ns);
    assert.equal(joined.length, 2);

    // The replacement leader keeps working: a new host joins and everybody gets it.
    const late = host(ns, '127.0.0.1:47003', ['user'], { placements: [follower.address] });
    late.connect();
    for (const member of [...members, late]) {
      await member.waitForTable((applied) => ringOf(applied, 'user').length === 2);
    }
  });

  it('a leader that is stopped releases its lease at once, and hosts move to the next one', async function () {
    const ns = 'handover';
    const current: Replica = follower;
    const next = await replica('gamma');
    const member = host(ns, '127.0.0.1:48001', ['cart'], { placements: [current.address, next.address] });
    member.connect();
    const before = await member.waitForTable((applied) => ringOf(applied, 'cart').length === 1);
    const nextLines = next.proc.lines.length;
    const stoppedAt = Date.now();
    current.proc.signal('SIGTERM');
    await next.proc.waitForRecord('became leader', { id: 'gamma' }, 10_000, nextLines);
    const handoverMs = Date.now() - stoppedAt;
    assert.ok(handoverMs < 2000, `handover took ${handoverMs} ms`);
    const after = await member.waitForTable((applied) => applied.connection > before.connection);
    assert.deepEqual(ringOf(after, 'cart'), ['127.0.0.1:48001']);
    assert.deepEqual(after.lockedTypes, []);
    assert.equal((await current.proc.exited).code, 0);
  });
});
