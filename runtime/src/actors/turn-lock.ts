/**
 * One turn at a time per actor. Pure (promises only): callers queue in arrival order and run one after the other;
 * a call that carries the reentrancy id of the running turn joins it instead of queueing (Dapr's actor
 * reentrancy), up to a stack depth limit.
 */

/** A reentrant call would nest deeper than the limit. */
export class StackDepthError extends Error {
  override readonly name = 'StackDepthError';
  readonly limit: number;

  constructor(limit: number) {
    super(`maximum actor call stack depth of ${limit} exceeded`);
    this.limit = limit;
  }
}

/** The right to run: release it exactly once when the turn (or the reentrant call) is over. */
export interface Turn {
  /** True when this call joined a running turn through its reentrancy id. */
  readonly reentrant: boolean;
  release(): void;
}

interface Waiter {
  reentrancyId: string | undefined;
  grant: () => void;
}

/** The turn lock of one actor activation. */
export class TurnLock {
  private readonly maxDepth: number;
  private holder: { reentrancyId: string | undefined; depth: number } | undefined;
  private readonly waiters: Waiter[] = [];

  /** `maxDepth`: how deep reentrant calls may nest (Dapr's `maxStackDepth`, 32 by default). */
  constructor(maxDepth = 32) {
    this.maxDepth = maxDepth;
  }

  /** True while a turn runs. */
  get busy(): boolean {
    return this.holder !== undefined;
  }

  /** Calls waiting for a turn. */
  get queued(): number {
    return this.waiters.length;
  }

  /**
   * Resolves when the caller may run. With a `reentrancyId` equal to the running turn's, resolves at once as a
   * reentrant call (or throws `StackDepthError` past the limit). Rejects with `signal`'s reason if it aborts
   * while waiting.
   */
  acquire(reentrancyId: string | undefined, signal?: AbortSignal): Promise<Turn> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const holder = this.holder;
    if (!holder) {
      this.holder = { reentrancyId, depth: 1 };
      return Promise.resolve(this.turn(false));
    }
    if (reentrancyId !== undefined && holder.reentrancyId === reentrancyId) {
      if (holder.depth >= this.maxDepth) return Promise.reject(new StackDepthError(this.maxDepth));
      holder.depth++;
      return Promise.resolve(this.turn(true));
    }
    return new Promise<Turn>((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.waiters.indexOf(waiter);
        if (index !== -1) this.waiters.splice(index, 1);
        reject(signal?.reason as Error);
      };
      const waiter: Waiter = {
        reentrancyId,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.turn(false));
        },
      };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private turn(reentrant: boolean): Turn {
    let released = false;
    return {
      reentrant,
      release: () => {
        if (released) return;
        released = true;
        this.release();
      },
    };
  }

  private release(): void {
    const holder = this.holder;
    if (!holder) return;
    if (--holder.depth > 0) return;
    const next = this.waiters.shift();
    if (!next) {
      this.holder = undefined;
      return;
    }
    this.holder = { reentrancyId: next.reentrancyId, depth: 1 };
    next.grant();
  }
}
