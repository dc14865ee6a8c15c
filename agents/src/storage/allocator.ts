/**
 * Hands out free extents, preferring runs of consecutive ones so that
 * sequential writes become one large pwrite. A byte per extent marks it
 * free; a next-fit cursor keeps the search short. Capacity is logical (the
 * extent files grow when written), so running out just raises it.
 */
export class ExtentAllocator {
  private free: Uint8Array;
  private capacity: number;
  private freeCount: number;
  private cursor = 0;

  /** `used(e)` tells which extents of the first `capacity` are referenced. */
  constructor(capacity: number, used: (extent: number) => boolean) {
    this.capacity = Math.max(capacity, 1024);
    this.free = new Uint8Array(this.capacity);
    let count = 0;
    for (let e = 0; e < this.capacity; e++) {
      if (!used(e)) {
        this.free[e] = 1;
        count++;
      }
    }
    this.freeCount = count;
  }

  get freeExtents(): number {
    return this.freeCount;
  }

  get capacityExtents(): number {
    return this.capacity;
  }

  /**
   * Allocates up to `want` consecutive extents (at least one, never across
   * `limit(start)` extents). Returns the first extent and the run length.
   */
  allocateRun(want: number, limit: (start: number) => number): { start: number; count: number } {
    if (this.freeCount === 0) this.grow(Math.max(want, this.capacity >> 2));
    let e = this.findFree(this.cursor);
    if (e < 0) e = this.findFree(0);
    const max = Math.min(want, limit(e));
    let count = 1;
    while (count < max && e + count < this.capacity && this.free[e + count] === 1) count++;
    if (count < max && e + count === this.capacity) {
      // The run reached the end of the capacity: grow and extend it.
      this.grow(Math.max(want, this.capacity >> 2));
      while (count < max && this.free[e + count] === 1) count++;
    }
    for (let i = 0; i < count; i++) this.free[e + i] = 0;
    this.freeCount -= count;
    this.cursor = e + count;
    return { start: e, count };
  }

  /**
   * Searches from the first extent again: after the pool's file system ran
   * full, extents freed earlier (inside files already written) are used
   * before new ones past the files' ends, which would need more room.
   */
  rewind(): void {
    this.cursor = 0;
  }

  release(extent: number): void {
    if (extent >= this.capacity) this.grow(extent + 1 - this.capacity);
    if (this.free[extent] === 1) throw new Error(`allocator: extent ${extent} freed twice`);
    this.free[extent] = 1;
    this.freeCount++;
  }

  private findFree(from: number): number {
    const index = this.free.indexOf(1, from);
    return index;
  }

  private grow(extra: number): void {
    const capacity = this.capacity + Math.max(extra, 1024);
    const grown = new Uint8Array(capacity);
    grown.set(this.free);
    grown.fill(1, this.capacity);
    this.freeCount += capacity - this.capacity;
    this.capacity = capacity;
    this.free = grown;
  }
}
