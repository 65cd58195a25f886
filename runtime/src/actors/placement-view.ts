import { ActorPlacement, type RingMember, type TableSpec } from '@skein/core';

/**
 * A sidecar's view of placement: the last table it installed and the actor types locked by the round in progress.
 * Pure state, changed only by the placement client (LOCK, UPDATE, UNLOCK) and read by every actor call. It survives
 * the placement stream: a lost connection changes nothing here, so the sidecar keeps serving with the last table and
 * keeps its locks until an UNLOCK arrives from whichever leader.
 */

/** Where a call for one actor can go right now. */
export type Route =
  | { kind: 'owner'; member: RingMember }
  /** No table yet, or the actor's type is locked by a round: wait for the next change. */
  | { kind: 'wait'; reason: 'no table yet' | 'actor type locked' }
  /** The table has no host for the type. */
  | { kind: 'no-host' };

/** The table and locks, with a way to wait for the next change. */
export class PlacementView {
  private placement: ActorPlacement | undefined;
  private tableVersion: string | undefined;
  private readonly locked = new Set<string>();
  private waiters: Array<() => void> = [];

  /** The installed table's version; undefined before the first UPDATE. */
  get version(): string | undefined {
    return this.tableVersion;
  }

  /** True once a table has been installed. */
  get hasTable(): boolean {
    return this.placement !== undefined;
  }

  /** Actor types locked right now. */
  get lockedTypes(): string[] {
    return [...this.locked].sort();
  }

  /** True while calls of `actorType` must wait. */
  isLocked(actorType: string): boolean {
    return this.locked.has(actorType);
  }

  /** LOCK: locks accumulate until the next UNLOCK. */
  lock(actorTypes: readonly string[]): void {
    let changed = false;
    for (const actorType of actorTypes) {
      if (!this.locked.has(actorType)) {
        this.locked.add(actorType);
        changed = true;
      }
    }
    if (changed) this.notify();
  }

  /** UPDATE: installs `table`; rings of unchanged types are kept from the previous table. */
  update(table: TableSpec, version: string): void {
    this.placement = ActorPlacement.from(table, this.placement);
    this.tableVersion = version;
    this.notify();
  }

  /** UNLOCK: releases every lock. */
  unlock(): void {
    if (this.locked.size === 0) return;
    this.locked.clear();
    this.notify();
  }

  /** The owner of an actor in the installed table, whatever the locks; undefined without a table or host. */
  ownerOf(actorType: string, actorId: string): RingMember | undefined {
    return this.placement?.lookup(actorType, actorId);
  }

  /** Where a call for the actor can go now. */
  route(actorType: string, actorId: string): Route {
    if (!this.placement) return { kind: 'wait', reason: 'no table yet' };
    if (this.locked.has(actorType)) return { kind: 'wait', reason: 'actor type locked' };
    const member = this.placement.lookup(actorType, actorId);
    return member ? { kind: 'owner', member } : { kind: 'no-host' };
  }

  /** Resolves at the next LOCK, UPDATE or UNLOCK that changes anything. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Wakes every `changed()` waiter without a change, so that waiting calls look again (the sidecar is leaving). */
  wake(): void {
    this.notify();
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
