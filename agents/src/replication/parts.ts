import type { GroupEntry } from '@tandem/contract';
import { MAX_FRAME_BYTES } from './link/frames.ts';
import type { PeerLinkClient } from './link/peer-link.ts';

/**
 * A multi-primary part on the wire: `cg.stage` sends a part (one primary
 * agent's share of a round) in pieces small enough for one peer-link frame
 * each, staged at the secondary in order.
 */

/** A multi-primary part's fields besides its entries, as `cg.stage` sends them. */
export interface PartHeader {
  session: string;
  /** The sending agent's mirroring run (see stream-fence.ts). */
  run: string;
  epoch: string;
  from: string;
  round: number;
  time: number;
}

/** One `cg.stage` request's share of a part: whole entries, their data at most MAX_PIECE_BYTES (see `splitPart`). */
export interface PartPiece {
  entries: GroupEntry[];
  /** The entries' data in order: views of the part's payload (its chunks), never a copy. */
  payload: Buffer[];
}

/** A part's payload: one buffer, or its chunks in order (a shipper's slabs, sent as they are). */
export type PartPayload = Buffer | readonly Buffer[];

/** Views of bytes [start, end) of a payload given as chunks (`starts[i]`: where chunk i begins). */
function slice(chunks: readonly Buffer[], starts: number[], start: number, end: number, into: Buffer[]): void {
  // The chunk holding `start`: the last whose start is at most it (binary search; a part may hold thousands of chunks).
  let low = 0;
  let high = chunks.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if (starts[middle] <= start) low = middle;
    else high = middle - 1;
  }
  for (let index = low; index < chunks.length && starts[index] < end; index++) {
    const from = Math.max(start, starts[index]) - starts[index];
    const to = Math.min(end, starts[index] + chunks[index].length) - starts[index];
    if (to > from) into.push(chunks[index].subarray(from, to));
  }
}

/** A part's piece carries at most this much data (one entry larger than that, up to the NBD max request of 32 MiB, goes alone). */
export const MAX_PIECE_BYTES = MAX_FRAME_BYTES / 4;
/** ... and at most this many entries (their JSON stays far below the frame limit). */
const MAX_PIECE_ENTRIES = 65_536;

/** Whether a part's entry carries data in the payload (a write's, or a marker's payload). */
function carriesData(entry: GroupEntry): boolean {
  return entry.kind === 'write' || (entry.kind === 'marker' && entry.length > 0);
}

/**
 * Splits a multi-primary part into the pieces `cg.stage` sends one by one:
 * at entry boundaries (entries are never split), each piece's data at most
 * MAX_PIECE_BYTES, its entries' dataOffsets rebased to its own payload.
 * `entries` may be any subset of the entries of `payload` in order (H2->H1
 * splits a part per H1 agent). A part without entries is one empty piece.
 */
export function splitPart(entries: GroupEntry[], payload: PartPayload): PartPiece[] {
  const pieces: PartPiece[] = [];
  const chunks = Buffer.isBuffer(payload) ? [payload] : payload;
  const starts: number[] = [];
  let position = 0;
  for (const chunk of chunks) {
    starts.push(position);
    position += chunk.length;
  }
  // Data contiguous in the payload (the usual case) stays views of its chunks: no copy.
  let current: { entries: GroupEntry[]; chunks: Buffer[]; bytes: number; run: { start: number; end: number } | null } = { entries: [], chunks: [], bytes: 0, run: null };
  const endRun = (): void => {
    if (current.run) slice(chunks, starts, current.run.start, current.run.end, current.chunks);
    current.run = null;
  };
  const close = (): void => {
    endRun();
    pieces.push({ entries: current.entries, payload: current.chunks });
    current = { entries: [], chunks: [], bytes: 0, run: null };
  };
  for (const entry of entries) {
    const bytes = carriesData(entry) ? entry.length : 0;
    if (current.entries.length > 0 && (current.bytes + bytes > MAX_PIECE_BYTES || current.entries.length >= MAX_PIECE_ENTRIES)) close();
    current.entries.push({ ...entry, dataOffset: current.bytes });
    if (bytes > 0) {
      if (current.run?.end === entry.dataOffset) current.run.end += bytes;
      else {
        endRun();
        current.run = { start: entry.dataOffset, end: entry.dataOffset + bytes };
      }
      current.bytes += bytes;
    }
  }
  if (current.entries.length > 0 || pieces.length === 0) close();
  return pieces;
}

/**
 * Stages a part at a secondary agent as one `cg.stage` per piece, in order,
 * each staged durably before the next is sent (`piece` from 0, `last` on the
 * final one): a part of any size goes in frames far below the peer link's
 * 64 MiB limit. The part counts as staged once its last piece is.
 */
export async function stagePart(link: PeerLinkClient, header: PartHeader, entries: GroupEntry[], payload: PartPayload): Promise<void> {
  const pieces = splitPart(entries, payload);
  for (const [index, piece] of pieces.entries()) {
    await link.call('cg.stage', { ...header, piece: index, last: index === pieces.length - 1, entries: piece.entries }, piece.payload, {
      waitForLinkMs: 2000,
      timeoutMs: 60_000,
    });
  }
}
