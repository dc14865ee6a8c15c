import { describe, expect, it } from 'vitest';
import { buildBlockStatusReply, buildReadReplyPlan } from './read-plan.ts';

const HOLE = { allocated: false };
const DATA = { allocated: true };

/** Splits a planned reply into [type, flags, offset, length] per chunk. */
function chunks(reply: Buffer): Array<[number, number, number, number]> {
  const out: Array<[number, number, number, number]> = [];
  for (let at = 0; at < reply.length; ) {
    expect(reply.readUInt32BE(at)).toBe(0x668e33ef);
    const flags = reply.readUInt16BE(at + 4);
    const type = reply.readUInt16BE(at + 6);
    const length = reply.readUInt32BE(at + 16);
    const offset = Number(reply.readBigUInt64BE(at + 20));
    out.push([type, flags, offset, type === 2 ? reply.readUInt32BE(at + 28) : length - 8]);
    at += 20 + length;
  }
  return out;
}

describe('buildReadReplyPlan', () => {
  it('lays out hole and data chunks in order, DONE on the last, with read targets after each data header', () => {
    const plan = buildReadReplyPlan(
      [{ ...HOLE, length: 100 }, { ...DATA, length: 50 }, { ...HOLE, length: 10 }],
      1000,
      160,
      false,
      0,
      7,
    );
    expect(plan).not.toBeNull();
    expect(chunks(plan!.reply)).toEqual([
      [2, 0, 1000, 100],
      [1, 0, 1100, 50],
      [2, 1, 1150, 10],
    ]);
    expect(plan!.reads).toEqual([{ offset: 1100, at: 32 + 28, length: 50 }]);
    expect(plan!.reply.readUInt32BE(12)).toBe(7);
  });

  it('answers a read that is one hole with a single OFFSET_HOLE chunk and nothing to read', () => {
    const plan = buildReadReplyPlan([{ ...HOLE, length: 4096 }], 0, 4096, true, 0, 1);
    expect(chunks(plan!.reply)).toEqual([[2, 1, 0, 4096]]);
    expect(plan!.reads).toEqual([]);
  });

  it('falls back to one data chunk when fully allocated, DF with a mix, too fragmented, or inconsistent', () => {
    expect(buildReadReplyPlan([{ ...DATA, length: 10 }], 0, 10, false, 0, 1)).toBeNull();
    expect(buildReadReplyPlan([{ ...HOLE, length: 5 }, { ...DATA, length: 5 }], 0, 10, true, 0, 1)).toBeNull();
    const many = Array.from({ length: 200 }, (_, index) => ({ allocated: index % 2 === 0, length: 1 }));
    expect(buildReadReplyPlan(many, 0, 200, false, 0, 1)).toBeNull();
    expect(buildReadReplyPlan([{ ...HOLE, length: 5 }, { ...DATA, length: 4 }], 0, 10, false, 0, 1)).toBeNull();
    expect(buildReadReplyPlan([{ ...HOLE, length: 0 }, { ...DATA, length: 10 }], 0, 10, false, 0, 1)).toBeNull();
    expect(buildReadReplyPlan([], 0, 10, false, 0, 1)).toBeNull();
  });
});

describe('buildBlockStatusReply', () => {
  function descriptors(reply: Buffer): Array<[number, number]> {
    expect(reply.readUInt16BE(6)).toBe(5);
    expect(reply.readUInt16BE(4)).toBe(1);
    expect(reply.readUInt32BE(16)).toBe(reply.length - 20);
    const out: Array<[number, number]> = [];
    for (let at = 24; at < reply.length; at += 8) out.push([reply.readUInt32BE(at), reply.readUInt32BE(at + 4)]);
    return out;
  }

  it('reports holes as HOLE|ZERO and data as 0, clipped to the requested length', () => {
    const reply = buildBlockStatusReply([{ ...DATA, length: 10 }, { ...HOLE, length: 100 }], 50, false, 0, 3);
    expect(descriptors(reply)).toEqual([
      [10, 0],
      [40, 3],
    ]);
  });

  it('sends one descriptor with REQ_ONE and a safe status-0 extent when the map is empty', () => {
    expect(descriptors(buildBlockStatusReply([{ ...HOLE, length: 10 }, { ...DATA, length: 10 }], 20, true, 0, 3))).toEqual([[10, 3]]);
    expect(descriptors(buildBlockStatusReply([], 20, false, 0, 3))).toEqual([[20, 0]]);
  });
});
