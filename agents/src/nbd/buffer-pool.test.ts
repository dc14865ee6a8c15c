import { describe, expect, it } from 'vitest';
import { BufferPool } from './buffer-pool.ts';

describe('BufferPool', () => {
  it('hands back exactly the length asked for and reuses a given-back buffer of the same size class', () => {
    const pool = new BufferPool();
    const a = pool.take(1024 * 1024 + 28);
    expect(a.length).toBe(1024 * 1024 + 28);
    a[0] = 0x5a;
    pool.give(a);
    expect(pool.bytesPooled).toBe(1024 * 1024 + 64 * 1024);
    const b = pool.take(1024 * 1024 + 16);
    expect(b.length).toBe(1024 * 1024 + 16);
    expect(b.buffer).toBe(a.buffer);
    expect(b[0]).toBe(0x5a);
    expect(pool.bytesPooled).toBe(0);
  });

  it('keeps size classes apart and at most maxBytes in all', () => {
    const pool = new BufferPool(96 * 1024);
    const small = pool.take(4000);
    const large = pool.take(100 * 1024);
    pool.give(small);
    pool.give(large); // 128 KiB class: over the limit, dropped
    expect(pool.bytesPooled).toBe(4096);
    expect(pool.take(4096).buffer).toBe(small.buffer);
    expect(pool.take(100 * 1024).buffer).not.toBe(large.buffer);
  });

  it('never pools a buffer it did not make (a slice of Node\'s shared pool)', () => {
    const pool = new BufferPool();
    const foreign = Buffer.from('not from the pool');
    pool.give(foreign);
    expect(pool.bytesPooled).toBe(0);
  });

  it('ignores a second give of the same buffer (two takers must never share one)', () => {
    const pool = new BufferPool();
    const a = pool.take(8192);
    pool.give(a);
    pool.give(a);
    expect(pool.bytesPooled).toBe(8192);
    expect(pool.take(8192).buffer).toBe(a.buffer);
    expect(pool.take(8192).buffer).not.toBe(a.buffer);
  });
});
