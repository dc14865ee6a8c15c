import { describe, expect, it } from 'vitest';
import { applyCdp, type CdpOp } from './cdp-meta.ts';
import { parseCheckpoint, serializeCheckpoint } from './checkpoint.ts';
import { MetadataState } from './metadata.ts';
import { applyRecord, decodeSegment, encodeRecord, encodedSize, RecordType, segmentHeader, type WalRecord } from './wal.ts';

const ops: CdpOp[] = [
  { op: 'create', journal: 3, volumes: [1, 2] },
  { op: 'write', journal: 3, volume: 1, timeMs: 1_700_000_000_123, runs: [{ track: 2 ** 40 + 5, count: 3, extent: 77 }, { track: 9, count: 1, extent: 4 }] },
  { op: 'trim', journal: 3, volume: 2, track: 10, count: 4096, timeMs: 5 },
  { op: 'point', journal: 3, timeMs: 6, name: null },
  { op: 'point', journal: 3, timeMs: 7, name: 'vor dem Update ✓' },
  { op: 'distribute', journal: 3, upto: 2 ** 45 },
  { op: 'release', journal: 3, floor: 12 },
  { op: 'consolidate', journal: 3, ranges: [{ from: 4, to: 9 }, { from: 9, to: 2 ** 41 }] },
  { op: 'delete', journal: 3 },
];

describe('CDP records in the WAL', () => {
  it('decode to what was encoded, and a torn one ends the replay', () => {
    const records: WalRecord[] = ops.map((op) => ({ type: RecordType.Cdp, op }));
    const size = records.reduce((sum, record) => sum + encodedSize(record), 0);
    const body = Buffer.alloc(size);
    let offset = 0;
    for (const record of records) offset = encodeRecord(record, body, offset);
    expect(offset).toBe(size);
    const file = Buffer.concat([segmentHeader(1), body]);
    expect(decodeSegment(file).records).toEqual(records);
    const torn = decodeSegment(file.subarray(0, file.length - 3));
    expect(torn.records).toEqual(records.slice(0, -1));
    expect(torn.tornBytes).toBeGreaterThan(0);
  });
});

describe('the checkpoint with journals', () => {
  it('round-trips the journal state and the references it holds', () => {
    const state = new MetadataState(4096);
    state.createVolume(1, 64 * 4096);
    applyRecord(state, { type: RecordType.MapTrack, volume: 1, track: 0, extent: 10 });
    applyCdp(state, { op: 'create', journal: 1, volumes: [1] });
    applyCdp(state, { op: 'point', journal: 1, timeMs: 1, name: 'start' });
    applyCdp(state, { op: 'write', journal: 1, volume: 1, timeMs: 2, runs: [{ track: 0, count: 2, extent: 20 }] });
    applyCdp(state, { op: 'trim', journal: 1, volume: 1, track: 0, count: 64, timeMs: 3 });
    applyCdp(state, { op: 'distribute', journal: 1, upto: 1 });
    applyCdp(state, { op: 'point', journal: 1, timeMs: 4, name: null });
    const bytes = serializeCheckpoint(state, 9);
    expect(bytes.readUInt32LE(8), 'format 3: with journals').toBe(3);
    const loaded = parseCheckpoint(bytes).state;
    const a = state.journals.get(1)!;
    const b = loaded.journals.get(1)!;
    expect({ ...b, byTrack: undefined }).toEqual({ ...a, byTrack: undefined });
    expect([...b.byTrack.get(1)!.entries()]).toEqual([...a.byTrack.get(1)!.entries()]);
    expect([...loaded.refcounts.subarray(0, 32)]).toEqual([...state.refcounts.subarray(0, 32)]);
    // Extent 10 (the replica's before) is undo now; 20 and 21 are the replica's (the trim after them is not distributed).
    expect([loaded.refcounts[10], loaded.refcounts[20], loaded.refcounts[21]]).toEqual([1, 1, 1]);
  });

  it('a pool without journals writes format 2 (an agent from before CDP reads it); one with a journal writes format 3', () => {
    const state = new MetadataState(4096);
    state.createVolume(1, 64 * 4096);
    const v2 = serializeCheckpoint(state, 2);
    expect(v2.readUInt32LE(8)).toBe(2);
    const loaded = parseCheckpoint(v2);
    expect(loaded.state.volumes.get(1)!.trackCount).toBe(64);
    expect(loaded.state.journals.size).toBe(0);
  });
});
