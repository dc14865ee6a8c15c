import { describe, expect, it } from 'vitest';
import type { VolumeInfo } from '@tandem/contract';
import { orderByLineage } from './lineage.ts';

let id = 0;
const volume = (name: string, source: string | null = null): VolumeInfo => ({
  id: ++id,
  name,
  kind: source ? 'snapshot' : 'volume',
  source,
  sizeBytes: 4096,
  trackSize: 4096,
  trackCount: 1,
  allocatedBytes: 0,
  sharedBytes: 0,
  exclusiveBytes: 0,
  snapshots: [],
  readOnly: false,
  createdAt: `2026-01-01T00:00:${String(id).padStart(2, '0')}.000Z`,
});

describe('orderByLineage', () => {
  it('puts each snapshot under its source, snapshots of snapshots deeper', () => {
    const rows = orderByLineage([volume('b'), volume('a-snap', 'a'), volume('a'), volume('a-snap-snap', 'a-snap')]);
    expect(rows.map((row) => [row.volume.name, row.depth])).toEqual([
      ['b', 0],
      ['a', 0],
      ['a-snap', 1],
      ['a-snap-snap', 2],
    ]);
  });

  it('shows a snapshot whose source is gone at the top level', () => {
    expect(orderByLineage([volume('orphan', 'deleted')]).map((row) => row.depth)).toEqual([0]);
  });
});
