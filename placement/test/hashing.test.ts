import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ActorPlacement, DEFAULT_VIRTUAL_NODES, HashRing, ringPosition } from '../src/hashing.js';
import { changedActorTypes, computeTable } from '../src/table.js';

const hosts = (count: number, prefix = '10.1.0.'): string[] => Array.from({ length: count }, (_, i) => `${prefix}${i + 1}:50002`);
const keys = (count: number): string[] => Array.from({ length: count }, (_, i) => `actor-${i}`);

function owners(ring: HashRing, ids: string[]): string[] {
  return ids.map((id) => ring.lookup(id) as string);
}

/** A seeded PRNG (mulberry32) in [0, 1): every run tries the same member changes. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Ring positions of `count` actor ids, computed once so rings can be compared with `ownerAt` alone. */
const keyPositions = (count: number): number[] => keys(count).map(ringPosition);

/**
 * Asserts that two rings are the same ring: same members and size, the same owner for every key position, and the
 * same owner just before, at and just after every point (so the order of points, ties included, agrees wherever a
 * lookup can see it).
 */
function assertSameRing(actual: HashRing, expected: HashRing, positions: readonly number[], what: string): void {
  assert.deepEqual(actual.members, expected.members, `${what}: members`);
  assert.equal(actual.virtualNodes, expected.virtualNodes, `${what}: virtual nodes`);
  assert.equal(actual.size, expected.size, `${what}: size`);
  const probes = [...positions];
  for (const points of expected.points.values()) for (const position of points) probes.push(position - 1, position, position + 1);
  for (const position of probes) {
    if (actual.ownerAt(position) !== expected.ownerAt(position)) assert.fail(`${what}: owner at ${position} is ${actual.ownerAt(position)}, not ${expected.ownerAt(position)}`);
  }
}

/** The owner at `position` by the contract's definition, from a plain list of points sorted by (position, member, index). */
function referenceOwnerAt(points: ReadonlyMap<string, readonly number[]>, position: number): string | undefined {
  const all = [...points].flatMap(([member, positions]) => positions.map((at, index) => ({ at, member, index })));
  all.sort((a, b) => a.at - b.at || (a.member < b.member ? -1 : a.member > b.member ? 1 : 0) || a.index - b.index);
  return (all.find((point) => point.at >= position) ?? all[0])?.member;
}

/** `count` distinct entries of `from`, in a seeded random order. */
function pick<T>(random: () => number, from: readonly T[], count: number): T[] {
  const rest = [...from];
  const picked: T[] = [];
  while (picked.length < count && rest.length > 0) picked.push(...rest.splice(Math.floor(random() * rest.length), 1));
  return picked;
}

/**
 * A seeded walk over member sets drawn from `pool`, one change per step: hosts joining, leaving, replaced, several of
 * each at once, down to a single host and to none. Sets come in a shuffled order, sometimes with duplicates, as a
 * table might list them.
 */
function memberChanges(random: () => number, pool: readonly string[], steps: number): string[][] {
  const between = (low: number, high: number): number => low + Math.floor(random() * (high - low + 1));
  let current = pick(random, pool, between(0, pool.length / 2));
  const sets = [current];
  for (let step = 0; step < steps; step++) {
    const absent = pool.filter((member) => !current.includes(member));
    const kind = between(0, 9);
    if (kind <= 2) current = [...current, ...pick(random, absent, between(1, 3))];
    else if (kind <= 4) current = pick(random, current, current.length - between(1, 3));
    else if (kind <= 6) {
      const replaced = between(1, 3);
      current = [...pick(random, current, current.length - replaced), ...pick(random, absent, replaced)];
    } else if (kind === 7) current = [...pick(random, current, between(0, current.length)), ...pick(random, absent, between(0, absent.length))];
    else if (kind === 8) current = pick(random, pool, 1);
    else current = [];
    const listed = pick(random, current, current.length);
    sets.push(random() < 0.2 ? [...listed, ...pick(random, listed, 2)] : listed);
  }
  return sets;
}

/** Member names whose code-unit order differs from locale order, and a prefix of another name. */
const awkwardNames = ['a:1', 'B:1', 'b:1', 'Z\u00e9:1', '\u00e9:1', 'e:1', '10.0.0.1:1', '10.0.0.10:1', '10.0.0.2:1', '10.0.0.1'];

/** Made-up points in a tiny range, so positions tie often, between members and within one. */
function collidingPoints(members: readonly string[], virtualNodes: number, random: () => number): Map<string, Float64Array> {
  return new Map(members.map((member) => [member, Float64Array.from({ length: virtualNodes }, () => Math.floor(random() * 40))]));
}

describe('hashing', () => {
  describe('golden values (the wire contract: other implementations must agree)', () => {
    it('positions are the first 64 bits of SHA-256, big-endian, shifted right by 11', () => {
      assert.equal(ringPosition(''), 8011147086339971);
      assert.equal(ringPosition('actor-1'), 7130991393896434);
      assert.equal(ringPosition('10.0.0.1:50002#0'), 2776773005832780);
    });

    it('owners of a three-host ring with 100 virtual nodes', () => {
      const ring = HashRing.build(['10.0.0.1:50002', '10.0.0.2:50002', '10.0.0.3:50002']);
      const [a, b, c] = ['10.0.0.1:50002', '10.0.0.2:50002', '10.0.0.3:50002'];
      assert.deepEqual(owners(ring, keys(12)), [c, c, a, a, b, a, c, a, a, b, c, b]);
    });
  });

  describe('determinism', () => {
    it('gives the same owners whatever the order members were given in', () => {
      const members = hosts(7);
      const shuffled = [members[3], members[6], members[0], members[5], members[1], members[4], members[2]] as string[];
      assert.deepEqual(owners(HashRing.build(members), keys(2000)), owners(HashRing.build(shuffled), keys(2000)));
      assert.deepEqual(owners(HashRing.build([...members, ...members]), keys(500)), owners(HashRing.build(members), keys(500)));
    });

    it('derives the same ring as a full build after any change of members, whatever the virtual nodes', () => {
      const random = seededRandom(2024);
      const pool = [...hosts(60), ...awkwardNames];
      const positions = keyPositions(3000);
      for (const virtualNodes of [1, 2, 7, 100]) {
        for (let walk = 0; walk < 3; walk++) {
          const sets = memberChanges(random, pool, 12);
          let ring = HashRing.build(sets[0] ?? [], virtualNodes);
          for (const [step, members] of sets.entries()) {
            ring = ring.withMembers(members);
            assertSameRing(ring, HashRing.build(members, virtualNodes), positions, `${virtualNodes} virtual nodes, walk ${walk}, step ${step}`);
          }
        }
      }
    });

    it('gives the same owners in another process', () => {
      const members = hosts(5);
      const ids = keys(300);
      const module = fileURLToPath(new URL('../src/hashing.js', import.meta.url));
      const script = `const { HashRing } = await import(${JSON.stringify(module)});
        const ring = HashRing.build(${JSON.stringify([...members].reverse())});
        process.stdout.write(JSON.stringify(${JSON.stringify(ids)}.map((id) => ring.lookup(id))));`;
      const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
      assert.deepEqual(JSON.parse(output), owners(HashRing.build(members), ids));
    });

    it('derives the same ring incrementally as from scratch', () => {
      const base = HashRing.build(hosts(6));
      const grown = base.withMembers([...hosts(6), '10.9.9.9:1']);
      assert.deepEqual(owners(grown, keys(1000)), owners(HashRing.build([...hosts(6), '10.9.9.9:1']), keys(1000)));
    });
  });

  describe('order of points (what every sidecar must agree on)', () => {
    it('sorts points by position, ties by member in code-unit order, then by index', () => {
      const random = seededRandom(7);
      for (let round = 0; round < 40; round++) {
        const members = awkwardNames.filter(() => random() < 0.5);
        const virtualNodes = 1 + Math.floor(random() * 5);
        const points = collidingPoints(members, virtualNodes, random);
        const ring = HashRing.build(members, virtualNodes, points);
        const plain = new Map([...points].map(([member, at]) => [member, [...at]]));
        for (let position = -1; position <= 41; position++) assert.equal(ring.ownerAt(position), referenceOwnerAt(plain, position), `round ${round}, position ${position}`);
      }
    });

    it('keeps that order when a ring is derived, however many positions tie', () => {
      const random = seededRandom(99);
      const pool = [...awkwardNames, ...hosts(6)];
      for (const virtualNodes of [1, 3, 8]) {
        const points = collidingPoints(pool, virtualNodes, random);
        const plain = new Map([...points].map(([member, at]) => [member, [...at]]));
        for (let walk = 0; walk < 5; walk++) {
          const sets = memberChanges(random, pool, 15);
          let ring = HashRing.build(sets[0] ?? [], virtualNodes, points);
          for (const [step, members] of sets.entries()) {
            ring = ring.withMembers(members, points);
            const what = `${virtualNodes} virtual nodes, walk ${walk}, step ${step}`;
            assertSameRing(ring, HashRing.build(members, virtualNodes, points), [], what);
            const present = new Map([...plain].filter(([member]) => members.includes(member)));
            for (let position = -1; position <= 41; position++) assert.equal(ring.ownerAt(position), referenceOwnerAt(present, position), `${what}, position ${position}`);
          }
        }
      }
    });

    it('hashes a member again rather than take reused points that are not ring positions', () => {
      const members = hosts(4);
      const positions = keyPositions(500);
      for (const bad of [Float64Array.of(1, 2), Float64Array.from({ length: 3 }, () => Number.NaN), Float64Array.of(1, -1, 2), Float64Array.of(1, 2 ** 53, 2), Float64Array.of(1, Infinity, 2)]) {
        const reuse = new Map([[members[0] as string, bad]]);
        assertSameRing(HashRing.build(members, 3, reuse), HashRing.build(members, 3), positions, `build reusing ${bad.join()}`);
        assertSameRing(HashRing.build(members.slice(1), 3).withMembers(members, reuse), HashRing.build(members, 3), positions, `derived reusing ${bad.join()}`);
      }
    });

    it('computes ringPosition as the first 53 bits of SHA-256 for any key', () => {
      const random = seededRandom(11);
      const ids = [...keys(2000), '', '#', 'é', '\u{1f600}', 'a'.repeat(1000)];
      for (let i = 0; i < 1000; i++) ids.push(String.fromCharCode(...Array.from({ length: 1 + Math.floor(random() * 20) }, () => Math.floor(random() * 0xd7ff))));
      for (const id of ids) {
        const expected = Number(createHash('sha256').update(id, 'utf8').digest().readBigUInt64BE(0) >> 11n);
        if (ringPosition(id) !== expected) assert.fail(`ringPosition(${JSON.stringify(id)}) is ${ringPosition(id)}, not ${expected}`);
      }
    });
  });

  describe('shape', () => {
    it('has 100 virtual nodes per host by default, and as many as asked otherwise', () => {
      assert.equal(DEFAULT_VIRTUAL_NODES, 100);
      assert.equal(HashRing.build(hosts(4)).size, 400);
      assert.equal(HashRing.build(hosts(4), 7).size, 28);
      assert.throws(() => HashRing.build(hosts(1), 0), RangeError);
    });

    it('has no owner on an empty ring', () => {
      assert.equal(HashRing.build([]).lookup('x'), undefined);
    });

    it('gives every key to the only host of a one-host ring', () => {
      const ring = HashRing.build(['only:1']);
      assert.ok(keys(100).every((id) => ring.lookup(id) === 'only:1'));
    });
  });

  describe('distribution', () => {
    it('spreads keys over 10 hosts within 30% of an even share', () => {
      const ring = HashRing.build(hosts(10));
      const counts = new Map<string, number>();
      const ids = keys(50_000);
      for (const owner of owners(ring, ids)) counts.set(owner, (counts.get(owner) ?? 0) + 1);
      assert.equal(counts.size, 10);
      const even = ids.length / 10;
      for (const [host, count] of counts) assert.ok(Math.abs(count - even) / even < 0.3, `${host} owns ${count} of ${ids.length}`);
    });

    it('moves about 1/(N+1) of the keys, all to the new host, when a host joins', () => {
      const before = HashRing.build(hosts(10));
      const after = before.withMembers([...hosts(10), '10.2.0.1:50002']);
      const ids = keys(30_000);
      const was = owners(before, ids);
      const now = owners(after, ids);
      const moved = ids.filter((_, i) => was[i] !== now[i]);
      assert.ok(ids.every((_, i) => was[i] === now[i] || now[i] === '10.2.0.1:50002'), 'a key moved between two old hosts');
      const share = moved.length / ids.length;
      assert.ok(share > 0.5 / 11 && share < 1.5 / 11, `moved ${share}`);
    });

    it('moves only the leaving host’s keys, about 1/N, when a host leaves', () => {
      const members = hosts(10);
      const before = HashRing.build(members);
      const leaving = members[4] as string;
      const after = before.withMembers(members.filter((host) => host !== leaving));
      const ids = keys(30_000);
      const was = owners(before, ids);
      const now = owners(after, ids);
      const moved = ids.filter((_, i) => was[i] !== now[i]);
      assert.ok(ids.every((_, i) => was[i] === now[i] || was[i] === leaving), 'a key of a staying host moved');
      assert.equal(moved.length, was.filter((owner) => owner === leaving).length);
      const share = moved.length / ids.length;
      assert.ok(share > 0.5 / 10 && share < 1.5 / 10, `moved ${share}`);
    });
  });

  describe('tables', () => {
    const host = (address: string, actorTypes: string[]) => ({ address, appId: `app-${address}`, instanceId: address, actorTypes });

    it('looks actors up per type, and finds no host for a type nobody hosts', () => {
      const table = computeTable([host('a:1', ['cart', 'user']), host('b:1', ['cart'])], 100);
      const placement = ActorPlacement.from(table);
      assert.deepEqual(placement.actorTypes.sort(), ['cart', 'user']);
      assert.equal(placement.lookup('user', 'u1')?.address, 'a:1');
      assert.equal(placement.lookup('user', 'u1')?.appId, 'app-a:1');
      assert.equal(placement.lookup('order', 'o1'), undefined);
      const ring = HashRing.build(['a:1', 'b:1']);
      assert.ok(keys(200).every((id) => placement.lookup('cart', id)?.address === ring.lookup(id)));
    });

    it('reuses the rings of unchanged types', () => {
      const first = ActorPlacement.from(computeTable([host('a:1', ['cart', 'user']), host('b:1', ['cart'])], 100));
      const second = ActorPlacement.from(computeTable([host('a:1', ['cart', 'user']), host('b:1', ['cart']), host('c:1', ['cart'])], 100), first);
      assert.ok(keys(200).every((id) => second.lookup('user', id)?.address === 'a:1'));
      assert.ok(keys(200).some((id) => second.lookup('cart', id)?.address === 'c:1'));
    });

    it('gives the types that have the same hosts one ring, and the App IDs of each type', () => {
      const members = (appIdOf: (i: number) => string) => hosts(5).map((address, i) => ({ address, appId: appIdOf(i) }));
      const placement = ActorPlacement.from({
        virtualNodes: 100,
        rings: [
          { actorType: 'cart', members: members((i) => `cart-app-${i}`) },
          { actorType: 'user', members: members((i) => `user-app-${i}`).reverse() },
          { actorType: 'order', members: members((i) => `order-app-${i}`).slice(1) },
        ],
      });
      assert.equal(placement.ringOf('cart'), placement.ringOf('user'), 'one ring for the same hosts, whatever their order');
      assert.notEqual(placement.ringOf('cart'), placement.ringOf('order'));
      assert.equal(placement.ringOf('nobody'), undefined);
      const ring = HashRing.build(hosts(5));
      for (const id of keys(300)) {
        const address = ring.lookup(id) as string;
        const index = hosts(5).indexOf(address);
        assert.deepEqual(placement.lookup('cart', id), { address, appId: `cart-app-${index}` });
        assert.deepEqual(placement.lookup('user', id), { address, appId: `user-app-${index}` });
      }
    });

    it('keeps the rings of types with other hosts apart', () => {
      const [cartHosts, orderHosts] = [hosts(6), [...hosts(4), ...hosts(3, '10.7.0.')]];
      const table = (cart: string[], order: string[]) => ({
        virtualNodes: 50,
        rings: [
          { actorType: 'cart', members: cart.map((address) => ({ address, appId: 'cart' })) },
          { actorType: 'order', members: order.map((address) => ({ address, appId: 'order' })) },
        ],
      });
      const first = ActorPlacement.from(table(cartHosts, orderHosts));
      const second = ActorPlacement.from(table(orderHosts, cartHosts), first);
      for (const [placement, cart, order] of [[first, cartHosts, orderHosts], [second, orderHosts, cartHosts]] as const) {
        const [cartRing, orderRing] = [HashRing.build(cart, 50), HashRing.build(order, 50)];
        for (const id of keys(500)) {
          assert.deepEqual(placement.lookup('cart', id), { address: cartRing.lookup(id), appId: 'cart' });
          assert.deepEqual(placement.lookup('order', id), { address: orderRing.lookup(id), appId: 'order' });
        }
      }
      assert.equal(second.ringOf('cart'), first.ringOf('order'), 'a ring moves to the type that now has its hosts');
    });

    it('builds from the previous placement the same rings as from scratch, over seeded table changes', () => {
      const random = seededRandom(31);
      const pool = [...hosts(50), ...awkwardNames];
      const positions = keyPositions(2000);
      const types = ['cart', 'user', 'order', 'session'];
      const walks = new Map(types.map((actorType) => [actorType, memberChanges(random, pool, 16)]));
      let previous: ActorPlacement | undefined;
      for (let step = 0; step <= 16; step++) {
        // Some steps give a type the hosts of another, so rings are shared and then split again; one changes geometry.
        const virtualNodes = step === 9 ? 20 : 7;
        const membersOf = (actorType: string): string[] => (step % 4 === 3 && actorType === 'user' ? (walks.get('cart')?.[step] ?? []) : (walks.get(actorType)?.[step] ?? []));
        const table = { virtualNodes, rings: types.map((actorType) => ({ actorType, members: membersOf(actorType).map((address) => ({ address, appId: `${actorType}-${address}` })) })) };
        const placement = ActorPlacement.from(table, previous);
        const scratch = ActorPlacement.from(table);
        for (const actorType of types) {
          const what = `step ${step}, ${actorType}`;
          const ring = placement.ringOf(actorType) as HashRing;
          assertSameRing(ring, HashRing.build(membersOf(actorType), virtualNodes), positions, what);
          assertSameRing(scratch.ringOf(actorType) as HashRing, ring, [], what);
          for (const id of keys(50)) {
            const address = ring.lookup(id);
            assert.deepEqual(placement.lookup(actorType, id), address === undefined ? undefined : { address, appId: `${actorType}-${address}` }, what);
          }
        }
        if (step % 4 === 3) assert.equal(placement.ringOf('user'), placement.ringOf('cart'), `step ${step}: same hosts, one ring`);
        previous = placement;
      }
    });

    it('names exactly the actor types whose ring changed', () => {
      const before = computeTable([host('a:1', ['cart', 'user']), host('b:1', ['cart', 'order'])], 100);
      assert.deepEqual(changedActorTypes(undefined, before), ['cart', 'order', 'user']);
      assert.deepEqual(changedActorTypes(before, computeTable([host('b:1', ['order', 'cart']), host('a:1', ['user', 'cart'])], 100)), []);
      assert.deepEqual(changedActorTypes(before, computeTable([host('a:1', ['cart', 'user']), host('b:1', ['order'])], 100)), ['cart']);
      assert.deepEqual(changedActorTypes(before, computeTable([host('a:1', ['cart', 'user'])], 100)), ['cart', 'order']);
      assert.deepEqual(changedActorTypes(before, computeTable([host('a:1', ['cart', 'user']), host('b:1', ['cart', 'order'])], 50)), ['cart', 'order', 'user']);
    });
  });
});
