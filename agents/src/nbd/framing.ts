import {
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_OPTS_MAGIC_HIGH,
  NBD_OPTS_MAGIC_LOW,
  NBD_REP_MAGIC_HIGH,
  NBD_REP_MAGIC_LOW,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  OPTION_REPLY_HEADER_BYTES,
  SIMPLE_REPLY_BYTES,
  STRUCTURED_CHUNK_HEADER_BYTES,
} from './protocol.ts';

/**
 * Builders for the byte layouts the server sends. Handles travel as two
 * uint32 halves so the hot path never touches BigInt.
 */

/** The 18-byte greeting: NBDMAGIC, IHAVEOPT, handshake flags. */
export function greeting(): Buffer {
  const buffer = Buffer.alloc(18);
  buffer.write('NBDMAGIC', 0, 'latin1');
  buffer.writeUInt32BE(NBD_OPTS_MAGIC_HIGH, 8);
  buffer.writeUInt32BE(NBD_OPTS_MAGIC_LOW, 12);
  buffer.writeUInt16BE(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES, 16);
  return buffer;
}

/** One option reply: magic, option, reply type, length, payload. */
export function optionReply(option: number, replyType: number, payload?: Buffer): Buffer {
  const length = payload ? payload.length : 0;
  const buffer = Buffer.allocUnsafe(OPTION_REPLY_HEADER_BYTES + length);
  buffer.writeUInt32BE(NBD_REP_MAGIC_HIGH, 0);
  buffer.writeUInt32BE(NBD_REP_MAGIC_LOW, 4);
  buffer.writeUInt32BE(option >>> 0, 8);
  buffer.writeUInt32BE(replyType >>> 0, 12);
  buffer.writeUInt32BE(length, 16);
  if (payload) payload.copy(buffer, OPTION_REPLY_HEADER_BYTES);
  return buffer;
}

/** An error option reply with a human-readable message. */
export function optionError(option: number, replyType: number, message: string): Buffer {
  return optionReply(option, replyType, Buffer.from(truncateMessage(message), 'utf8'));
}

/** Writes a 64-bit unsigned integer held in a JS number (< 2^53). */
export function writeUInt64(buffer: Buffer, value: number, offset: number): void {
  buffer.writeUInt32BE(Math.floor(value / 0x1_0000_0000), offset);
  buffer.writeUInt32BE(value >>> 0, offset + 4);
}

/** Reads a 64-bit unsigned integer; values past 2^53 lose precision but stay huge. */
export function readUInt64(buffer: Buffer, offset: number): number {
  return buffer.readUInt32BE(offset) * 0x1_0000_0000 + buffer.readUInt32BE(offset + 4);
}

/** Fills a simple reply header at `at` (16 bytes). */
export function writeSimpleReplyHeader(
  buffer: Buffer,
  at: number,
  error: number,
  handleHigh: number,
  handleLow: number,
): void {
  buffer.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, at);
  buffer.writeUInt32BE(error, at + 4);
  buffer.writeUInt32BE(handleHigh, at + 8);
  buffer.writeUInt32BE(handleLow, at + 12);
}

/** A complete simple reply without payload. */
export function simpleReply(error: number, handleHigh: number, handleLow: number): Buffer {
  const buffer = Buffer.allocUnsafe(SIMPLE_REPLY_BYTES);
  writeSimpleReplyHeader(buffer, 0, error, handleHigh, handleLow);
  return buffer;
}

/** Fills a structured reply chunk header at `at` (20 bytes). */
export function writeChunkHeader(
  buffer: Buffer,
  at: number,
  flags: number,
  type: number,
  handleHigh: number,
  handleLow: number,
  length: number,
): void {
  buffer.writeUInt32BE(NBD_STRUCTURED_REPLY_MAGIC, at);
  buffer.writeUInt16BE(flags, at + 4);
  buffer.writeUInt16BE(type, at + 6);
  buffer.writeUInt32BE(handleHigh, at + 8);
  buffer.writeUInt32BE(handleLow, at + 12);
  buffer.writeUInt32BE(length, at + 16);
}

/** Bytes of an OFFSET_HOLE chunk (header + offset + size). */
export const HOLE_CHUNK_BYTES = STRUCTURED_CHUNK_HEADER_BYTES + 12;
/** Bytes of an OFFSET_DATA chunk before its data (header + offset). */
export const DATA_CHUNK_PREFIX_BYTES = STRUCTURED_CHUNK_HEADER_BYTES + 8;

/** Fills an OFFSET_HOLE chunk at `at`. */
export function writeHoleChunk(
  buffer: Buffer,
  at: number,
  flags: number,
  handleHigh: number,
  handleLow: number,
  offset: number,
  length: number,
): void {
  writeChunkHeader(buffer, at, flags, NBD_REPLY_TYPE_OFFSET_HOLE, handleHigh, handleLow, 12);
  writeUInt64(buffer, offset, at + STRUCTURED_CHUNK_HEADER_BYTES);
  buffer.writeUInt32BE(length, at + STRUCTURED_CHUNK_HEADER_BYTES + 8);
}

/** A final ERROR chunk with a message. */
export function structuredError(
  error: number,
  handleHigh: number,
  handleLow: number,
  message: string,
): Buffer {
  const text = Buffer.from(truncateMessage(message), 'utf8');
  const buffer = Buffer.allocUnsafe(STRUCTURED_CHUNK_HEADER_BYTES + 6 + text.length);
  writeChunkHeader(buffer, 0, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, handleHigh, handleLow, 6 + text.length);
  buffer.writeUInt32BE(error, STRUCTURED_CHUNK_HEADER_BYTES);
  buffer.writeUInt16BE(text.length, STRUCTURED_CHUNK_HEADER_BYTES + 4);
  text.copy(buffer, STRUCTURED_CHUNK_HEADER_BYTES + 6);
  return buffer;
}

/** Protocol strings must stay under 4096 bytes; we keep messages far shorter. */
function truncateMessage(message: string): string {
  return message.length > 512 ? `${message.slice(0, 509)}...` : message;
}
