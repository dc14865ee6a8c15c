import fs from 'node:fs/promises';
import { crc32c } from '@node-rs/crc32';
import { cdpPayloadLength, decodeCdp, encodeCdp } from './cdp-codec.ts';
import { applyCdp, type CdpOp } from './cdp-meta.ts';
import type { MetadataState } from './metadata.ts';

/**
 * The metadata write-ahead log. Each record is
 *   u32 payloadLength | u32 crc32c(payload) | payload
 * and the payload is a type byte then little-endian fields (track numbers
 * and sizes take 6 bytes: volumes go up to 64 TiB of 4 KiB tracks).
 *
 * A segment file starts with a 16-byte header (magic + generation). Replay
 * stops at the first record that is cut short or fails its checksum: that is
 * the torn tail of the last group commit before a crash.
 */

export const WAL_MAGIC = Buffer.from('TDMWAL01', 'latin1');
export const WAL_HEADER_BYTES = 16;
const RECORD_HEADER_BYTES = 8;

export enum RecordType {
  CreateVolume = 1,
  ResizeVolume = 2,
  DeleteVolume = 3,
  Snapshot = 4,
  MapTrack = 5,
  UnmapTracks = 6,
  CreateBitmap = 7,
  DeleteBitmap = 8,
  SetBits = 9,
  ClearBits = 10,
  MergeBitmap = 11,
  /** Flash copy: clones of track ranges and bitmap changes applied as one atomic record. */
  Flash = 12,
  /** A change of a CDP journal (cdp-meta.ts; payload in cdp-codec.ts). */
  Cdp = 13,
}

/** One step of a Flash record (see MetadataState.cloneTracks). */
export type FlashOp =
  | { op: 'clone'; source: number; target: number; track: number; count: number }
  | { op: 'create-bitmap'; bitmap: number; volume: number }
  | { op: 'clear-bitmap'; bitmap: number };

const FLASH_OP_BYTES = { clone: 1 + 4 + 4 + 6 + 6, 'create-bitmap': 1 + 4 + 4, 'clear-bitmap': 1 + 4 } as const;
const FLASH_OP_CODES = { clone: 1, 'create-bitmap': 2, 'clear-bitmap': 3 } as const;

export type WalRecord =
  | { type: RecordType.CreateVolume; volume: number; sizeBytes: number }
  | { type: RecordType.ResizeVolume; volume: number; sizeBytes: number }
  | { type: RecordType.DeleteVolume; volume: number }
  | { type: RecordType.Snapshot; source: number; target: number }
  | { type: RecordType.MapTrack; volume: number; track: number; extent: number }
  | { type: RecordType.UnmapTracks; volume: number; track: number; count: number }
  | { type: RecordType.CreateBitmap; bitmap: number; volume: number; allSet: boolean }
  | { type: RecordType.DeleteBitmap; bitmap: number }
  | { type: RecordType.SetBits; bitmap: number; track: number; count: number }
  | { type: RecordType.ClearBits; bitmap: number; track: number; count: number }
  | { type: RecordType.MergeBitmap; bitmap: number; source: number }
  | { type: RecordType.Flash; ops: FlashOp[] }
  | { type: RecordType.Cdp; op: CdpOp };

function payloadLength(record: WalRecord): number {
  switch (record.type) {
    case RecordType.CreateVolume:
    case RecordType.ResizeVolume:
      return 1 + 4 + 6;
    case RecordType.DeleteVolume:
      return 1 + 4;
    case RecordType.Snapshot:
      return 1 + 4 + 4;
    case RecordType.MapTrack:
      return 1 + 4 + 6 + 4;
    case RecordType.UnmapTracks:
    case RecordType.SetBits:
    case RecordType.ClearBits:
      return 1 + 4 + 6 + 6;
    case RecordType.CreateBitmap:
      return 1 + 4 + 4 + 1;
    case RecordType.DeleteBitmap:
      return 1 + 4;
    case RecordType.MergeBitmap:
      return 1 + 4 + 4;
    case RecordType.Cdp:
      return 1 + cdpPayloadLength(record.op);
    case RecordType.Flash: {
      let length = 1 + 4;
      for (const op of record.ops) length += FLASH_OP_BYTES[op.op];
      return length;
    }
  }
}

/** Appends the encoded record to `out` at `offset`; returns the new offset. */
export function encodeRecord(record: WalRecord, out: Buffer, offset: number): number {
  const length = payloadLength(record);
  const start = offset + RECORD_HEADER_BYTES;
  out.writeUInt8(record.type, start);
  switch (record.type) {
    case RecordType.CreateVolume:
    case RecordType.ResizeVolume:
      out.writeUInt32LE(record.volume, start + 1);
      out.writeUIntLE(record.sizeBytes, start + 5, 6);
      break;
    case RecordType.DeleteVolume:
      out.writeUInt32LE(record.volume, start + 1);
      break;
    case RecordType.Snapshot:
      out.writeUInt32LE(record.source, start + 1);
      out.writeUInt32LE(record.target, start + 5);
      break;
    case RecordType.MapTrack:
      out.writeUInt32LE(record.volume, start + 1);
      out.writeUIntLE(record.track, start + 5, 6);
      out.writeUInt32LE(record.extent, start + 11);
      break;
    case RecordType.UnmapTracks:
      out.writeUInt32LE(record.volume, start + 1);
      out.writeUIntLE(record.track, start + 5, 6);
      out.writeUIntLE(record.count, start + 11, 6);
      break;
    case RecordType.SetBits:
    case RecordType.ClearBits:
      out.writeUInt32LE(record.bitmap, start + 1);
      out.writeUIntLE(record.track, start + 5, 6);
      out.writeUIntLE(record.count, start + 11, 6);
      break;
    case RecordType.CreateBitmap:
      out.writeUInt32LE(record.bitmap, start + 1);
      out.writeUInt32LE(record.volume, start + 5);
      out.writeUInt8(record.allSet ? 1 : 0, start + 9);
      break;
    case RecordType.DeleteBitmap:
      out.writeUInt32LE(record.bitmap, start + 1);
      break;
    case RecordType.MergeBitmap:
      out.writeUInt32LE(record.bitmap, start + 1);
      out.writeUInt32LE(record.source, start + 5);
      break;
    case RecordType.Cdp:
      encodeCdp(record.op, out, start + 1);
      break;
    case RecordType.Flash: {
      out.writeUInt32LE(record.ops.length, start + 1);
      let at = start + 5;
      for (const op of record.ops) {
        out.writeUInt8(FLASH_OP_CODES[op.op], at);
        switch (op.op) {
          case 'clone':
            out.writeUInt32LE(op.source, at + 1);
            out.writeUInt32LE(op.target, at + 5);
            out.writeUIntLE(op.track, at + 9, 6);
            out.writeUIntLE(op.count, at + 15, 6);
            break;
          case 'create-bitmap':
            out.writeUInt32LE(op.bitmap, at + 1);
            out.writeUInt32LE(op.volume, at + 5);
            break;
          case 'clear-bitmap':
            out.writeUInt32LE(op.bitmap, at + 1);
            break;
        }
        at += FLASH_OP_BYTES[op.op];
      }
      break;
    }
  }
  out.writeUInt32LE(length, offset);
  out.writeUInt32LE(crc32c(out.subarray(start, start + length)), offset + 4);
  return start + length;
}

export function encodedSize(record: WalRecord): number {
  return RECORD_HEADER_BYTES + payloadLength(record);
}

function decodePayload(payload: Buffer): WalRecord | undefined {
  const type = payload.readUInt8(0);
  const need = (n: number) => payload.length === n;
  switch (type) {
    case RecordType.CreateVolume:
    case RecordType.ResizeVolume:
      if (!need(11)) return undefined;
      return { type, volume: payload.readUInt32LE(1), sizeBytes: payload.readUIntLE(5, 6) };
    case RecordType.DeleteVolume:
      if (!need(5)) return undefined;
      return { type, volume: payload.readUInt32LE(1) };
    case RecordType.Snapshot:
      if (!need(9)) return undefined;
      return { type, source: payload.readUInt32LE(1), target: payload.readUInt32LE(5) };
    case RecordType.MapTrack:
      if (!need(15)) return undefined;
      return {
        type,
        volume: payload.readUInt32LE(1),
        track: payload.readUIntLE(5, 6),
        extent: payload.readUInt32LE(11),
      };
    case RecordType.UnmapTracks:
      if (!need(17)) return undefined;
      return {
        type,
        volume: payload.readUInt32LE(1),
        track: payload.readUIntLE(5, 6),
        count: payload.readUIntLE(11, 6),
      };
    case RecordType.SetBits:
    case RecordType.ClearBits:
      if (!need(17)) return undefined;
      return {
        type,
        bitmap: payload.readUInt32LE(1),
        track: payload.readUIntLE(5, 6),
        count: payload.readUIntLE(11, 6),
      };
    case RecordType.CreateBitmap:
      if (!need(10)) return undefined;
      return { type, bitmap: payload.readUInt32LE(1), volume: payload.readUInt32LE(5), allSet: payload.readUInt8(9) === 1 };
    case RecordType.DeleteBitmap:
      if (!need(5)) return undefined;
      return { type, bitmap: payload.readUInt32LE(1) };
    case RecordType.MergeBitmap:
      if (!need(9)) return undefined;
      return { type, bitmap: payload.readUInt32LE(1), source: payload.readUInt32LE(5) };
    case RecordType.Flash:
      return decodeFlash(payload);
    case RecordType.Cdp: {
      const op = decodeCdp(payload.subarray(1));
      return op ? { type, op } : undefined;
    }
    default:
      return undefined;
  }
}

function decodeFlash(payload: Buffer): WalRecord | undefined {
  if (payload.length < 5) return undefined;
  const count = payload.readUInt32LE(1);
  const ops: FlashOp[] = [];
  let at = 5;
  for (let i = 0; i < count; i++) {
    if (at >= payload.length) return undefined;
    const code = payload.readUInt8(at);
    if (code === FLASH_OP_CODES.clone && at + FLASH_OP_BYTES.clone <= payload.length) {
      ops.push({
        op: 'clone',
        source: payload.readUInt32LE(at + 1),
        target: payload.readUInt32LE(at + 5),
        track: payload.readUIntLE(at + 9, 6),
        count: payload.readUIntLE(at + 15, 6),
      });
      at += FLASH_OP_BYTES.clone;
    } else if (code === FLASH_OP_CODES['create-bitmap'] && at + FLASH_OP_BYTES['create-bitmap'] <= payload.length) {
      ops.push({ op: 'create-bitmap', bitmap: payload.readUInt32LE(at + 1), volume: payload.readUInt32LE(at + 5) });
      at += FLASH_OP_BYTES['create-bitmap'];
    } else if (code === FLASH_OP_CODES['clear-bitmap'] && at + FLASH_OP_BYTES['clear-bitmap'] <= payload.length) {
      ops.push({ op: 'clear-bitmap', bitmap: payload.readUInt32LE(at + 1) });
      at += FLASH_OP_BYTES['clear-bitmap'];
    } else {
      return undefined;
    }
  }
  return at === payload.length ? { type: RecordType.Flash, ops } : undefined;
}

export interface DecodedSegment {
  generation: number;
  records: WalRecord[];
  /** Bytes of valid records after the header. */
  validBytes: number;
  /** Bytes after the last valid record (a torn tail), 0 when the file ends cleanly. */
  tornBytes: number;
}

export function decodeSegment(file: Buffer): DecodedSegment {
  if (file.length < WAL_HEADER_BYTES || !file.subarray(0, 8).equals(WAL_MAGIC)) {
    throw new Error('not a Tandem WAL segment (bad magic)');
  }
  const generation = file.readUInt32LE(8);
  const records: WalRecord[] = [];
  let offset = WAL_HEADER_BYTES;
  while (offset + RECORD_HEADER_BYTES <= file.length) {
    const length = file.readUInt32LE(offset);
    const checksum = file.readUInt32LE(offset + 4);
    const end = offset + RECORD_HEADER_BYTES + length;
    if (length === 0 || end > file.length) break;
    const payload = file.subarray(offset + RECORD_HEADER_BYTES, end);
    if (crc32c(payload) !== checksum) break;
    const record = decodePayload(payload);
    if (!record) break;
    records.push(record);
    offset = end;
  }
  return {
    generation,
    records,
    validBytes: offset - WAL_HEADER_BYTES,
    tornBytes: file.length - offset,
  };
}

export function segmentHeader(generation: number): Buffer {
  const header = Buffer.alloc(WAL_HEADER_BYTES);
  WAL_MAGIC.copy(header, 0);
  header.writeUInt32LE(generation, 8);
  return header;
}

/** Applies one record to the metadata (the same code path live and in replay). */
export function applyRecord(state: MetadataState, record: WalRecord): void {
  switch (record.type) {
    case RecordType.CreateVolume:
      state.createVolume(record.volume, record.sizeBytes);
      break;
    case RecordType.ResizeVolume:
      state.resizeVolume(record.volume, record.sizeBytes);
      break;
    case RecordType.DeleteVolume:
      state.deleteVolume(record.volume);
      break;
    case RecordType.Snapshot:
      state.snapshotVolume(record.source, record.target);
      break;
    case RecordType.MapTrack:
      state.mapTrack(record.volume, record.track, record.extent);
      break;
    case RecordType.UnmapTracks:
      state.unmapTracks(record.volume, record.track, record.count);
      break;
    case RecordType.CreateBitmap:
      state.createBitmap(record.bitmap, record.volume, record.allSet);
      break;
    case RecordType.DeleteBitmap:
      state.deleteBitmap(record.bitmap);
      break;
    case RecordType.SetBits:
      state.setBits(record.bitmap, record.track, record.count);
      break;
    case RecordType.ClearBits:
      state.clearBits(record.bitmap, record.track, record.count);
      break;
    case RecordType.MergeBitmap:
      state.mergeBitmap(record.bitmap, record.source);
      break;
    case RecordType.Flash:
      for (const op of record.ops) {
        if (op.op === 'clone') state.cloneTracks(op.source, op.target, op.track, op.count);
        else if (op.op === 'create-bitmap') state.createBitmap(op.bitmap, op.volume, false);
        else state.clearAllBits(op.bitmap);
      }
      state.version++;
      break;
    case RecordType.Cdp:
      applyCdp(state, record.op);
      break;
  }
}

export function segmentName(generation: number): string {
  return `wal-${String(generation).padStart(10, '0')}.log`;
}

export function parseSegmentName(name: string): number | undefined {
  const match = /^wal-(\d{10})\.log$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

/** WAL segment generations present in the meta dir, ascending. */
export async function listSegments(metaDir: string): Promise<number[]> {
  const names = await fs.readdir(metaDir);
  return names
    .map(parseSegmentName)
    .filter((n): n is number => n !== undefined)
    .sort((a, b) => a - b);
}
