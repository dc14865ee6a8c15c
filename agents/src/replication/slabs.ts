/**
 * The memory an async session's host writes are copied into before they
 * ship (NBD reuses its buffers, so the shipper keeps a copy). Writes go into
 * slabs front to back; a slab is used again once every group holding a
 * piece of it has shipped and no longer fills. Fresh large buffers are what
 * made sequential writes expensive: each one is new memory (a page fault per
 * 4 KiB on first touch) and garbage soon after.
 *
 * A slab is reused only after the request carrying it was answered: the
 * other agent had received every byte, so no socket holds it any more. A
 * group that fails to ship never gives its slabs back; they are left to the
 * garbage collector.
 */
export interface Slab {
  readonly buffer: Buffer;
  /** Bytes filled from the front. */
  used: number;
  /** Groups holding a piece of it, plus one while it is the slab being filled. */
  refs: number;
}

export class SlabPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly slabBytes: number,
    /** Free slabs kept for reuse at most (the rest go to the garbage collector). */
    private readonly keep: number,
  ) {}

  /** A slab to fill (counted as filled until `doneFilling`). */
  take(): Slab {
    return { buffer: this.free.pop() ?? Buffer.allocUnsafeSlow(this.slabBytes), used: 0, refs: 1 };
  }

  /** The slab is full, or filling moves elsewhere. */
  doneFilling(slab: Slab): void {
    this.drop(slab);
  }

  /** A group shipped (answered by the other agent): its slabs are free once nothing else holds them. */
  release(slabs: readonly Slab[]): void {
    for (const slab of slabs) this.drop(slab);
  }

  get freeSlabs(): number {
    return this.free.length;
  }

  private drop(slab: Slab): void {
    slab.refs--;
    if (slab.refs === 0 && this.free.length < this.keep) this.free.push(slab.buffer);
  }
}
