/**
 * Exclusive locks on track ranges of one volume. Writes and trims lock the
 * tracks they touch, so a read-modify-write of a track never races another
 * write to it; snapshots lock the whole volume, which also drains writes in
 * flight. A whole-volume request blocks new acquisitions while it waits, so
 * it is not starved by a stream of small writes.
 */
export interface RangeHold {
  start: number;
  end: number;
  waiters: Array<() => void>;
}

export class RangeLock {
  private readonly held: RangeHold[] = [];
  private barrier: Promise<void> | null = null;

  /** Takes the range at once if nothing overlaps it, else returns null. */
  tryAcquire(start: number, end: number): RangeHold | null {
    if (this.barrier) return null;
    for (const hold of this.held) if (hold.start < end && start < hold.end) return null;
    const hold: RangeHold = { start, end, waiters: [] };
    this.held.push(hold);
    return hold;
  }

  /** Whether tryAcquire would take the range now (nothing is taken). */
  isFree(start: number, end: number): boolean {
    if (this.barrier) return false;
    for (const hold of this.held) if (hold.start < end && start < hold.end) return false;
    return true;
  }

  async acquire(start: number, end: number): Promise<RangeHold> {
    for (;;) {
      while (this.barrier) await this.barrier;
      const conflict = this.held.find((hold) => hold.start < end && start < hold.end);
      if (!conflict) {
        const hold: RangeHold = { start, end, waiters: [] };
        this.held.push(hold);
        return hold;
      }
      await new Promise<void>((resolve) => conflict.waiters.push(resolve));
    }
  }

  /**
   * Waits for every hold to end and keeps new ones out until the returned
   * release is called. With a signal, an abort before that gives up: new
   * holds are let in again and the promise rejects with the signal's reason.
   */
  async acquireAll(signal?: AbortSignal): Promise<() => void> {
    const aborted = () => {
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
    };
    aborted();
    while (this.barrier) {
      await untilAborted(this.barrier, signal);
      aborted();
    }
    let open!: () => void;
    const barrier = new Promise<void>((resolve) => (open = resolve));
    this.barrier = barrier;
    const giveUp = () => {
      if (this.barrier === barrier) this.barrier = null;
      open();
    };
    while (this.held.length > 0) {
      await untilAborted(new Promise<void>((resolve) => this.held[0].waiters.push(resolve)), signal);
      if (signal?.aborted) {
        giveUp();
        aborted();
      }
    }
    return giveUp;
  }

  release(hold: RangeHold): void {
    const index = this.held.indexOf(hold);
    if (index >= 0) this.held.splice(index, 1);
    for (const wake of hold.waiters) wake();
  }
}

/** Settles when `promise` does or when the signal aborts, whichever is first. */
function untilAborted(promise: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return promise;
  return new Promise<void>((resolve) => {
    const onAbort = () => resolve();
    signal.addEventListener('abort', onAbort, { once: true });
    void promise.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}
