import { CdpJournalMeta, UNDISTRIBUTED, type CdpEntry, type CdpOp } from './cdp-meta.ts';
import { NO_EXTENT, type MetadataState } from './metadata.ts';

/**
 * Binary forms of the CDP journal metadata (cdp-meta.ts).
 *
 * WAL: a RecordType.Cdp payload is, after the record type byte, u8 op code,
 * u32 journal, then per op (little endian, u48 = 6 bytes):
 *   create      u32 n, n x u32 volume
 *   delete      -
 *   write       u32 volume, u48 timeMs, u32 runs, runs x (u48 track, u32 count, u32 extent)
 *   trim        u32 volume, u48 track, u48 count, u48 timeMs
 *   point       u48 timeMs, u16 name bytes (0xffff: no name), the UTF-8 name
 *   distribute  u48 upto
 *   release     u48 floor
 *   consolidate u32 n, n x (u48 from, u48 to)
 *
 * Checkpoint section (after the bitmaps): u32 journals, then per journal
 * u32 id, u32 volumes, volumes x u32, u48 lastSeq, u48 distributedSeq (for
 * readers; derived from the entries when loaded),
 * u48 floor, u32 entries, u32 points; entries (kept then pending, so in
 * sequence order) x 30 bytes (u48 seq, u32 volume, u48 track, u32 extent,
 * u32 undo (0xfffffffe: undistributed), u48 timeMs); points x (u48 seq,
 * u48 timeMs, u16 name bytes (0xffff: none), name).
 */

const OP_CODES = { create: 1, delete: 2, write: 3, trim: 4, point: 5, distribute: 6, release: 7, consolidate: 8 } as const;
const NO_NAME = 0xffff;
const UNDISTRIBUTED_CODE = 0xfffffffe;
const ENTRY_BYTES = 30;

/** Bytes of the payload after the record type byte. */
export function cdpPayloadLength(op: CdpOp): number {
  const head = 1 + 4;
  switch (op.op) {
    case 'create':
      return head + 4 + op.volumes.length * 4;
    case 'delete':
      return head;
    case 'write':
      return head + 4 + 6 + 4 + op.runs.length * 14;
    case 'trim':
      return head + 4 + 6 + 6 + 6;
    case 'point':
      return head + 6 + 2 + (op.name === null ? 0 : Buffer.byteLength(op.name, 'utf8'));
    case 'distribute':
    case 'release':
      return head + 6;
    case 'consolidate':
      return head + 4 + op.ranges.length * 12;
  }
}

/** Writes the payload after the record type byte at `at`. */
export function encodeCdp(op: CdpOp, out: Buffer, at: number): void {
  out.writeUInt8(OP_CODES[op.op], at);
  out.writeUInt32LE(op.journal, at + 1);
  let p = at + 5;
  switch (op.op) {
    case 'create':
      out.writeUInt32LE(op.volumes.length, p);
      p += 4;
      for (const volume of op.volumes) {
        out.writeUInt32LE(volume, p);
        p += 4;
      }
      break;
    case 'delete':
      break;
    case 'write':
      out.writeUInt32LE(op.volume, p);
      out.writeUIntLE(op.timeMs, p + 4, 6);
      out.writeUInt32LE(op.runs.length, p + 10);
      p += 14;
      for (const run of op.runs) {
        out.writeUIntLE(run.track, p, 6);
        out.writeUInt32LE(run.count, p + 6);
        out.writeUInt32LE(run.extent, p + 10);
        p += 14;
      }
      break;
    case 'trim':
      out.writeUInt32LE(op.volume, p);
      out.writeUIntLE(op.track, p + 4, 6);
      out.writeUIntLE(op.count, p + 10, 6);
      out.writeUIntLE(op.timeMs, p + 16, 6);
      break;
    case 'point':
      out.writeUIntLE(op.timeMs, p, 6);
      if (op.name === null) out.writeUInt16LE(NO_NAME, p + 6);
      else {
        const length = out.write(op.name, p + 8, 'utf8');
        out.writeUInt16LE(length, p + 6);
      }
      break;
    case 'distribute':
      out.writeUIntLE(op.upto, p, 6);
      break;
    case 'release':
      out.writeUIntLE(op.floor, p, 6);
      break;
    case 'consolidate':
      out.writeUInt32LE(op.ranges.length, p);
      op.ranges.forEach((range, i) => {
        out.writeUIntLE(range.from, p + 4 + i * 12, 6);
        out.writeUIntLE(range.to, p + 10 + i * 12, 6);
      });
      break;
  }
}

/** Decodes the payload after the record type byte; undefined when malformed. */
export function decodeCdp(payload: Buffer): CdpOp | undefined {
  if (payload.length < 5) return undefined;
  const code = payload.readUInt8(0);
  const journal = payload.readUInt32LE(1);
  const p = 5;
  const need = (n: number) => payload.length === p + n;
  switch (code) {
    case OP_CODES.create: {
      if (payload.length < p + 4) return undefined;
      const n = payload.readUInt32LE(p);
      if (!need(4 + n * 4)) return undefined;
      const volumes = Array.from({ length: n }, (_, i) => payload.readUInt32LE(p + 4 + i * 4));
      return { op: 'create', journal, volumes };
    }
    case OP_CODES.delete:
      return need(0) ? { op: 'delete', journal } : undefined;
    case OP_CODES.write: {
      if (payload.length < p + 14) return undefined;
      const n = payload.readUInt32LE(p + 10);
      if (!need(14 + n * 14)) return undefined;
      const runs = Array.from({ length: n }, (_, i) => {
        const at = p + 14 + i * 14;
        return { track: payload.readUIntLE(at, 6), count: payload.readUInt32LE(at + 6), extent: payload.readUInt32LE(at + 10) };
      });
      return { op: 'write', journal, volume: payload.readUInt32LE(p), timeMs: payload.readUIntLE(p + 4, 6), runs };
    }
    case OP_CODES.trim:
      if (!need(22)) return undefined;
      return {
        op: 'trim',
        journal,
        volume: payload.readUInt32LE(p),
        track: payload.readUIntLE(p + 4, 6),
        count: payload.readUIntLE(p + 10, 6),
        timeMs: payload.readUIntLE(p + 16, 6),
      };
    case OP_CODES.point: {
      if (payload.length < p + 8) return undefined;
      const length = payload.readUInt16LE(p + 6);
      const nameBytes = length === NO_NAME ? 0 : length;
      if (!need(8 + nameBytes)) return undefined;
      const name = length === NO_NAME ? null : payload.toString('utf8', p + 8, p + 8 + nameBytes);
      return { op: 'point', journal, timeMs: payload.readUIntLE(p, 6), name };
    }
    case OP_CODES.distribute:
      return need(6) ? { op: 'distribute', journal, upto: payload.readUIntLE(p, 6) } : undefined;
    case OP_CODES.release:
      return need(6) ? { op: 'release', journal, floor: payload.readUIntLE(p, 6) } : undefined;
    case OP_CODES.consolidate: {
      if (payload.length < p + 4) return undefined;
      const n = payload.readUInt32LE(p);
      if (!need(4 + n * 12)) return undefined;
      const ranges = Array.from({ length: n }, (_, i) => ({ from: payload.readUIntLE(p + 4 + i * 12, 6), to: payload.readUIntLE(p + 10 + i * 12, 6) }));
      return { op: 'consolidate', journal, ranges };
    }
    default:
      return undefined;
  }
}

// --- checkpoint section ---

export function serializeJournals(state: MetadataState): Buffer {
  const parts: Buffer[] = [Buffer.alloc(4)];
  parts[0].writeUInt32LE(state.journals.size, 0);
  for (const journal of state.journals.values()) {
    const entries = [...journal.kept, ...journal.pending];
    const head = Buffer.alloc(8 + journal.volumes.length * 4 + 18 + 8);
    head.writeUInt32LE(journal.id, 0);
    head.writeUInt32LE(journal.volumes.length, 4);
    let p = 8;
    for (const volume of journal.volumes) {
      head.writeUInt32LE(volume, p);
      p += 4;
    }
    head.writeUIntLE(journal.lastSeq, p, 6);
    head.writeUIntLE(journal.distributedSeq, p + 6, 6);
    head.writeUIntLE(journal.floor, p + 12, 6);
    head.writeUInt32LE(entries.length, p + 18);
    head.writeUInt32LE(journal.points.length, p + 22);
    parts.push(head);
    const body = Buffer.alloc(entries.length * ENTRY_BYTES);
    entries.forEach((entry, i) => {
      const at = i * ENTRY_BYTES;
      body.writeUIntLE(entry.seq, at, 6);
      body.writeUInt32LE(entry.volume, at + 6);
      body.writeUIntLE(entry.track, at + 10, 6);
      body.writeUInt32LE(entry.extent, at + 16);
      body.writeUInt32LE(entry.undo === UNDISTRIBUTED ? UNDISTRIBUTED_CODE : entry.undo, at + 20);
      body.writeUIntLE(entry.timeMs, at + 24, 6);
    });
    parts.push(body);
    for (const point of journal.points) {
      const name = point.name === null ? Buffer.alloc(0) : Buffer.from(point.name, 'utf8');
      const part = Buffer.alloc(14 + name.length);
      part.writeUIntLE(point.seq, 0, 6);
      part.writeUIntLE(point.timeMs, 6, 6);
      part.writeUInt16LE(point.name === null ? NO_NAME : name.length, 12);
      name.copy(part, 14);
      parts.push(part);
    }
  }
  return Buffer.concat(parts);
}

/**
 * Reads the journals section at `offset` of `body` into `state` (whose
 * refcounts already count their references); returns the offset after it.
 * `need(offset, bytes)` throws when the body is too short.
 */
export function parseJournals(state: MetadataState, body: Buffer, offset: number, need: (offset: number, bytes: number) => void): number {
  need(offset, 4);
  const count = body.readUInt32LE(offset);
  let p = offset + 4;
  for (let j = 0; j < count; j++) {
    need(p, 8);
    const id = body.readUInt32LE(p);
    const volumeCount = body.readUInt32LE(p + 4);
    p += 8;
    need(p, volumeCount * 4 + 26);
    const volumes = Array.from({ length: volumeCount }, (_, i) => body.readUInt32LE(p + i * 4));
    p += volumeCount * 4;
    const journal = new CdpJournalMeta(id, volumes);
    journal.lastSeq = body.readUIntLE(p, 6);
    journal.floor = body.readUIntLE(p + 12, 6);
    const entryCount = body.readUInt32LE(p + 18);
    const pointCount = body.readUInt32LE(p + 22);
    p += 26;
    need(p, entryCount * ENTRY_BYTES);
    for (let i = 0; i < entryCount; i++) {
      const at = p + i * ENTRY_BYTES;
      const undo = body.readUInt32LE(at + 20);
      const entry: CdpEntry = {
        seq: body.readUIntLE(at, 6),
        volume: body.readUInt32LE(at + 6),
        track: body.readUIntLE(at + 10, 6),
        extent: body.readUInt32LE(at + 16),
        undo: undo === UNDISTRIBUTED_CODE ? UNDISTRIBUTED : undo,
        timeMs: body.readUIntLE(at + 24, 6),
      };
      if (entry.undo === UNDISTRIBUTED) {
        journal.pending.push(entry);
        if (entry.extent !== NO_EXTENT) journal.heldExtents++;
      } else {
        journal.kept.push(entry);
        if (entry.undo !== NO_EXTENT) journal.heldExtents++;
      }
      journal.index(entry);
    }
    p += entryCount * ENTRY_BYTES;
    for (let i = 0; i < pointCount; i++) {
      need(p, 14);
      const length = body.readUInt16LE(p + 12);
      const nameBytes = length === NO_NAME ? 0 : length;
      need(p + 14, nameBytes);
      journal.points.push({
        seq: body.readUIntLE(p, 6),
        timeMs: body.readUIntLE(p + 6, 6),
        name: length === NO_NAME ? null : body.toString('utf8', p + 14, p + 14 + nameBytes),
      });
      p += 14 + nameBytes;
    }
    state.journals.set(id, journal);
  }
  return p;
}
