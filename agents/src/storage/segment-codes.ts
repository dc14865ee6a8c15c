import fsp from 'node:fs/promises';
import path from 'node:path';
import { xxh64 } from '@node-rs/xxhash';
import { crc32c } from '@node-rs/crc32';
import { syncDirectory, writeFileDurably } from './durable-file.ts';
import { CHUNK_TRACKS } from './metadata.ts';

/**
 * Segment codes: one xxh64 checksum per track, each with a valid flag. Every
 * write clears the flags of the tracks it touches (the device does it, so no
 * path can forget); codes are recomputed lazily when asked for. Failback and
 * online verify compare codes between sites, so only tracks whose codes
 * differ cross the link, and only invalid codes cost a read.
 *
 * Codes survive a clean shutdown (written to meta/codes at close, removed
 * at open before any I/O). After a crash the file is absent and every code
 * is invalid: a stale code marked valid could hide a difference, a missing
 * one only costs a read.
 */

const FILE = 'codes';
const MAGIC = Buffer.from('TDMCODE1', 'latin1');

interface CodeChunk {
  codes: BigUint64Array;
  valid: Uint8Array;
  validCount: number;
}

export class SegmentCodes {
  private readonly byVolume = new Map<number, Map<number, CodeChunk>>();
  readonly zeroCode: bigint;

  constructor(readonly trackSize: number) {
    this.zeroCode = xxh64(Buffer.alloc(trackSize));
  }

  static hash(data: Buffer): bigint {
    return xxh64(data);
  }

  /** Clears the valid flags of tracks [first, end). On every write path; cheap when nothing is valid. */
  invalidate(volume: number, first: number, end: number): void {
    const chunks = this.byVolume.get(volume);
    if (!chunks || chunks.size === 0) return;
    for (let track = first; track < end; ) {
      const index = Math.floor(track / CHUNK_TRACKS);
      const stop = Math.min(end, (index + 1) * CHUNK_TRACKS);
      const chunk = chunks.get(index);
      if (chunk && chunk.validCount > 0) {
        for (let t = track; t < stop; t++) {
          const slot = t - index * CHUNK_TRACKS;
          if (chunk.valid[slot]) {
            chunk.valid[slot] = 0;
            chunk.validCount--;
          }
        }
      }
      track = stop;
    }
  }

  /** The valid code of a track, or undefined. */
  get(volume: number, track: number): bigint | undefined {
    const chunk = this.byVolume.get(volume)?.get(Math.floor(track / CHUNK_TRACKS));
    const slot = track % CHUNK_TRACKS;
    return chunk && chunk.valid[slot] ? chunk.codes[slot] : undefined;
  }

  set(volume: number, track: number, code: bigint): void {
    let chunks = this.byVolume.get(volume);
    if (!chunks) {
      chunks = new Map();
      this.byVolume.set(volume, chunks);
    }
    const index = Math.floor(track / CHUNK_TRACKS);
    let chunk = chunks.get(index);
    if (!chunk) {
      chunk = { codes: new BigUint64Array(CHUNK_TRACKS), valid: new Uint8Array(CHUNK_TRACKS), validCount: 0 };
      chunks.set(index, chunk);
    }
    const slot = track % CHUNK_TRACKS;
    chunk.codes[slot] = code;
    if (!chunk.valid[slot]) {
      chunk.valid[slot] = 1;
      chunk.validCount++;
    }
  }

  validCount(volume: number): number {
    let count = 0;
    for (const chunk of this.byVolume.get(volume)?.values() ?? []) count += chunk.validCount;
    return count;
  }

  dropVolume(volume: number): void {
    this.byVolume.delete(volume);
  }

  /** Copies the source's valid codes to a new snapshot (same content, same codes). */
  cloneVolume(source: number, target: number): void {
    const chunks = this.byVolume.get(source);
    if (!chunks) return;
    const copy = new Map<number, CodeChunk>();
    for (const [index, chunk] of chunks) {
      copy.set(index, { codes: chunk.codes.slice(), valid: chunk.valid.slice(), validCount: chunk.validCount });
    }
    this.byVolume.set(target, copy);
  }

  /**
   * Flash copy: tracks [first, end) of `target` take the source's codes
   * (same content, same codes); where the source has none valid the
   * target's become invalid.
   */
  cloneRange(source: number, target: number, first: number, end: number): void {
    const from = this.byVolume.get(source);
    for (let track = first; track < end; ) {
      const index = Math.floor(track / CHUNK_TRACKS);
      const stop = Math.min(end, (index + 1) * CHUNK_TRACKS);
      const chunk = from?.get(index);
      if (track === index * CHUNK_TRACKS && stop === (index + 1) * CHUNK_TRACKS) {
        // A whole chunk of codes: copy it at once.
        let chunks = this.byVolume.get(target);
        if (!chunks) {
          chunks = new Map();
          this.byVolume.set(target, chunks);
        }
        if (chunk && chunk.validCount > 0) {
          chunks.set(index, { codes: chunk.codes.slice(), valid: chunk.valid.slice(), validCount: chunk.validCount });
        } else chunks.delete(index);
      } else if (!chunk || chunk.validCount === 0) this.invalidate(target, track, stop);
      else {
        for (let t = track; t < stop; t++) {
          const slot = t - index * CHUNK_TRACKS;
          if (chunk.valid[slot]) this.set(target, t, chunk.codes[slot]);
          else this.invalidate(target, t, t + 1);
        }
      }
      track = stop;
    }
  }

  /** Loads and removes meta/codes (present only after a clean shutdown). */
  async load(metaDir: string, volumeExists: (id: number) => boolean): Promise<void> {
    const file = path.join(metaDir, FILE);
    let data: Buffer;
    try {
      data = await fsp.readFile(file);
    } catch {
      return;
    }
    await fsp.unlink(file);
    await syncDirectory(metaDir);
    if (data.length < 16 || !data.subarray(0, 8).equals(MAGIC)) return;
    const body = data.subarray(0, data.length - 4);
    if (crc32c(body) !== data.readUInt32LE(data.length - 4)) return;
    let offset = 8;
    const volumes = body.readUInt32LE(offset);
    offset += 4;
    for (let v = 0; v < volumes; v++) {
      const volume = body.readUInt32LE(offset);
      const count = body.readUInt32LE(offset + 4);
      offset += 8;
      for (let i = 0; i < count; i++) {
        const track = body.readUIntLE(offset, 6);
        const code = body.readBigUInt64LE(offset + 6);
        offset += 14;
        if (volumeExists(volume)) this.set(volume, track, code);
      }
    }
  }

  /** Writes every valid code to meta/codes (at a clean shutdown). */
  async save(metaDir: string): Promise<void> {
    const parts: Buffer[] = [];
    const head = Buffer.alloc(12);
    MAGIC.copy(head, 0);
    head.writeUInt32LE(this.byVolume.size, 8);
    parts.push(head);
    for (const [volume, chunks] of this.byVolume) {
      const count = this.validCount(volume);
      const part = Buffer.alloc(8 + count * 14);
      part.writeUInt32LE(volume, 0);
      part.writeUInt32LE(count, 4);
      let offset = 8;
      for (const [index, chunk] of chunks) {
        for (let slot = 0; slot < CHUNK_TRACKS; slot++) {
          if (!chunk.valid[slot]) continue;
          part.writeUIntLE(index * CHUNK_TRACKS + slot, offset, 6);
          part.writeBigUInt64LE(chunk.codes[slot], offset + 6);
          offset += 14;
        }
      }
      parts.push(part);
    }
    const body = Buffer.concat(parts);
    const trailer = Buffer.alloc(4);
    trailer.writeUInt32LE(crc32c(body), 0);
    await writeFileDurably(path.join(metaDir, FILE), Buffer.concat([body, trailer]));
  }
}
