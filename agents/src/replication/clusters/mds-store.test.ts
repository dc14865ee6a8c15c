import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  encodeRecord,
  MasterDataSet,
  MDS_HEADER_BYTES,
  MDS_RECORD_HEADER_BYTES,
  readMasterDataSet,
  scanMds,
  type MdsPayload,
} from './mds-store.ts';

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-mds-'));
  file = path.join(dir, 'mds', 'c1.log');
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function payload(i: number): MdsPayload {
  return {
    time: new Date(1_700_000_000_000 + i * 1000).toISOString(),
    cluster: 'c1',
    health: i % 2 ? 'normal' : 'warning',
    consistencyTime: new Date(1_700_000_000_000 + i * 900).toISOString(),
    exposureSeconds: i / 10,
    members: [
      {
        session: `s${i}`,
        site: 'alpha',
        status: 'reporting',
        state: 'prepared',
        health: 'normal',
        consistencyTime: null,
        exposureSeconds: null,
        reportedAt: null,
      },
    ],
  };
}

async function appendMany(store: MasterDataSet, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) expect(await store.append(payload(i))).toBe(i);
}

/** A whole record whose last 20 bytes are zeroes: the file grew but the data did not land. */
function unlanded(frame: Buffer): Buffer {
  const copy = Buffer.from(frame);
  copy.fill(0, copy.length - 20);
  return copy;
}

/** Byte offsets of the records in a file. */
async function offsets(): Promise<Array<{ offset: number; length: number }>> {
  return scanMds(await fs.readFile(file)).frames;
}

describe('master data set', () => {
  it('appends durable records that a reopened store and any reader read back in order', async () => {
    const { store, recovery } = await MasterDataSet.open(file);
    expect(recovery).toEqual({ tornBytes: 0, damage: null, movedTo: null });
    await appendMany(store, 1, 5);
    // A reader that is not the writer sees every acknowledged record.
    const read = await readMasterDataSet(file);
    expect(read.damage).toBeNull();
    expect(read.records.map((r) => r.sequence)).toEqual([1, 2, 3, 4, 5]);
    expect(read.records[2]).toEqual({ sequence: 3, ...payload(3) });
    await store.close();

    const reopened = await MasterDataSet.open(file);
    expect(reopened.recovery.tornBytes).toBe(0);
    expect(reopened.store.lastSequence).toBe(5);
    expect(await reopened.store.append(payload(6))).toBe(6);
    expect((await reopened.store.read(2)).records.map((r) => r.sequence)).toEqual([5, 6]);
    await reopened.store.close();

    const bytes = await fs.readFile(file);
    expect(bytes.subarray(0, 8).toString('latin1')).toBe('TDMMDS01');
    expect(bytes.length).toBe(reopened.store.bytes);
  });

  it('ignores a torn tail (a cut record, a last record failing its checksum, zeroes) and cuts it off on reopen', async () => {
    const { store } = await MasterDataSet.open(file);
    await appendMany(store, 1, 3);
    await store.close();
    const clean = await fs.readFile(file);

    const tails: Array<[string, Buffer]> = [
      ['a record cut short', encodeRecord(4, payload(4)).subarray(0, 30)],
      ['only part of a record header', encodeRecord(4, payload(4)).subarray(0, 6)],
      ['a whole record whose last bytes never landed', unlanded(encodeRecord(4, payload(4)))],
      ['zeroes the file was extended with', Buffer.alloc(4096)],
    ];
    for (const [what, tail] of tails) {
      await fs.writeFile(file, Buffer.concat([clean, tail]));
      const read = await readMasterDataSet(file);
      expect(read.records.map((r) => r.sequence), what).toEqual([1, 2, 3]);
      expect(read.damage, what).toBeNull();

      const { store: again, recovery } = await MasterDataSet.open(file);
      expect(recovery.tornBytes, what).toBe(tail.length);
      expect(recovery.damage, what).toBeNull();
      expect((await fs.stat(file)).size, what).toBe(clean.length);
      // The next append takes the torn record's place and number.
      expect(await again.append(payload(4)), what).toBe(4);
      await again.close();
      expect((await readMasterDataSet(file)).records.map((r) => r.sequence), what).toEqual([1, 2, 3, 4]);
      await fs.writeFile(file, clean);
    }
  });

  it('detects a corrupted record by its checksum, skips it, and sets the damaged file aside on reopen', async () => {
    const { store } = await MasterDataSet.open(file);
    await appendMany(store, 1, 5);
    await store.close();
    const frames = await offsets();
    const bytes = await fs.readFile(file);
    // One bit of record 3's payload flips (bit rot): records 4 and 5 follow it.
    bytes[frames[2].offset + MDS_RECORD_HEADER_BYTES + 10] ^= 0x04;
    await fs.writeFile(file, bytes);

    const scan = scanMds(bytes);
    expect(scan.damage).toBe(`record at byte ${frames[2].offset} fails its checksum; skipped ${frames[2].length} bytes`);
    const read = await readMasterDataSet(file);
    expect(read.records.map((r) => r.sequence)).toEqual([1, 2, 4, 5]);
    expect(read.records[2]).toEqual({ sequence: 4, ...payload(4) });
    expect(read.damage).toContain('fails its checksum');

    // Small enough that the next append compacts (which reads the rewritten file by its record offsets).
    const maxBytes = MDS_HEADER_BYTES + 4.5 * frames[0].length;
    const { store: again, recovery } = await MasterDataSet.open(file, { maxBytes, keepRecords: 3 });
    expect(recovery.damage).toContain('fails its checksum');
    expect(recovery.movedTo).toMatch(/c1\.log\.damaged-\d+$/);
    expect((await fs.readFile(recovery.movedTo!)).equals(bytes)).toBe(true);
    // Numbers are kept: the gap shows the lost record, and appends go on after the last.
    expect(again.lastSequence).toBe(5);
    expect(await again.append(payload(6))).toBe(6);
    await again.close();
    const after = await readMasterDataSet(file);
    expect(after.damage).toBeNull();
    expect(after.records.map((r) => r.sequence)).toEqual([4, 5, 6]);
    expect(after.records[0]).toEqual({ sequence: 4, ...payload(4) });
    expect(again.compactions).toBe(1);
  });

  it('detects a corrupted length, sequence or header, not only payload bits', async () => {
    const { store } = await MasterDataSet.open(file);
    await appendMany(store, 1, 4);
    await store.close();
    const frames = await offsets();
    const clean = await fs.readFile(file);
    const sequences = (bytes: Buffer) => scanMds(bytes).frames.map((f) => f.sequence);

    const lengthFlip = Buffer.from(clean);
    lengthFlip[frames[1].offset] ^= 0x01; // record 2's length is one off: its checksum fails
    expect(scanMds(lengthFlip).damage).toMatch(/fails its checksum/);
    expect(sequences(lengthFlip)).toEqual([1, 3, 4]);

    // A length pointing past the end of the file looks like a torn append, but records follow: damage, not a tail to cut.
    const pastEnd = Buffer.from(clean);
    pastEnd.writeUInt32LE(1000_000, frames[1].offset);
    expect(scanMds(pastEnd).damage).toMatch(/record at byte \d+ is cut short; skipped/);
    expect(sequences(pastEnd)).toEqual([1, 3, 4]);

    const impossible = Buffer.from(clean);
    impossible.writeUInt32LE(0, frames[3].offset); // the last record: nothing verifies after it
    expect(scanMds(impossible).damage).toMatch(/impossible length 0; nothing after it verifies/);
    expect(sequences(impossible)).toEqual([1, 2, 3]);

    const sequenceFlip = Buffer.from(clean);
    sequenceFlip[frames[1].offset + 8] ^= 0x10;
    expect(scanMds(sequenceFlip).damage).toMatch(/fails its checksum/);
    expect(sequences(sequenceFlip)).toEqual([1, 3, 4]);

    // Records that each verify but go back in sequence (a block written in the wrong place) are damage too.
    const replayed = Buffer.concat([clean.subarray(0, frames[2].offset), encodeRecord(2, payload(2)), encodeRecord(3, payload(3))]);
    expect(scanMds(replayed).damage).toMatch(/has sequence 2 after 2; skipped/);
    expect(sequences(replayed)).toEqual([1, 2, 3]);

    const header = Buffer.from(clean);
    header[9] ^= 0x01;
    expect(() => scanMds(header)).toThrow(/header fails its checksum/);
    await fs.writeFile(file, header);
    const { store: fresh, recovery } = await MasterDataSet.open(file);
    expect(recovery.damage).toMatch(/header/);
    expect(fresh.lastSequence).toBe(0);
    await fresh.close();
  });

  it('compacts past its size limit: the latest records kept, numbering continued, the file rewritten atomically', async () => {
    const recordBytes = encodeRecord(10, payload(10)).length;
    const { store } = await MasterDataSet.open(file, { maxBytes: MDS_HEADER_BYTES + 20 * recordBytes, keepRecords: 5 });
    await appendMany(store, 1, 100);
    expect(store.compactions).toBeGreaterThanOrEqual(5);
    const size = (await fs.stat(file)).size;
    expect(size).toBe(store.bytes);
    expect(size).toBeLessThanOrEqual(MDS_HEADER_BYTES + 21 * recordBytes);
    const { records, damage } = await readMasterDataSet(file);
    expect(damage).toBeNull();
    const sequences = records.map((r) => r.sequence);
    expect(sequences.at(-1)).toBe(100);
    expect(sequences.length).toBeGreaterThanOrEqual(5);
    expect(sequences).toEqual(Array.from({ length: sequences.length }, (_, i) => 101 - sequences.length + i));
    expect(records.at(-1)).toEqual({ sequence: 100, ...payload(100) });
    expect(await fs.readdir(path.dirname(file))).toEqual(['c1.log']);
    await store.close();

    // A compaction that a crash interrupted leaves a temp file: it is ignored and removed.
    await fs.writeFile(`${file}.tmp`, Buffer.from('half a compaction'));
    const { store: again } = await MasterDataSet.open(file, { maxBytes: MDS_HEADER_BYTES + 20 * recordBytes, keepRecords: 5 });
    expect(again.lastSequence).toBe(100);
    expect(await again.append(payload(101))).toBe(101);
    await again.close();
    expect(await fs.readdir(path.dirname(file))).toEqual(['c1.log']);
  });

  it('serializes concurrent appends', async () => {
    const { store } = await MasterDataSet.open(file);
    const sequences = await Promise.all(Array.from({ length: 20 }, (_, i) => store.append(payload(i + 1))));
    expect(sequences).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await store.close();
    expect((await readMasterDataSet(file)).records.map((r) => r.members[0].session)).toEqual(
      Array.from({ length: 20 }, (_, i) => `s${i + 1}`),
    );
  });
});
