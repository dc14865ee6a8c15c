import { crc32c } from '@node-rs/crc32';
import { Xxh64, xxh64 } from '@node-rs/xxhash';

/**
 * Peer link framing (documented in contract/PROTOCOL.md, "Peer link"):
 *
 *   u32 length     bytes after this field (20 + meta + payload)
 *   u8  kind       1 request, 2 response, 3 heartbeat, 4 heartbeat reply
 *   u8  flags      bit 0: the response is an error
 *   u16 reserved   0
 *   u32 id         request id, echoed by its response
 *   u32 metaLength bytes of UTF-8 JSON metadata that follow the header
 *   u32 checksum   crc32c of meta, verified on arrival
 *   u32 payload    low 32 bits of xxh64 of the payload (0 without one), verified on arrival
 *                  (xxh64: ~4x crc32c's speed on track-sized payloads, the hot path of mirroring)
 *   meta JSON, then the binary payload (the rest of the frame)
 *
 * All integers big endian, like NBD. A frame over MAX_FRAME_BYTES, an
 * unknown kind or a checksum mismatch ends the connection (the link
 * reconnects; nothing half-received is applied).
 */

export const HEADER_BYTES = 24;
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

export const FrameKind = {
  Request: 1,
  Response: 2,
  Heartbeat: 3,
  HeartbeatReply: 4,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export const FLAG_ERROR = 1;

export interface Frame {
  kind: FrameKind;
  flags: number;
  id: number;
  meta: unknown;
  payload: Buffer | null;
}

export class FrameError extends Error {}

/**
 * A payload to send: one buffer, or its chunks in order (an async group's
 * slabs go out as they are, not copied into one buffer first).
 */
export type OutgoingPayload = Buffer | readonly Buffer[] | null;

function payloadLength(payload: OutgoingPayload): number {
  if (payload === null) return 0;
  if (Buffer.isBuffer(payload)) return payload.length;
  let length = 0;
  for (const chunk of payload) length += chunk.length;
  return length;
}

/** Encodes a frame as the buffers to write (header+meta, then the payload's chunks) without copying the payload. */
export function encodeFrame(kind: FrameKind, id: number, meta: unknown, payload: OutgoingPayload, flags = 0): Buffer[] {
  const metaBytes = meta === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(meta), 'utf8');
  const length = payloadLength(payload);
  const head = Buffer.allocUnsafe(HEADER_BYTES + metaBytes.length);
  head.writeUInt32BE(HEADER_BYTES - 4 + metaBytes.length + length, 0);
  head.writeUInt8(kind, 4);
  head.writeUInt8(flags, 5);
  head.writeUInt16BE(0, 6);
  head.writeUInt32BE(id >>> 0, 8);
  head.writeUInt32BE(metaBytes.length, 12);
  head.writeUInt32BE(crc32c(metaBytes) >>> 0, 16);
  head.writeUInt32BE(length === 0 ? 0 : Buffer.isBuffer(payload) ? payloadChecksum(payload) : chunksChecksum(payload!), 20);
  metaBytes.copy(head, HEADER_BYTES);
  if (length === 0) return [head];
  if (Buffer.isBuffer(payload)) return [head, payload];
  return [head, ...payload!.filter((chunk) => chunk.length > 0)];
}

/** `payloadChecksum` of the chunks' concatenation, without concatenating them. */
function chunksChecksum(chunks: readonly Buffer[]): number {
  const hash = new Xxh64();
  for (const chunk of chunks) if (chunk.length > 0) hash.update(chunk);
  return Number(BigInt.asUintN(32, hash.digest()));
}

/**
 * Cuts frames out of a byte stream. Feed it socket chunks; it calls
 * `onFrame` for every complete, verified frame and throws FrameError on
 * anything malformed.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private readonly onFrame: (frame: Frame) => void;

  constructor(onFrame: (frame: Frame) => void) {
    this.onFrame = onFrame;
  }

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= 4) {
      const first = this.chunks[0].length >= 4 ? this.chunks[0] : this.flatten();
      const length = first.readUInt32BE(0);
      if (length < HEADER_BYTES - 4 || length > MAX_FRAME_BYTES) {
        throw new FrameError(`frame length ${length} is out of bounds`);
      }
      if (this.buffered < length + 4) return;
      const frame = this.take(length + 4);
      this.onFrame(decode(frame));
    }
  }

  private flatten(): Buffer {
    const all = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [all];
    return all;
  }

  private take(bytes: number): Buffer {
    let head = this.chunks[0];
    if (head.length < bytes) head = this.flatten();
    const frame = head.subarray(0, bytes);
    if (head.length === bytes) this.chunks.shift();
    else this.chunks[0] = head.subarray(bytes);
    this.buffered -= bytes;
    return frame;
  }
}

function decode(frame: Buffer): Frame {
  const kind = frame.readUInt8(4);
  if (kind < FrameKind.Request || kind > FrameKind.HeartbeatReply) throw new FrameError(`unknown frame kind ${kind}`);
  const flags = frame.readUInt8(5);
  const id = frame.readUInt32BE(8);
  const metaLength = frame.readUInt32BE(12);
  if (HEADER_BYTES + metaLength > frame.length) throw new FrameError('frame metadata runs past the frame');
  const metaBytes = frame.subarray(HEADER_BYTES, HEADER_BYTES + metaLength);
  const payload = frame.length > HEADER_BYTES + metaLength ? frame.subarray(HEADER_BYTES + metaLength) : null;
  if (crc32c(metaBytes) >>> 0 !== frame.readUInt32BE(16) || payloadChecksum(payload) !== frame.readUInt32BE(20)) {
    throw new FrameError('frame checksum mismatch');
  }
  let meta: unknown;
  try {
    meta = metaLength > 0 ? JSON.parse(metaBytes.toString('utf8')) : undefined;
  } catch {
    throw new FrameError('frame metadata is not JSON');
  }
  return { kind: kind as FrameKind, flags, id, meta, payload };
}

/** The payload's checksum field: the low 32 bits of its xxh64, 0 without a payload. */
function payloadChecksum(payload: Buffer | null): number {
  if (!payload || payload.length === 0) return 0;
  return Number(BigInt.asUintN(32, xxh64(payload)));
}
