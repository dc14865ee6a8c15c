/**
 * Reuses the large buffers of the data path: WRITE payloads and READ
 * replies. A fresh 1 MiB buffer per request is memory the kernel must fault
 * in on first touch (costly in a VM) and external memory that drives V8
 * into major collections: under sequential 1 MiB reads a third of the
 * agent's CPU went to concurrent marking and sweeping, under writes 10-20 %
 * to page faults on fresh socket buffers (perf, issue 15).
 *
 * Buffers are kept by size class (4 KiB steps up to 64 KiB, 64 KiB steps
 * above), so a class serves every request size that rounds to it; at most
 * `maxBytes` are kept in all.
 */
export class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  /** Backings handed out by take and not yet given back: only these may come back (once). */
  private readonly lent = new WeakSet<ArrayBuffer>();
  private pooledBytes = 0;

  constructor(private readonly maxBytes = 64 * 1024 * 1024) {}

  /** A buffer of exactly `length` bytes (uninitialized); give it back once nothing refers to it. */
  take(length: number): Buffer {
    const size = sizeClass(length);
    let backing = this.free.get(size)?.pop();
    if (backing) this.pooledBytes -= size;
    else backing = Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer;
    this.lent.add(backing);
    return Buffer.from(backing, 0, length);
  }

  /** Returns a buffer from `take` (any view of it) to the pool; anything else, or a second give, is ignored. */
  give(buffer: Buffer): void {
    const backing = buffer.buffer as ArrayBuffer;
    if (!this.lent.delete(backing)) return;
    const size = backing.byteLength;
    if (this.pooledBytes + size > this.maxBytes) return;
    let list = this.free.get(size);
    if (!list) {
      list = [];
      this.free.set(size, list);
    }
    list.push(backing);
    this.pooledBytes += size;
  }

  get bytesPooled(): number {
    return this.pooledBytes;
  }
}

const SMALL_STEP = 4096;
const LARGE_STEP = 64 * 1024;

function sizeClass(length: number): number {
  const step = length <= LARGE_STEP ? SMALL_STEP : LARGE_STEP;
  return Math.max(step, Math.ceil(length / step) * step);
}

/** The data path's shared pool (one event loop, so one pool serves every connection). */
export const dataBuffers = new BufferPool();
