import type { AllocationRun } from '../storage/block-device.ts';
import { DATA_CHUNK_PREFIX_BYTES, HOLE_CHUNK_BYTES, writeChunkHeader, writeHoleChunk, writeUInt64 } from './framing.ts';
import {
  BASE_ALLOCATION_ID,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_STATE_HOLE,
  NBD_STATE_ZERO,
  STRUCTURED_CHUNK_HEADER_BYTES,
} from './protocol.ts';

/** A data range to read from the device into the reply at `at`. */
export interface ReadPart {
  offset: number;
  at: number;
  length: number;
}

/** A structured read reply laid out in one buffer: chunk headers filled, data still to read. */
export interface ReadPlan {
  reply: Buffer;
  reads: ReadPart[];
}

/** Past this many runs a fragmented reply costs more than reading zeroes. */
const MAX_READ_CHUNKS = 64;
/** Most descriptors in one BLOCK_STATUS reply; clients ask again for the rest. */
const MAX_STATUS_DESCRIPTORS = 8192;

/**
 * Plans a structured read reply from the allocation runs of the range:
 * OFFSET_HOLE chunks for holes, OFFSET_DATA chunks for data, all in one
 * buffer so the reply leaves in a single write. Returns null when one plain
 * data chunk is the better answer (fully allocated, DF set with a mix, too
 * fragmented, or runs that do not add up).
 */
export function buildReadReplyPlan(
  runs: AllocationRun[],
  offset: number,
  length: number,
  dontFragment: boolean,
  handleHigh: number,
  handleLow: number,
): ReadPlan | null {
  if (runs.length === 0 || runs.length > MAX_READ_CHUNKS) return null;
  if (runs.length === 1 && runs[0].allocated) return null;
  if (dontFragment && runs.length > 1) return null;
  let total = 0;
  let size = 0;
  for (const run of runs) {
    if (!(run.length > 0)) return null;
    total += run.length;
    size += run.allocated ? DATA_CHUNK_PREFIX_BYTES + run.length : HOLE_CHUNK_BYTES;
  }
  if (total !== length) return null;

  const reply = Buffer.allocUnsafe(size);
  const reads: ReadPart[] = [];
  let at = 0;
  let position = offset;
  for (let index = 0; index < runs.length; index++) {
    const run = runs[index];
    const flags = index === runs.length - 1 ? NBD_REPLY_FLAG_DONE : 0;
    if (run.allocated) {
      writeChunkHeader(reply, at, flags, NBD_REPLY_TYPE_OFFSET_DATA, handleHigh, handleLow, 8 + run.length);
      writeUInt64(reply, position, at + STRUCTURED_CHUNK_HEADER_BYTES);
      reads.push({ offset: position, at: at + DATA_CHUNK_PREFIX_BYTES, length: run.length });
      at += DATA_CHUNK_PREFIX_BYTES + run.length;
    } else {
      writeHoleChunk(reply, at, flags, handleHigh, handleLow, position, run.length);
      at += HOLE_CHUNK_BYTES;
    }
    position += run.length;
  }
  return { reply, reads };
}

/**
 * The BLOCK_STATUS reply for `base:allocation`: one chunk, descriptors
 * clipped to the requested length, holes reported as HOLE|ZERO.
 */
export function buildBlockStatusReply(
  runs: AllocationRun[],
  length: number,
  requestOne: boolean,
  handleHigh: number,
  handleLow: number,
): Buffer {
  const limit = requestOne ? 1 : Math.min(Math.max(runs.length, 1), MAX_STATUS_DESCRIPTORS);
  const buffer = Buffer.allocUnsafe(STRUCTURED_CHUNK_HEADER_BYTES + 4 + 8 * limit);
  let at = STRUCTURED_CHUNK_HEADER_BYTES + 4;
  let remaining = length;
  let count = 0;
  for (let index = 0; index < runs.length && count < limit && remaining > 0; index++) {
    const run = runs[index];
    if (!(run.length > 0)) continue;
    const extent = Math.min(run.length, remaining);
    buffer.writeUInt32BE(extent, at);
    buffer.writeUInt32BE(run.allocated ? 0 : NBD_STATE_HOLE | NBD_STATE_ZERO, at + 4);
    at += 8;
    remaining -= extent;
    count++;
  }
  if (count === 0) {
    // Nothing usable from the map: status 0 ("allocated, contents unknown") is always safe.
    buffer.writeUInt32BE(length, at);
    buffer.writeUInt32BE(0, at + 4);
    at += 8;
    count = 1;
  }
  writeChunkHeader(buffer, 0, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, handleHigh, handleLow, 4 + 8 * count);
  buffer.writeUInt32BE(BASE_ALLOCATION_ID, STRUCTURED_CHUNK_HEADER_BYTES);
  return buffer.subarray(0, at);
}
