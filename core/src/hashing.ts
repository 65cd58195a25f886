// Hashing is pure computation: node:crypto is used only for its deterministic hash, never for randomness or I/O.
// eslint-disable-next-line no-restricted-imports
import { hash } from 'node:crypto';

/**
 * Consistent hashing of actors onto hosts. Pure: no I/O, no clock, no randomness, so every sidecar that is given
 * the same members computes the same owner for every actor. The algorithm is part of the placement contract
 * (`skein/placement/v1/placement.proto`), which is why it lives in the contracts package: placement builds tables
 * with it and sidecars look owners up with it. Pinned by placement's golden tests; change it only with a new
 * contract version.
 */

/** Virtual nodes per host when placement is not told otherwise. */
export const DEFAULT_VIRTUAL_NODES = 100;

/** 2^21: shifting the first 64 bits of the digest right by 11 leaves 53 bits, exact in a JS number. */
const HIGH_WORD_SCALE = 2 ** 21;

/** 2^53: ring positions lie in [0, RING_SIZE). */
const RING_SIZE = 2 ** 53;

/** The big-endian unsigned 32-bit word at `offset` of a digest in Node's 'binary' (latin1) encoding: one code unit per byte. */
function wordAt(digest: string, offset: number): number {
  return ((digest.charCodeAt(offset) << 24) | (digest.charCodeAt(offset + 1) << 16) | (digest.charCodeAt(offset + 2) << 8) | digest.charCodeAt(offset + 3)) >>> 0;
}

/** The ring position of `key`: the first 8 bytes of SHA-256 (big-endian) shifted right by 11 bits. */
export function ringPosition(key: string): number {
  // The one-shot form costs half of createHash(), and a 'binary' string digest about half of a Buffer one (no Buffer
  // to allocate): lookups hash once per actor call, and a ring build once per virtual node.
  const digest = hash('sha256', key, 'binary');
  return wordAt(digest, 0) * HIGH_WORD_SCALE + (wordAt(digest, 4) >>> 11);
}

/** The key whose position is a member's `index`-th virtual node; the separator keeps `a1`+`0` apart from `a`+`10`. */
export function virtualNodeKey(member: string, index: number): string {
  return `${member}#${index}`;
}

function checkVirtualNodes(virtualNodes: number): void {
  if (!Number.isInteger(virtualNodes) || virtualNodes < 1 || virtualNodes > 10_000) {
    throw new RangeError(`virtual nodes must be an integer from 1 to 10000, not ${virtualNodes}`);
  }
}

/** Positions of one member's virtual nodes, by index. Shared between rings that keep the member. */
type MemberPoints = Float64Array;

function pointsOf(member: string, virtualNodes: number): MemberPoints {
  const points = new Float64Array(virtualNodes);
  for (let index = 0; index < virtualNodes; index++) points[index] = ringPosition(virtualNodeKey(member, index));
  return points;
}

/** Code-unit order, the same in every JS engine (unlike `localeCompare`). */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Members unique and in code-unit order: the order owner indices count in and position ties resolve by. */
function sortedMembers(members: Iterable<string>): string[] {
  return [...new Set(members)].sort(compareStrings);
}

/** Where a ring may find points already computed for a member: another ring's `points`, for one. */
interface PointSource {
  get(member: string): MemberPoints | undefined;
}

/**
 * True when `points` can be a member's points on a ring of `virtualNodes`: one ring position, in [0, 2^53) and not
 * NaN, per virtual node. Points from a source are taken only then, so ordering can rely on every position being one.
 */
function fitsRing(points: MemberPoints, virtualNodes: number): boolean {
  if (points.length !== virtualNodes) return false;
  for (let index = 0; index < virtualNodes; index++) {
    const position = points[index] as number;
    if (!(position >= 0 && position < RING_SIZE)) return false;
  }
  return true;
}

/** Points of `member` from `reuse`, if it has points that fit the ring. */
function reusedPoints(member: string, virtualNodes: number, reuse: PointSource | undefined): MemberPoints | undefined {
  const points = reuse?.get(member);
  return points && fitsRing(points, virtualNodes) ? points : undefined;
}

/** Points of every member: a ring's own points (`own`, same virtual nodes) as they are, else from `reuse`, else hashed. */
function pointsFor(members: readonly string[], virtualNodes: number, own: ReadonlyMap<string, MemberPoints> | undefined, reuse: PointSource | undefined): Map<string, MemberPoints> {
  const memberPoints = new Map<string, MemberPoints>();
  for (const member of members) memberPoints.set(member, own?.get(member) ?? reusedPoints(member, virtualNodes, reuse) ?? pointsOf(member, virtualNodes));
  return memberPoints;
}

/**
 * Points in ring order: `positions` ascending; equal positions by owner, then by virtual-node index. `owners[i]` is
 * the index (rank) in the ring's sorted members of the member whose point is at `positions[i]`.
 */
interface OrderedPoints {
  positions: Float64Array;
  owners: Uint32Array;
}

/** Marks a place not yet taken while points are put in ring order. No ring has 2^32 - 1 members. */
const UNPLACED = 0xffff_ffff;

/** The index of the first of `positions[low, high)` at or after `position` (`high` if none is); `positions` ascending. */
function firstAtOrAfter(positions: Float64Array, position: number, low: number, high: number): number {
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((positions[mid] as number) < position) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** The band of `position` (in [0, 2^53)) when [0, 2^53) is cut into `bands` equal bands; never lower for a greater position. */
function bandOf(position: number, bands: number): number {
  return Math.min(bands - 1, Math.floor((position / RING_SIZE) * bands));
}

/**
 * Where each band starts in ascending `positions`: `starts[b]` is the index of the first position in band `b` or a
 * later one, `starts[bands]` the count, so every position of band `b` lies in `[starts[b], starts[b + 1])`.
 */
function bandStarts(positions: Float64Array, bands: number): Uint32Array {
  const starts = new Uint32Array(bands + 1);
  let band = 0;
  for (let i = 0; i < positions.length; i++) {
    const of = bandOf(positions[i] as number, bands);
    while (band <= of) starts[band++] = i;
  }
  while (band <= bands) starts[band++] = positions.length;
  return starts;
}

/**
 * The points of members `ranks` (ascending; `points[k]` belongs to `ranks[k]`) in ring order. The positions are
 * sorted natively, as numbers; then each point, visited in (rank, index) order, takes the first free place holding
 * its position. That visiting order is the tie order, so a run of equal positions comes out by member, then index,
 * exactly as a comparator on (position, member, index) would sort it. Hash positions are uniform, so with as many
 * bands as points the search for a point's place spans about one band instead of the whole ring.
 */
function orderPoints(ranks: readonly number[], points: readonly MemberPoints[], virtualNodes: number): OrderedPoints {
  const count = ranks.length * virtualNodes;
  const positions = new Float64Array(count);
  for (let k = 0; k < points.length; k++) positions.set(points[k] as MemberPoints, k * virtualNodes);
  positions.sort();
  const bands = Math.max(1, count);
  const starts = bandStarts(positions, bands);
  const owners = new Uint32Array(count).fill(UNPLACED);
  for (let k = 0; k < points.length; k++) {
    const memberPoints = points[k] as MemberPoints;
    for (let index = 0; index < virtualNodes; index++) {
      const position = memberPoints[index] as number;
      const band = bandOf(position, bands);
      let place = firstAtOrAfter(positions, position, starts[band] as number, starts[band + 1] as number);
      while (owners[place] !== UNPLACED) place++;
      owners[place] = ranks[k] as number;
    }
  }
  return { positions, owners };
}

/**
 * How the members of a ring map onto a new sorted member list (both in code-unit order): `rankAfter[r]` is the new
 * rank of old member `r` (-1 if it leaves; increasing over the members that stay), `joined` the new ranks of members
 * the old ring did not have (ascending).
 */
function matchMembers(before: readonly string[], after: readonly string[]): { rankAfter: Int32Array; joined: number[] } {
  const rankAfter = new Int32Array(before.length).fill(-1);
  const joined: number[] = [];
  let old = 0;
  for (let rank = 0; rank < after.length; rank++) {
    const member = after[rank] as string;
    while (old < before.length && (before[old] as string) < member) old++;
    if (before[old] === member) rankAfter[old++] = rank;
    else joined.push(rank);
  }
  return { rankAfter, joined };
}

/**
 * The ring order of a derived ring, in one pass over the old ring's order (`before`). Points of members that leave
 * are dropped; owners of members that stay are renumbered by `rankAfter`, which is increasing over them, so their
 * points keep their order, ties included. The points of `joining` (in ring order, owners disjoint from the kept ones)
 * are merged in: a joining point goes before the first kept point with a greater position, or with an equal position
 * and a higher rank. Owners being distinct, the index never has to decide; that is the order a full build gives.
 */
function derivedOrder(before: OrderedPoints, rankAfter: Int32Array, joining: OrderedPoints, count: number): OrderedPoints {
  const positions = new Float64Array(count);
  const owners = new Uint32Array(count);
  const joinCount = joining.positions.length;
  let place = 0;
  let next = 0;
  /** Position of the next joining point; Infinity once all are placed, so the common case is one comparison. */
  let nextPosition = joinCount > 0 ? (joining.positions[0] as number) : Infinity;
  for (let i = 0; i < before.positions.length; i++) {
    const rank = rankAfter[before.owners[i] as number] as number;
    if (rank < 0) continue;
    const position = before.positions[i] as number;
    while (nextPosition < position || (nextPosition === position && (joining.owners[next] as number) < rank)) {
      positions[place] = nextPosition;
      owners[place++] = joining.owners[next++] as number;
      nextPosition = next < joinCount ? (joining.positions[next] as number) : Infinity;
    }
    positions[place] = position;
    owners[place++] = rank;
  }
  positions.set(joining.positions.subarray(next), place);
  owners.set(joining.owners.subarray(next), place);
  return { positions, owners };
}

/**
 * One hash ring: `virtualNodes` points per member, sorted by position (ties by member, then index, so a collision
 * resolves the same way everywhere). Immutable; `withMembers` derives a new ring and reuses the points of members
 * that stay.
 */
export class HashRing {
  /** Members, sorted and unique. */
  readonly members: readonly string[];
  readonly virtualNodes: number;
  private readonly memberPoints: ReadonlyMap<string, MemberPoints>;
  private readonly positions: Float64Array;
  private readonly owners: Uint32Array;

  private constructor(members: readonly string[], virtualNodes: number, memberPoints: ReadonlyMap<string, MemberPoints>, ordered: OrderedPoints) {
    this.members = members;
    this.virtualNodes = virtualNodes;
    this.memberPoints = memberPoints;
    this.positions = ordered.positions;
    this.owners = ordered.owners;
  }

  /** A ring of `members` (duplicates ignored). */
  static build(members: Iterable<string>, virtualNodes = DEFAULT_VIRTUAL_NODES, reuse?: PointSource): HashRing {
    checkVirtualNodes(virtualNodes);
    const sorted = sortedMembers(members);
    const memberPoints = pointsFor(sorted, virtualNodes, undefined, reuse);
    const ranks = sorted.map((_, rank) => rank);
    const ordered = orderPoints(ranks, sorted.map((member) => memberPoints.get(member) as MemberPoints), virtualNodes);
    return new HashRing(sorted, virtualNodes, memberPoints, ordered);
  }

  /**
   * The same ring with another member set (duplicates ignored), equal to `HashRing.build` of it: points of members
   * present in both are neither rehashed nor re-sorted. The points of members that stay keep their order; only the
   * points of members that join are sorted, then merged in. Points of joining members come from `reuse` when it
   * has them.
   */
  withMembers(members: Iterable<string>, reuse?: PointSource): HashRing {
    const sorted = sortedMembers(members);
    if (sorted.length === this.members.length && sorted.every((member, rank) => member === this.members[rank])) return this;
    const memberPoints = pointsFor(sorted, this.virtualNodes, this.memberPoints, reuse);
    const { rankAfter, joined } = matchMembers(this.members, sorted);
    const joining = orderPoints(joined, joined.map((rank) => memberPoints.get(sorted[rank] as string) as MemberPoints), this.virtualNodes);
    const ordered = derivedOrder({ positions: this.positions, owners: this.owners }, rankAfter, joining, sorted.length * this.virtualNodes);
    return new HashRing(sorted, this.virtualNodes, memberPoints, ordered);
  }

  /** Number of points on the ring. */
  get size(): number {
    return this.positions.length;
  }

  /** The member owning `key`; undefined on an empty ring. */
  lookup(key: string): string | undefined {
    return this.ownerAt(ringPosition(key));
  }

  /** The member of the first point at or after `position`, wrapping around. */
  ownerAt(position: number): string | undefined {
    const count = this.positions.length;
    if (count === 0) return undefined;
    // firstAtOrAfter written out: on this per-call path that measured a few percent faster than calling it.
    let low = 0;
    let high = count;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((this.positions[mid] as number) < position) low = mid + 1;
      else high = mid;
    }
    return this.members[this.owners[low === count ? 0 : low] as number];
  }

  /** Points of every member, for building related rings without rehashing. */
  get points(): ReadonlyMap<string, MemberPoints> {
    return this.memberPoints;
  }
}

/** A host on an actor type's ring: the address other sidecars dial, and the App ID its certificate carries. */
export interface RingMember {
  address: string;
  appId: string;
}

/** A placement table as disseminated: per actor type, the members of its ring. */
export interface TableSpec {
  virtualNodes: number;
  rings: ReadonlyArray<{ actorType: string; members: readonly RingMember[] }>;
}

/** One actor type's ring, and the members its addresses stand for (App IDs may differ between types). */
interface TypeRing {
  ring: HashRing;
  byAddress: ReadonlyMap<string, RingMember>;
  /** `ringSignature` of the type's members: an unchanged signature lets the next table keep the entry as it is. */
  signature: string;
}

/**
 * Actor lookup over a whole table: one ring per actor type, shared by the types that have the same hosts. Build it
 * from each new table, passing the previous lookup so rings of unchanged types are kept and changed rings are derived
 * from the previous ones instead of being rebuilt.
 */
export class ActorPlacement {
  readonly virtualNodes: number;
  private readonly rings: ReadonlyMap<string, TypeRing>;

  private constructor(virtualNodes: number, rings: ReadonlyMap<string, TypeRing>) {
    this.virtualNodes = virtualNodes;
    this.rings = rings;
  }

  /**
   * Rings of `table`; entries of `previous` whose members did not change are reused as they are, and every other
   * ring is a known one with the same hosts or is derived from the known ring closest to it (see `RingPool`).
   */
  static from(table: TableSpec, previous?: ActorPlacement): ActorPlacement {
    checkVirtualNodes(table.virtualNodes);
    const base = previous?.virtualNodes === table.virtualNodes ? previous : undefined;
    const pool = new RingPool(table.virtualNodes, base ? [...base.rings.values()].map((entry) => entry.ring) : []);
    const rings = new Map<string, TypeRing>();
    for (const { actorType, members } of table.rings) {
      const signature = ringSignature(members);
      const kept = base?.rings.get(actorType);
      if (kept && kept.signature === signature) {
        rings.set(actorType, kept);
        continue;
      }
      const byAddress = new Map(members.map((member) => [member.address, member]));
      rings.set(actorType, { ring: pool.ringOf(sortedMembers(byAddress.keys())), byAddress, signature });
    }
    return new ActorPlacement(table.virtualNodes, rings);
  }

  /** The host of actor `actorId` of `actorType`; undefined when no host serves the type. */
  lookup(actorType: string, actorId: string): RingMember | undefined {
    const entry = this.rings.get(actorType);
    if (!entry) return undefined;
    const address = entry.ring.lookup(actorId);
    return address === undefined ? undefined : entry.byAddress.get(address);
  }

  /** The ring of `actorType`, the same object for every type with the same hosts; undefined for a type not in the table. */
  ringOf(actorType: string): HashRing | undefined {
    return this.rings.get(actorType)?.ring;
  }

  /** Actor types that have at least one host. */
  get actorTypes(): string[] {
    return [...this.rings.keys()];
  }
}

/** A key equal for two sorted member lists exactly when they are the same list, whatever the addresses contain. */
function membersKey(members: readonly string[]): string {
  return JSON.stringify(members);
}

/** How many members two lists sorted in code-unit order have in common, in one linear pass. */
function sharedMembers(a: readonly string[], b: readonly string[]): number {
  let shared = 0;
  for (let i = 0, j = 0; i < a.length && j < b.length; ) {
    const order = compareStrings(a[i] as string, b[j] as string);
    if (order === 0) shared++;
    if (order <= 0) i++;
    if (order >= 0) j++;
  }
  return shared;
}

/**
 * The rings one `ActorPlacement.from` can share or derive from, by member set: the previous placement's (same
 * virtual nodes only), then each ring made for the new table. Types with the same hosts get one ring. A new member
 * set is derived from the known ring it differs least from, when fewer members change than the new set has (more
 * would cost no less than a build). It is also a point source over all its rings, so a host already on any of them
 * is never hashed again.
 */
class RingPool implements PointSource {
  private readonly virtualNodes: number;
  private readonly byMembers = new Map<string, HashRing>();

  constructor(virtualNodes: number, known: Iterable<HashRing>) {
    this.virtualNodes = virtualNodes;
    for (const ring of new Set(known)) this.byMembers.set(membersKey(ring.members), ring);
  }

  /** The ring of `members` (sorted and unique): the known one, or a new one derived or built, then known. */
  ringOf(members: readonly string[]): HashRing {
    const key = membersKey(members);
    const known = this.byMembers.get(key);
    if (known) return known;
    const closest = this.closestTo(members);
    const ring = closest ? closest.withMembers(members, this) : HashRing.build(members, this.virtualNodes, this);
    this.byMembers.set(key, ring);
    return ring;
  }

  /** Points of `member` from any known ring. */
  get(member: string): MemberPoints | undefined {
    for (const ring of this.byMembers.values()) {
      const points = ring.points.get(member);
      if (points) return points;
    }
    return undefined;
  }

  /** The known ring fewest members away from `members` (dropped plus added), if fewer than `members.length`. */
  private closestTo(members: readonly string[]): HashRing | undefined {
    let closest: HashRing | undefined;
    let fewest = members.length;
    for (const ring of this.byMembers.values()) {
      const changes = ring.members.length + members.length - 2 * sharedMembers(ring.members, members);
      if (changes < fewest) {
        closest = ring;
        fewest = changes;
      }
    }
    return closest;
  }
}

/** A string that is equal for two member lists exactly when they make the same ring. */
export function ringSignature(members: readonly RingMember[]): string {
  return members
    .map((member) => `${member.address}\u0000${member.appId}`)
    .sort(compareStrings)
    .join('\u0001');
}
