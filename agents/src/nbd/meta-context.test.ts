import { describe, expect, it } from 'vitest';
import { parseMetaContextRequest, selectsBaseAllocation } from './meta-context.ts';

function request(name: string, queries: string[]): Buffer {
  const parts = [u32(Buffer.byteLength(name)), Buffer.from(name), u32(queries.length)];
  for (const query of queries) parts.push(u32(Buffer.byteLength(query)), Buffer.from(query));
  return Buffer.concat(parts);
}

function u32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(value);
  return buffer;
}

describe('parseMetaContextRequest', () => {
  it('reads the export name and every query', () => {
    expect(parseMetaContextRequest(request('vol', ['base:allocation', 'qemu:x']))).toEqual({
      ok: true,
      request: { exportName: 'vol', queries: ['base:allocation', 'qemu:x'] },
    });
  });

  it('rejects lengths that run past the data, trailing bytes and too many queries', () => {
    const good = request('vol', ['base:allocation']);
    expect(parseMetaContextRequest(good.subarray(0, good.length - 1))).toMatchObject({ ok: false, tooBig: false });
    expect(parseMetaContextRequest(Buffer.concat([good, Buffer.from([0])]))).toMatchObject({ ok: false, tooBig: false });
    expect(parseMetaContextRequest(Buffer.from([0, 0]))).toMatchObject({ ok: false, tooBig: false });
    const huge = Buffer.concat([u32(3), Buffer.from('vol'), u32(0xffffffff)]);
    expect(parseMetaContextRequest(huge)).toMatchObject({ ok: false, tooBig: true });
  });
});

describe('selectsBaseAllocation', () => {
  it('lists base:allocation for no query, "base:" or its name; ignores other namespaces', () => {
    expect(selectsBaseAllocation([], true)).toBe(true);
    expect(selectsBaseAllocation(['base:'], true)).toBe(true);
    expect(selectsBaseAllocation(['base:allocation'], true)).toBe(true);
    expect(selectsBaseAllocation(['qemu:dirty-bitmap:a'], true)).toBe(false);
  });

  it('selects only on the exact name, never for no query or the wildcard', () => {
    expect(selectsBaseAllocation(['base:allocation'], false)).toBe(true);
    expect(selectsBaseAllocation([], false)).toBe(false);
    expect(selectsBaseAllocation(['base:'], false)).toBe(false);
    expect(selectsBaseAllocation(['base:allocations'], false)).toBe(false);
  });
});
