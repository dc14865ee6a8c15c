import { describe, expect, it } from 'vitest';
import { SlabPool } from './slabs.ts';

describe('SlabPool', () => {
  it('reuses a slab only once it is no longer filled and every group holding it shipped', () => {
    const pool = new SlabPool(1024, 2);
    const slab = pool.take();
    slab.refs += 2; // two groups have chunks in it
    pool.release([slab]); // the first group shipped
    pool.doneFilling(slab); // the slab is full
    expect(pool.freeSlabs).toBe(0); // the second group still holds it
    expect(pool.take().buffer).not.toBe(slab.buffer);
    pool.release([slab]);
    expect(pool.freeSlabs).toBe(1);
    const again = pool.take();
    expect(again.buffer).toBe(slab.buffer);
    expect([again.used, again.refs]).toEqual([0, 1]);
  });

  it('keeps at most `keep` free slabs', () => {
    const pool = new SlabPool(64, 2);
    const slabs = [pool.take(), pool.take(), pool.take()];
    for (const slab of slabs) pool.doneFilling(slab);
    expect(pool.freeSlabs).toBe(2);
  });
});
