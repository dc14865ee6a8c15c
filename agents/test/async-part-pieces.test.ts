import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { GroupEntry } from '../src/replication/async-groups.ts';
import { MAX_PIECE_BYTES, splitPart } from '../src/replication/parts.ts';
import { MAX_FRAME_BYTES } from '../src/replication/link/frames.ts';

const MiB = 1024 * 1024;

/** A part's entries over `payload`: each write's data where dataOffset says. */
function write(pair: string, offset: number, length: number, dataOffset: number): GroupEntry {
  return { pair, kind: 'write', offset, length, dataOffset };
}

/** A piece's data as one buffer (what the secondary receives: the frame's payload). */
const bytesOf = (payload: Buffer | Buffer[]) => (Buffer.isBuffer(payload) ? payload : Buffer.concat(payload));

/** What the secondary would write: (pair, offset, data) per entry with data, in order. */
function replay(pieces: Array<{ entries: GroupEntry[]; payload: Buffer | Buffer[] }>): Change[] {
  return pieces.flatMap(({ entries, payload }) => {
    const piece = { payload: bytesOf(payload) };
    return entries.map((entry): Change => [
      entry.pair,
      entry.kind,
      entry.offset,
      entry.kind === 'write' || (entry.kind === 'marker' && entry.length > 0) ? piece.payload.subarray(entry.dataOffset, entry.dataOffset + entry.length) : null,
    ]);
  });
}

/** The bytes of a piece's payload. */
const lengthOf = (payload: Buffer[]) => payload.reduce((sum, chunk) => sum + chunk.length, 0);

type Change = [string, string, number, Buffer | null];

/** Whether two replays are the same changes in the same order (data compared with Buffer.equals: fast on MiBs). */
function same(x: Change[], y: Change[]): boolean {
  return x.length === y.length && x.every((change, i) => {
    const other = y[i];
    const data = change[3] === null || other[3] === null ? change[3] === other[3] : change[3].equals(other[3]);
    return change[0] === other[0] && change[1] === other[1] && change[2] === other[2] && data;
  });
}

describe('multi-primary parts in pieces (splitPart)', () => {
  it('splits at entry boundaries into pieces of at most 16 MiB of data, rebased, in order; a 32 MiB entry goes alone', () => {
    const payload = randomBytes(100 * MiB);
    const entries: GroupEntry[] = [];
    let at = 0;
    // 40 writes of 1 MiB, a trim, a 32 MiB write (an NBD request at most), a marker with data, 20 more MiB.
    for (let i = 0; i < 40; i++, at += MiB) entries.push(write('p', i * MiB, MiB, at));
    entries.push({ pair: 'p', kind: 'trim', offset: 0, length: 64 * MiB, dataOffset: at });
    entries.push(write('q', 0, 32 * MiB, at));
    at += 32 * MiB;
    entries.push({ pair: 'p', kind: 'marker', offset: 0, length: 4096, dataOffset: at, marker: { method: 'flash.mirror', params: {} } });
    at += 4096;
    for (let i = 0; i < 20; i++, at += MiB) entries.push(write('p', i * MiB, MiB, at));

    const pieces = splitPart(entries, payload);
    for (const piece of pieces) {
      expect(lengthOf(piece.payload)).toBeLessThanOrEqual(Math.max(MAX_PIECE_BYTES, 32 * MiB));
      expect(lengthOf(piece.payload)).toBeLessThanOrEqual(MAX_FRAME_BYTES / 2);
      expect(piece.entries.length).toBeGreaterThan(0);
    }
    expect(pieces.find((piece) => piece.entries.some((entry) => entry.length === 32 * MiB))!.entries).toHaveLength(1);
    expect(pieces.length).toBeGreaterThanOrEqual(6);
    // The same changes, in the same order, with the same data.
    expect(same(replay(pieces), replay([{ entries, payload }]))).toBe(true);
  });

  it('takes a subset of a part\'s entries (H2->H1: one H1 agent\'s share) and an empty part as one empty piece', () => {
    const payload = randomBytes(40 * MiB);
    const entries = Array.from({ length: 40 }, (_, i) => write(i % 2 === 0 ? 'a' : 'b', i * MiB, MiB, i * MiB));
    const share = entries.filter((entry) => entry.pair === 'b');
    const pieces = splitPart(share, payload);
    expect(pieces).toHaveLength(2); // 20 MiB of b: 16 + 4
    expect(same(replay(pieces), replay([{ entries: share, payload }]))).toBe(true);
    expect(splitPart([], Buffer.alloc(0))).toEqual([{ entries: [], payload: [] }]);
    // Contiguous data (a whole part as the shipper cuts it) is a view of the payload, not a copy.
    const small = splitPart(entries.slice(0, 8), payload);
    expect(small).toHaveLength(1);
    expect(small[0].payload).toHaveLength(1);
    expect(small[0].payload[0].buffer).toBe(payload.buffer);
  });

  it('takes the payload as chunks (a shipper\'s slabs) cut anywhere, even inside an entry: the same pieces\' data, views of the chunks', () => {
    const payload = randomBytes(48 * MiB);
    const entries: GroupEntry[] = [];
    let at = 0;
    for (let i = 0; at < payload.length; i++) {
      const length = Math.min(payload.length - at, 4096 * (1 + ((i * 7919) % 300)));
      entries.push(write(i % 3 === 0 ? 'a' : 'b', i * MiB, length, at));
      at += length;
    }
    // Chunks of uneven sizes whose edges fall inside entries.
    const chunks: Buffer[] = [];
    for (let start = 0, i = 0; start < payload.length; i++) {
      const size = Math.min(payload.length - start, 1000 + ((i * 104_729) % (3 * MiB)));
      chunks.push(payload.subarray(start, start + size));
      start += size;
    }
    const whole = splitPart(entries, payload);
    const chunked = splitPart(entries, chunks);
    expect(chunked.map((piece) => piece.entries)).toEqual(whole.map((piece) => piece.entries));
    expect(same(replay(chunked), replay([{ entries, payload }]))).toBe(true);
    for (const piece of chunked) for (const view of piece.payload) expect(view.buffer).toBe(payload.buffer);
    // One H1 agent's share of the chunks.
    const share = entries.filter((entry) => entry.pair === 'a');
    expect(same(replay(splitPart(share, chunks)), replay([{ entries: share, payload }]))).toBe(true);
  });
});
