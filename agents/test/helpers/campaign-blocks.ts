import { crc32 } from 'node:zlib';

/**
 * Self-describing 4 KiB blocks and the ledger of what a host was promised.
 *
 * Every block a campaign writer writes says which write it is:
 *
 * | bytes | field |
 * | --- | --- |
 * | 0..4 | magic `TFC1` |
 * | 4..8 | volume tag (u32, the campaign's id of the volume) |
 * | 8..12 | block index in the volume (u32) |
 * | 12..16 | generation (u32: the n-th write issued to this block, from 1) |
 * | 16..20 | flags (bit 0: written with FUA) |
 * | 20..24 | crc32 of bytes 24..4096 |
 * | 24..4096 | bytes from a xorshift stream seeded by (tag, block, generation) |
 *
 * so a read can tell exactly which write of that block it holds (or that it
 * holds none: zeroes, or garbage).
 */

export const BLOCK = 4096;
const MAGIC = 0x54464331; // "TFC1"

/** The bytes of write `generation` of `block` in the volume tagged `tag`. */
export function makeBlock(tag: number, block: number, generation: number, fua: boolean): Buffer {
  const data = Buffer.allocUnsafe(BLOCK);
  data.writeUInt32BE(MAGIC, 0);
  data.writeUInt32BE(tag >>> 0, 4);
  data.writeUInt32BE(block >>> 0, 8);
  data.writeUInt32BE(generation >>> 0, 12);
  data.writeUInt32BE(fua ? 1 : 0, 16);
  let x = (Math.imul(tag + 1, 0x9e3779b1) ^ Math.imul(block + 1, 0x85ebca6b) ^ Math.imul(generation + 1, 0xc2b2ae35)) >>> 0 || 1;
  for (let offset = 24; offset < BLOCK; offset += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data.writeUInt32LE(x >>> 0, offset);
  }
  data.writeUInt32BE(crc32(data.subarray(24)) >>> 0, 20);
  return data;
}

export type ParsedBlock =
  | { kind: 'zero' }
  | { kind: 'write'; tag: number; block: number; generation: number; fua: boolean }
  | { kind: 'garbage'; why: string };

/** What a block read back holds. */
export function parseBlock(data: Buffer): ParsedBlock {
  if (data.readUInt32BE(0) !== MAGIC) {
    return data.every((byte) => byte === 0) ? { kind: 'zero' } : { kind: 'garbage', why: 'no magic' };
  }
  const tag = data.readUInt32BE(4);
  const block = data.readUInt32BE(8);
  const generation = data.readUInt32BE(12);
  const fua = (data.readUInt32BE(16) & 1) === 1;
  if (crc32(data.subarray(24)) >>> 0 !== data.readUInt32BE(20)) return { kind: 'garbage', why: `checksum (claims block ${block} generation ${generation})` };
  if (!makeBlock(tag, block, generation, fua).equals(data)) return { kind: 'garbage', why: `content (claims block ${block} generation ${generation})` };
  return { kind: 'write', tag, block, generation, fua };
}

/** One block's history as the host saw it. */
interface BlockHistory {
  /** Generations issued so far (1..issued); a block never has two writes in flight. */
  issued: number;
  /** Last acknowledged generation and the H1 incarnation (kills so far) of its acknowledgement. */
  lastAcked: number;
  lastAckedIncarnation: number;
  /** Last generation acknowledged with FUA (durable whatever happened since). */
  lastFuaAcked: number;
}

export interface LedgerCheck {
  /** Blocks with at least one acknowledged write, all checked. */
  blocksChecked: number;
  /** Acknowledged writes behind those blocks. */
  ackedWrites: number;
  /** Blocks whose content is not an acceptable write (described, at most 20). */
  violations: string[];
  violationCount: number;
}

/**
 * Per volume: every write issued, acknowledged (with or without FUA) or
 * lost in flight, and what a read of the volume may therefore hold.
 *
 * The rule (NBD durability): a block must hold a write issued for it whose
 * generation is at least its floor, the newest of
 * - its last write acknowledged with FUA (durable across a kill -9), and
 * - its last acknowledged write when the agent was not killed since that
 *   acknowledgement (a running server serves what it acknowledged);
 * zeroes only when the floor is 0. A non-FUA write acknowledged before a
 * kill -9 may be lost; a write in flight at a kill may or may not be there.
 */
export class VolumeLedger {
  private readonly blocks = new Map<number, BlockHistory>();
  private readonly busy = new Set<number>();
  /** kill -9s of the agent holding this volume so far. */
  incarnation = 0;
  acked = 0;
  ackedFua = 0;
  unknown = 0;

  constructor(
    readonly tag: number,
    readonly name: string,
    readonly blockCount: number,
  ) {}

  isBusy(block: number): boolean {
    return this.busy.has(block);
  }

  /** Takes the next generation of `block` (which must not be in flight) and its bytes. */
  issue(block: number, fua: boolean): { generation: number; data: Buffer } {
    if (this.busy.has(block)) throw new Error(`block ${block} of ${this.name} already has a write in flight`);
    this.busy.add(block);
    const history = this.history(block);
    history.issued++;
    return { generation: history.issued, data: makeBlock(this.tag, block, history.issued, fua) };
  }

  /** The server acknowledged the write (success). */
  acknowledged(block: number, generation: number, fua: boolean): void {
    this.busy.delete(block);
    const history = this.history(block);
    history.lastAcked = generation;
    history.lastAckedIncarnation = this.incarnation;
    if (fua) history.lastFuaAcked = generation;
    this.acked++;
    if (fua) this.ackedFua++;
  }

  /** No acknowledgement (connection lost, or an error answer): the write may or may not be there. */
  unacknowledged(block: number): void {
    this.busy.delete(block);
    this.unknown++;
  }

  /** The agent holding the volume was killed (-9): non-FUA acknowledgements so far are no longer promises. */
  killed(): void {
    this.incarnation++;
  }

  /** Checks a full image of the volume (H1's, read after the writers stopped). */
  check(image: Buffer): LedgerCheck {
    const result: LedgerCheck = { blocksChecked: 0, ackedWrites: 0, violations: [], violationCount: 0 };
    const report = (text: string) => {
      result.violationCount++;
      if (result.violations.length < 20) result.violations.push(`${this.name} block ${text}`);
    };
    for (let block = 0; block < this.blockCount; block++) {
      const history = this.blocks.get(block);
      const parsed = parseBlock(image.subarray(block * BLOCK, (block + 1) * BLOCK));
      if (!history) {
        if (parsed.kind !== 'zero') report(`${block}: never written, holds ${describeParsed(parsed)}`);
        continue;
      }
      if (history.lastAcked > 0) result.blocksChecked++;
      const floor = Math.max(history.lastFuaAcked, history.lastAckedIncarnation === this.incarnation ? history.lastAcked : 0);
      const what = `${block} (issued ${history.issued}, last acked ${history.lastAcked}${history.lastAckedIncarnation !== this.incarnation ? ' before a kill' : ''}, last FUA acked ${history.lastFuaAcked}): holds ${describeParsed(parsed)}`;
      if (parsed.kind === 'zero') {
        if (floor > 0) report(`${what}, expected generation >= ${floor}`);
      } else if (parsed.kind === 'garbage') {
        report(what);
      } else if (parsed.tag !== this.tag || parsed.block !== block) {
        report(`${what}: written for another place (tag ${parsed.tag}, block ${parsed.block})`);
      } else if (parsed.generation < floor || parsed.generation > history.issued) {
        report(`${what}, expected ${floor}..${history.issued}`);
      }
    }
    result.ackedWrites = this.acked;
    return result;
  }

  /** What the ledger knows of one block, in words. */
  describe(block: number): string {
    const history = this.blocks.get(block);
    if (!history) return 'ledger: never written';
    const stale = history.lastAckedIncarnation !== this.incarnation ? ' (before a kill)' : '';
    return `ledger: issued ${history.issued}, last acked ${history.lastAcked}${stale}, last FUA acked ${history.lastFuaAcked}`;
  }

  private history(block: number): BlockHistory {
    let history = this.blocks.get(block);
    if (!history) {
      history = { issued: 0, lastAcked: 0, lastAckedIncarnation: 0, lastFuaAcked: 0 };
      this.blocks.set(block, history);
    }
    return history;
  }
}

export function describeParsed(parsed: ParsedBlock): string {
  switch (parsed.kind) {
    case 'zero':
      return 'zeroes';
    case 'garbage':
      return `garbage (${parsed.why})`;
    case 'write':
      return `generation ${parsed.generation}${parsed.fua ? ' (FUA)' : ''}`;
  }
}
