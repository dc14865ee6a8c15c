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

  /** Waits for every hold to end and keeps new ones out until the returned release is called. */
  async acquireAll(): Promise<() => void> {
    while (this.barrier) await this.barrier;
    let open!: () => void;
    this.barrier = new Promise<void>((resolve) => (open = resolve));
    while (this.held.length > 0) {
      await new Promise<void>((resolve) => this.held[0].waiters.push(resolve));
    }
    return () => {
      this.barrier = null;
      open();
    };
  }

  release(hold: RangeHold): void {
    const index = this.held.indexOf(hold);
    if (index >= 0) this.held.splice(index, 1);
    for (const wake of hold.waiters) wake();
  }
}
