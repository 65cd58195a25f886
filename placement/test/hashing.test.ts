import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ActorPlacement, DEFAULT_VIRTUAL_NODES, HashRing, ringPosition } from '../src/hashing.js';
import { changedActorTypes, computeTable } from '../src/table.js';

const hosts = (count: number, prefix = '10.1.0.'): string[] => Array.from({ length: count }, (_, i) => `${prefix}${i + 1}:50002`);
const keys = (count: number): string[] => Array.from({ length: count }, (_, i) => `actor-${i}`);

function owners(ring: HashRing, ids: string[]): string[] {
  return ids.map((id) => ring.lookup(id) as string);
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
