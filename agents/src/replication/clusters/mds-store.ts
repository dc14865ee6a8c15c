import fs from 'node:fs/promises';
import path from 'node:path';
import { crc32c } from '@node-rs/crc32';
import type { MdsRecord } from '@tandem/contract';
import { syncDirectory, writeFileDurably } from '../../storage/durable-file.ts';

/**
 * The master data set of a cluster: a durable, checksummed, append-only
 * record store, one file per cluster (`DATA/mds/<cluster>.log`).
 *
 * File layout (all integers little-endian):
 *
 *   header, 16 bytes
 *     0   8  magic "TDMMDS01" (latin1)
 *     8   4  u32 format version (1)
 *     12  4  u32 crc32c of bytes 0..12
 *   records, one after another
 *     0   4  u32 payload length L (1 .. 1 MiB)
 *     4   4  u32 crc32c over the length field, the sequence and the payload
 *              (bytes 0..4 and 8..16+L of the record)
 *     8   8  u64 sequence number: 1, 2, 3, … strictly increasing, kept across compactions
 *     16  L  payload: UTF-8 JSON of the record without its sequence
 *            ({time, cluster, health, consistencyTime, exposureSeconds, members})
 *
 * An append writes one record and fdatasyncs before it is acknowledged. A
 * record that is cut short by the end of the file, or fails its checksum as
 * the last bytes of the file, or zeroes up to the end, are a torn tail (an
 * append a crash interrupted, never acknowledged): readers ignore it and the
 * writer cuts it off when it next opens the file. A record that fails its
 * checksum (or goes back in sequence) with a verifying record somewhere after
 * it is corruption: readers report it, skip to the next record that verifies
 * and carry on; opening for append moves the damaged file aside and rewrites
 * the records that verify into a fresh one, keeping their sequence numbers
 * (the gap shows what was lost).
 *
 * Compaction: once the file grows past `maxBytes`, the last `keepRecords`
 * records are copied into a new file (temp, fdatasync, rename over the old
 * one, fsync the directory), so a crash at any instant leaves either the old
 * file or the new one, both whole.
 */

export const MDS_MAGIC = Buffer.from('TDMMDS01', 'latin1');
export const MDS_VERSION = 1;
export const MDS_HEADER_BYTES = 16;
export const MDS_RECORD_HEADER_BYTES = 16;
export const MDS_MAX_PAYLOAD = 1024 * 1024;

export type MdsPayload = Omit<MdsRecord, 'sequence'>;

export function encodeHeader(): Buffer {
  const header = Buffer.alloc(MDS_HEADER_BYTES);
  MDS_MAGIC.copy(header, 0);
  header.writeUInt32LE(MDS_VERSION, 8);
  header.writeUInt32LE(crc32c(header.subarray(0, 12)), 12);
  return header;
}

function recordChecksum(frame: Buffer): number {
  return crc32c(frame.subarray(8), crc32c(frame.subarray(0, 4)));
}

/** One record, framed: length, checksum, sequence, JSON payload. */
export function encodeRecord(sequence: number, payload: MdsPayload): Buffer {
  const json = Buffer.from(JSON.stringify(payload), 'utf8');
  if (json.length === 0 || json.length > MDS_MAX_PAYLOAD) {
    throw new RangeError(`a master data set record is 1 to ${MDS_MAX_PAYLOAD} bytes, not ${json.length}`);
  }
  const frame = Buffer.alloc(MDS_RECORD_HEADER_BYTES + json.length);
  frame.writeUInt32LE(json.length, 0);
  frame.writeBigUInt64LE(BigInt(sequence), 8);
  json.copy(frame, MDS_RECORD_HEADER_BYTES);
  frame.writeUInt32LE(recordChecksum(frame), 4);
  return frame;
}

export interface MdsFrame {
  sequence: number;
  /** Offset of the record in the file. */
  offset: number;
  /** Bytes of the whole record (header and payload). */
  length: number;
}

export interface MdsScan {
  /** The records that verify, in file order. */
  frames: MdsFrame[];
  /** End of the last record that verifies: where the next append goes when there is no damage. */
  validEnd: number;
  /** `clean`: the file ends with a whole record; `torn`: an interrupted append follows the last one. */
  tail: 'clean' | 'torn';
  /** Corruption found before the end (records were skipped), null when none. */
  damage: string | null;
}

export class MdsFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MdsFormatError';
  }
}

function isAllZero(buffer: Buffer): boolean {
  for (let i = 0; i < buffer.length; i++) if (buffer[i] !== 0) return false;
  return true;
}

/** The offset of the next record at or after `from` that verifies and follows `previous` in sequence, or -1. */
function nextVerifyingRecord(file: Buffer, from: number, previous: number): number {
  for (let at = from; at + MDS_RECORD_HEADER_BYTES <= file.length; at++) {
    const length = file.readUInt32LE(at);
    if (length === 0 || length > MDS_MAX_PAYLOAD || at + MDS_RECORD_HEADER_BYTES + length > file.length) continue;
    if (Number(file.readBigUInt64LE(at + 8)) <= previous) continue;
    const frame = file.subarray(at, at + MDS_RECORD_HEADER_BYTES + length);
    if (recordChecksum(frame) === frame.readUInt32LE(4)) return at;
  }
  return -1;
}

/** Walks a master data set file, verifying every record's checksum and order. */
export function scanMds(file: Buffer): MdsScan {
  if (file.length < MDS_HEADER_BYTES || !file.subarray(0, 8).equals(MDS_MAGIC)) {
    throw new MdsFormatError('not a Tandem master data set (bad magic)');
  }
  if (crc32c(file.subarray(0, 12)) !== file.readUInt32LE(12)) {
    throw new MdsFormatError('the master data set header fails its checksum');
  }
  const version = file.readUInt32LE(8);
  if (version !== MDS_VERSION) throw new MdsFormatError(`master data set format ${version} is not supported`);

  const frames: MdsFrame[] = [];
  const damage: string[] = [];
  let offset = MDS_HEADER_BYTES;
  let validEnd = offset;
  let previous = 0;
  const result = (tail: MdsScan['tail']): MdsScan => ({ frames, validEnd, tail, damage: damage.length ? damage.join('; ') : null });
  while (offset < file.length) {
    const rest = file.subarray(offset);
    // A crash may leave the file extended with zeroes.
    if (isAllZero(rest)) return result('torn');
    let problem: string;
    /** Whether this failure, were it the last thing in the file, is an interrupted append. */
    let tearable = false;
    if (rest.length < MDS_RECORD_HEADER_BYTES) {
      problem = 'is cut short';
      tearable = true;
    } else {
      const length = rest.readUInt32LE(0);
      const size = MDS_RECORD_HEADER_BYTES + length;
      if (length === 0 || length > MDS_MAX_PAYLOAD) problem = `has an impossible length ${length}`;
      else if (size > rest.length) {
        problem = 'is cut short';
        tearable = true;
      } else if (recordChecksum(rest.subarray(0, size)) !== rest.readUInt32LE(4)) {
        problem = 'fails its checksum';
        tearable = size === rest.length;
      } else {
        const sequence = Number(rest.readBigUInt64LE(8));
        if (sequence > previous) {
          frames.push({ sequence, offset, length: size });
          previous = sequence;
          offset += size;
          validEnd = offset;
          continue;
        }
        problem = `has sequence ${sequence} after ${previous}`;
      }
    }
    // Corruption when a verifying record follows; else a torn tail if an interrupted append can look like this.
    const next = nextVerifyingRecord(file, offset + 1, previous);
    if (next < 0) {
      if (tearable) return result('torn');
      damage.push(`record at byte ${offset} ${problem}; nothing after it verifies (${file.length - offset} bytes lost)`);
      return result('clean');
    }
    damage.push(`record at byte ${offset} ${problem}; skipped ${next - offset} bytes`);
    offset = next;
  }
  return result('clean');
}

/** Decodes one verified record of a file. */
export function decodeRecord(file: Buffer, frame: MdsFrame): MdsRecord {
  const json = file.subarray(frame.offset + MDS_RECORD_HEADER_BYTES, frame.offset + frame.length).toString('utf8');
  let payload: MdsPayload;
  try {
    payload = JSON.parse(json) as MdsPayload;
  } catch {
    throw new MdsFormatError(`record ${frame.sequence} holds no valid JSON`);
  }
  return { sequence: frame.sequence, ...payload };
}

export interface MdsReadResult {
  /** Oldest first. */
  records: MdsRecord[];
  /** null when the file ended cleanly or with a torn tail. */
  damage: string | null;
}

/** Reads the last `limit` records of a master data set file (any site, any time: readers never lock). */
export async function readMasterDataSet(file: string, limit = Number.MAX_SAFE_INTEGER): Promise<MdsReadResult> {
  const data = await fs.readFile(file);
  const scan = scanMds(data);
  const records: MdsRecord[] = [];
  let damage = scan.damage;
  for (const frame of scan.frames.slice(Math.max(0, scan.frames.length - limit))) {
    try {
      records.push(decodeRecord(data, frame));
    } catch (error) {
      damage = (error as Error).message;
      break;
    }
  }
  return { records, damage };
}


export interface MdsOptions {
  /** Compact once the file is larger than this (default 4 MiB). */
  maxBytes?: number;
  /** Records a compaction keeps (default 2048). */
  keepRecords?: number;
}

/** What opening found and repaired. */
export interface MdsRecovery {
  /** Bytes of a torn tail that were cut off. */
  tornBytes: number;
  /** Corruption found (the damaged file was kept aside as `movedTo`). */
  damage: string | null;
  movedTo: string | null;
}

/** The writer of one master data set. Appends are serialized, durable when they resolve. */
export class MasterDataSet {
  private handle: fs.FileHandle;
  private frames: MdsFrame[];
  private size: number;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Compactions done since open. */
  compactions = 0;

  private constructor(
    readonly file: string,
    handle: fs.FileHandle,
    frames: MdsFrame[],
    size: number,
    private readonly maxBytes: number,
    private readonly keepRecords: number,
  ) {
    this.handle = handle;
    this.frames = frames;
    this.size = size;
  }

  /** Opens (creating when missing) a master data set, repairing a torn tail or setting aside a damaged file. */
  static async open(file: string, options: MdsOptions = {}): Promise<{ store: MasterDataSet; recovery: MdsRecovery }> {
    const maxBytes = options.maxBytes ?? 4 * 1024 * 1024;
    const keepRecords = Math.max(1, options.keepRecords ?? 2048);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.rm(`${file}.tmp`, { force: true });
    const recovery: MdsRecovery = { tornBytes: 0, damage: null, movedTo: null };
    let data: Buffer | null = null;
    try {
      data = await fs.readFile(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    let scan: MdsScan | null = null;
    if (data !== null) {
      try {
        scan = scanMds(data);
      } catch (error) {
        if (!(error instanceof MdsFormatError)) throw error;
        recovery.damage = error.message;
      }
    }
    if (data === null) {
      await writeFileDurably(file, [encodeHeader()]);
      scan = { frames: [], validEnd: MDS_HEADER_BYTES, tail: 'clean', damage: null };
    } else if (scan === null || scan.damage !== null) {
      // Keep the damaged file for inspection; carry on with the records that verify, numbers unchanged.
      recovery.damage ??= scan?.damage ?? 'damaged';
      recovery.movedTo = `${file}.damaged-${Date.now()}`;
      const frames: MdsFrame[] = [];
      const parts = [encodeHeader()];
      let at = MDS_HEADER_BYTES;
      for (const frame of scan?.frames ?? []) {
        parts.push(data.subarray(frame.offset, frame.offset + frame.length));
        frames.push({ ...frame, offset: at });
        at += frame.length;
      }
      await fs.rename(file, recovery.movedTo);
      await writeFileDurably(file, parts);
      scan = { frames, validEnd: at, tail: 'clean', damage: null };
    } else if (scan.tail === 'torn') {
      recovery.tornBytes = data.length - scan.validEnd;
      const handle = await fs.open(file, 'r+');
      try {
        await handle.truncate(scan.validEnd);
        await handle.datasync();
      } finally {
        await handle.close();
      }
    }
    const handle = await fs.open(file, 'r+');
    const store = new MasterDataSet(file, handle, scan!.frames, scan!.validEnd, maxBytes, keepRecords);
    return { store, recovery };
  }

  get lastSequence(): number {
    return this.frames.length ? this.frames[this.frames.length - 1].sequence : 0;
  }

  /** Records in the file now. */
  get recordCount(): number {
    return this.frames.length;
  }

  get bytes(): number {
    return this.size;
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => {});
    return run;
  }

  /** Appends one record; resolves with its sequence number once it is on disk. */
  append(payload: MdsPayload): Promise<number> {
    return this.serialized(async () => {
      if (this.closed) throw new Error('the master data set is closed');
      const sequence = this.lastSequence + 1;
      const frame = encodeRecord(sequence, payload);
      const at = this.size;
      try {
        let written = 0;
        while (written < frame.length) {
          const { bytesWritten } = await this.handle.write(frame, written, frame.length - written, at + written);
          written += bytesWritten;
        }
        await this.handle.datasync();
      } catch (error) {
        // Leave no half record behind us (the reader would take it for a torn tail anyway).
        await this.handle.truncate(at).catch(() => {});
        throw error;
      }
      this.frames.push({ sequence, offset: at, length: frame.length });
      this.size = at + frame.length;
      if (this.size > this.maxBytes && this.frames.length > 1) await this.compact();
      return sequence;
    });
  }

  /** Rewrites the last `keepRecords` records into a new file, atomically. */
  private async compact(): Promise<void> {
    const keep = this.frames.slice(Math.max(0, this.frames.length - this.keepRecords));
    const start = keep[0].offset;
    const tail = Buffer.alloc(this.size - start);
    await this.handle.read(tail, 0, tail.length, start);
    await writeFileDurably(this.file, [encodeHeader(), tail]);
    const handle = await fs.open(this.file, 'r+');
    await this.handle.close();
    this.handle = handle;
    const shift = start - MDS_HEADER_BYTES;
    this.frames = keep.map((frame) => ({ ...frame, offset: frame.offset - shift }));
    this.size = MDS_HEADER_BYTES + tail.length;
    this.compactions++;
  }

  /** The last `limit` records, read back from the file. */
  read(limit?: number): Promise<MdsReadResult> {
    return readMasterDataSet(this.file, limit);
  }

  async close(): Promise<void> {
    await this.serialized(async () => {
      if (this.closed) return;
      this.closed = true;
      await this.handle.close();
    });
  }

  /** Closes and deletes the file (the cluster was deleted). */
  async destroy(): Promise<void> {
    await this.close();
    await fs.rm(this.file, { force: true });
    await syncDirectory(path.dirname(this.file)).catch(() => {});
  }
}
