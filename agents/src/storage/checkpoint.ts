import fs from 'node:fs/promises';
import path from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { writeFileDurably } from './durable-file.ts';

export { syncDirectory } from './durable-file.ts';
import { parseJournals, serializeJournals } from './cdp-codec.ts';
import { Chunk, CHUNK_TRACKS, MetadataState, NO_EXTENT, popcount8 } from './metadata.ts';

/**
 * The metadata checkpoint: the whole MetadataState at the instant the WAL
 * switched to segment `walGeneration`. Recovery loads it and replays every
 * segment from that generation on.
 *
 * Layout (little endian): magic "TDMCKPT1", u32 format, u32 walGeneration,
 * u32 trackSize, u32 chunkCount, u32 volumeCount, u32 refcountLength; then
 * the chunks (u32 refs, u32 allocated, u8 encoding, entries either dense
 * 4096 x u32 or sparse (u16 slot, u32 extent) pairs); then the volumes (u32
 * id, u48 sizeBytes, u32 chunks, then (u32 chunkIndex, u32 chunkId) pairs);
 * then refcounts (u32 each); then u32 bitmapCount and per bitmap u32 id,
 * u32 volume, u32 byteLength, the bits; from format 3 on, the CDP journals
 * (cdp-codec.ts); a trailing u32 crc32c of everything before it. Format 2
 * (no journals) still loads.
 */

const MAGIC = Buffer.from('TDMCKPT1', 'latin1');
/** Format 3 adds the CDP journals; a pool without any still writes format 2, which an agent from before reads. */
const FORMAT_WITH_JOURNALS = 3;
const FORMAT_WITHOUT_JOURNALS = 2;
const FORMATS_READ = new Set([2, 3]);
export const CHECKPOINT_FILE = 'checkpoint';

export function serializeCheckpoint(state: MetadataState, walGeneration: number): Buffer {
  const chunkIds = new Map<Chunk, number>();
  const chunkParts: Buffer[] = [];
  for (const volume of state.volumes.values()) {
    for (const chunk of volume.chunks.values()) {
      if (chunkIds.has(chunk)) continue;
      chunkIds.set(chunk, chunkIds.size);
      chunkParts.push(encodeChunk(chunk));
    }
  }
  const volumeParts: Buffer[] = [];
  for (const volume of state.volumes.values()) {
    const part = Buffer.alloc(14 + volume.chunks.size * 8);
    part.writeUInt32LE(volume.id, 0);
    part.writeUIntLE(volume.sizeBytes, 4, 6);
    part.writeUInt32LE(volume.chunks.size, 10);
    let offset = 14;
    for (const [index, chunk] of volume.chunks) {
      part.writeUInt32LE(index, offset);
      part.writeUInt32LE(chunkIds.get(chunk)!, offset + 4);
      offset += 8;
    }
    volumeParts.push(part);
  }
  const refcountLength = state.extentHighWater();
  const refcounts = Buffer.from(state.refcounts.buffer, state.refcounts.byteOffset, refcountLength * 4);

  const header = Buffer.alloc(32);
  MAGIC.copy(header, 0);
  const withJournals = state.journals.size > 0;
  header.writeUInt32LE(withJournals ? FORMAT_WITH_JOURNALS : FORMAT_WITHOUT_JOURNALS, 8);
  header.writeUInt32LE(walGeneration, 12);
  header.writeUInt32LE(state.trackSize, 16);
  header.writeUInt32LE(chunkIds.size, 20);
  header.writeUInt32LE(state.volumes.size, 24);
  header.writeUInt32LE(refcountLength, 28);
  const bitmapParts: Buffer[] = [Buffer.alloc(4)];
  bitmapParts[0].writeUInt32LE(state.bitmaps.size, 0);
  for (const bitmap of state.bitmaps.values()) {
    const head = Buffer.alloc(12);
    head.writeUInt32LE(bitmap.id, 0);
    head.writeUInt32LE(bitmap.volume, 4);
    head.writeUInt32LE(bitmap.bits.length, 8);
    bitmapParts.push(head, Buffer.from(bitmap.bits));
  }
  const journals = withJournals ? [serializeJournals(state)] : [];
  const body = Buffer.concat([header, ...chunkParts, ...volumeParts, refcounts, ...bitmapParts, ...journals]);
  const trailer = Buffer.alloc(4);
  trailer.writeUInt32LE(crc32c(body), 0);
  return Buffer.concat([body, trailer]);
}

function encodeChunk(chunk: Chunk): Buffer {
  const sparse = chunk.allocated * 6 < CHUNK_TRACKS * 4;
  const size = 9 + (sparse ? 4 + chunk.allocated * 6 : CHUNK_TRACKS * 4);
  const out = Buffer.alloc(size);
  out.writeUInt32LE(chunk.refs, 0);
  out.writeUInt32LE(chunk.allocated, 4);
  out.writeUInt8(sparse ? 1 : 0, 8);
  if (sparse) {
    out.writeUInt32LE(chunk.allocated, 9);
    let offset = 13;
    for (let slot = 0; slot < CHUNK_TRACKS; slot++) {
      const extent = chunk.entries[slot];
      if (extent === NO_EXTENT) continue;
      out.writeUInt16LE(slot, offset);
      out.writeUInt32LE(extent, offset + 2);
      offset += 6;
    }
  } else {
    Buffer.from(chunk.entries.buffer, chunk.entries.byteOffset, CHUNK_TRACKS * 4).copy(out, 9);
  }
  return out;
}

export interface LoadedCheckpoint {
  state: MetadataState;
  walGeneration: number;
}

export class CheckpointError extends Error {}

/** Parses a checkpoint; throws CheckpointError on any corruption. */
export function parseCheckpoint(file: Buffer): LoadedCheckpoint {
  if (file.length < 36 || !file.subarray(0, 8).equals(MAGIC)) throw new CheckpointError('bad magic');
  const body = file.subarray(0, file.length - 4);
  if (crc32c(body) !== file.readUInt32LE(file.length - 4)) throw new CheckpointError('checksum mismatch');
  const format = file.readUInt32LE(8);
  if (!FORMATS_READ.has(format)) throw new CheckpointError(`unknown format ${format}`);
  const walGeneration = file.readUInt32LE(12);
  const state = new MetadataState(file.readUInt32LE(16));
  const chunkCount = file.readUInt32LE(20);
  const volumeCount = file.readUInt32LE(24);
  const refcountLength = file.readUInt32LE(28);
  let offset = 32;
  const need = (bytes: number) => {
    if (offset + bytes > body.length) throw new CheckpointError('truncated');
  };
  const chunks: Chunk[] = [];
  for (let i = 0; i < chunkCount; i++) {
    need(9);
    const chunk = new Chunk();
    chunk.refs = body.readUInt32LE(offset);
    chunk.allocated = body.readUInt32LE(offset + 4);
    const sparse = body.readUInt8(offset + 8) === 1;
    offset += 9;
    if (sparse) {
      need(4);
      const count = body.readUInt32LE(offset);
      offset += 4;
      need(count * 6);
      for (let j = 0; j < count; j++) {
        chunk.entries[body.readUInt16LE(offset)] = body.readUInt32LE(offset + 2);
        offset += 6;
      }
    } else {
      need(CHUNK_TRACKS * 4);
      for (let slot = 0; slot < CHUNK_TRACKS; slot++) chunk.entries[slot] = body.readUInt32LE(offset + slot * 4);
      offset += CHUNK_TRACKS * 4;
    }
    chunks.push(chunk);
  }
  for (let i = 0; i < volumeCount; i++) {
    need(14);
    const id = body.readUInt32LE(offset);
    const sizeBytes = body.readUIntLE(offset + 4, 6);
    const count = body.readUInt32LE(offset + 10);
    offset += 14;
    need(count * 8);
    const volumeChunks = new Map<number, Chunk>();
    for (let j = 0; j < count; j++) {
      const chunk = chunks[body.readUInt32LE(offset + 4)];
      if (!chunk) throw new CheckpointError(`volume ${id} names a missing chunk`);
      volumeChunks.set(body.readUInt32LE(offset), chunk);
      offset += 8;
    }
    state.volumes.set(id, { id, sizeBytes, trackCount: state.trackCountFor(sizeBytes), chunks: volumeChunks });
  }
  need(refcountLength * 4);
  state.ensureRefcountCapacity(Math.max(refcountLength, 1));
  for (let e = 0; e < refcountLength; e++) {
    const count = body.readUInt32LE(offset + e * 4);
    state.refcounts[e] = count;
    if (count > 0) state.usedExtents++;
  }
  offset += refcountLength * 4;
  need(4);
  const bitmapCount = body.readUInt32LE(offset);
  offset += 4;
  for (let i = 0; i < bitmapCount; i++) {
    need(12);
    const id = body.readUInt32LE(offset);
    const volume = body.readUInt32LE(offset + 4);
    const length = body.readUInt32LE(offset + 8);
    offset += 12;
    need(length);
    const bits = new Uint8Array(body.subarray(offset, offset + length));
    offset += length;
    let setCount = 0;
    for (const byte of bits) setCount += popcount8(byte);
    state.bitmaps.set(id, { id, volume, bits, setCount });
  }
  if (format >= 3) {
    offset = parseJournals(state, body, offset, (at, bytes) => {
      if (at + bytes > body.length) throw new CheckpointError('truncated');
    });
  }
  if (offset !== body.length) throw new CheckpointError('trailing bytes');
  return { state, walGeneration };
}

/** Writes a checkpoint durably (see writeFileDurably). */
export async function writeCheckpoint(metaDir: string, data: Buffer): Promise<void> {
  await writeFileDurably(path.join(metaDir, CHECKPOINT_FILE), data);
}

export async function readCheckpoint(metaDir: string): Promise<LoadedCheckpoint> {
  const file = await fs.readFile(path.join(metaDir, CHECKPOINT_FILE));
  return parseCheckpoint(file);
}
