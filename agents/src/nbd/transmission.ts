import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { BlockDevice, IoOptions, WriteZeroesOptions } from '../storage/block-device.ts';
import { clientMessage, isExpectedRefusal, nbdErrorFor } from './errors.ts';
import {
  DATA_CHUNK_PREFIX_BYTES,
  readUInt64,
  simpleReply,
  structuredError,
  writeChunkHeader,
  writeSimpleReplyHeader,
  writeUInt64,
} from './framing.ts';
import type { NegotiatedExport } from './handshake.ts';
import { buildBlockStatusReply, buildReadReplyPlan, type ReadPlan } from './read-plan.ts';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_DISC,
  NBD_CMD_FLAG_DF,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_EINVAL,
  NBD_ENOSPC,
  NBD_ENOTSUP,
  NBD_EPERM,
  NBD_ESHUTDOWN,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REQUEST_MAGIC,
  REQUEST_HEADER_BYTES,
  SIMPLE_REPLY_BYTES,
  STRUCTURED_CHUNK_HEADER_BYTES,
  commandName,
} from './protocol.ts';

export interface TransmissionLimits {
  /** Largest READ/WRITE/WRITE_ZEROES length; also the advertised maximum block size. */
  maxRequestBytes: number;
  /** Stop reading the socket while more payload bytes than this are being served. */
  maxInFlightBytes: number;
  /** Stop reading the socket while this many requests are being served. */
  maxInFlightRequests: number;
  /** Stop reading the socket while this many reply bytes wait for the client. */
  maxQueuedReplyBytes: number;
}

export interface TransmissionHooks {
  /** Called whenever the last in-flight request settles. */
  idle(): void;
}

const FUA: IoOptions = Object.freeze({ fua: true });
const ZEROES_PLAIN: WriteZeroesOptions = Object.freeze({});
const ZEROES_FUA: WriteZeroesOptions = Object.freeze({ fua: true });
const ZEROES_NO_HOLE: WriteZeroesOptions = Object.freeze({ noHole: true });
const ZEROES_NO_HOLE_FUA: WriteZeroesOptions = Object.freeze({ noHole: true, fua: true });

const READ_FLAGS = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_DF;
const WRITE_FLAGS = NBD_CMD_FLAG_FUA;
const ZERO_FLAGS = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
const STATUS_FLAGS = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_REQ_ONE;

/**
 * The transmission phase of one connection: parses pipelined requests out of
 * the byte stream, runs them against the device concurrently and answers each
 * with one socket write as it completes (so replies come out of order).
 * Reading pauses while too much is in flight or queued for the client.
 */
export class Transmission {
  private readonly device: BlockDevice;
  private readonly sizeBytes: number;
  private readonly structured: boolean;
  private readonly blockStatus: boolean;

  /** Header bytes split across chunks are gathered here. */
  private readonly header = Buffer.allocUnsafe(REQUEST_HEADER_BYTES);
  private headerFill = 0;
  /** WRITE payload being gathered across chunks, with its request. */
  private payload: Buffer | null = null;
  private payloadFill = 0;
  private payloadExpected = 0;
  private writeFlags = 0;
  private writeHandleHigh = 0;
  private writeHandleLow = 0;
  private writeOffset = 0;
  /** Payload bytes of a refused WRITE still to skip. */
  private discardRemaining = 0;
  /** Unparsed input held back while reading is paused. */
  private stash: Buffer | null = null;

  private inFlight = 0;
  private inFlightBytes = 0;
  private paused = false;
  private feeding = false;
  private corked = false;
  /** DISC received or the stream is unusable: parse nothing more. */
  private stopped = false;
  private endWhenIdle = false;
  private shuttingDown = false;
  private socketClosed = false;

  constructor(
    private readonly socket: Socket,
    negotiated: NegotiatedExport,
    private readonly logger: Logger,
    private readonly limits: TransmissionLimits,
    private readonly hooks: TransmissionHooks,
  ) {
    this.device = negotiated.device;
    this.sizeBytes = negotiated.sizeBytes;
    this.structured = negotiated.structuredReplies;
    this.blockStatus = negotiated.blockStatus;
    socket.on('drain', this.onDrain);
  }

  get requestsInFlight(): number {
    return this.inFlight;
  }

  /** Server shutdown: refuse new requests with ESHUTDOWN and end once idle. */
  shutdown(): void {
    this.shuttingDown = true;
    this.endWhenIdle = true;
    if (this.inFlight === 0) this.endSocket();
  }

  /** The socket is gone: drop replies, keep serving what is in flight to completion. */
  socketGone(): void {
    this.socketClosed = true;
    this.stopped = true;
    this.stash = null;
    this.payload = null;
  }

  feed(input: Buffer): void {
    if (this.stopped) return;
    let chunk = input;
    if (this.stash !== null) {
      chunk = Buffer.concat([this.stash, input]);
      this.stash = null;
    }
    this.feeding = true;
    try {
      this.parse(chunk);
    } finally {
      this.feeding = false;
    }
    if (!this.paused && !this.stopped && this.socket.isPaused()) this.socket.resume();
  }

  private parse(chunk: Buffer): void {
    const end = chunk.length;
    let at = 0;
    while (at < end && !this.stopped) {
      if (this.payload !== null) {
        const take = Math.min(this.payload.length - this.payloadFill, end - at);
        chunk.copy(this.payload, this.payloadFill, at, at + take);
        this.payloadFill += take;
        at += take;
        if (this.payloadFill === this.payload.length) {
          const data = this.payload;
          this.payload = null;
          this.write(data);
        }
        continue;
      }
      if (this.payloadExpected > 0) {
        const length = this.payloadExpected;
        this.payloadExpected = 0;
        if (end - at >= length) {
          // The whole payload is in this chunk: hand the device a view, no copy.
          const data = chunk.subarray(at, at + length);
          at += length;
          this.write(data);
        } else {
          this.payload = Buffer.allocUnsafe(length);
          this.payloadFill = 0;
        }
        continue;
      }
      if (this.discardRemaining > 0) {
        const take = Math.min(this.discardRemaining, end - at);
        this.discardRemaining -= take;
        at += take;
        continue;
      }
      if (this.paused) {
        this.stash = chunk.subarray(at);
        return;
      }
      if (this.headerFill === 0 && end - at >= REQUEST_HEADER_BYTES) {
        this.onRequest(chunk, at);
        at += REQUEST_HEADER_BYTES;
      } else {
        const take = Math.min(REQUEST_HEADER_BYTES - this.headerFill, end - at);
        chunk.copy(this.header, this.headerFill, at, at + take);
        this.headerFill += take;
        at += take;
        if (this.headerFill === REQUEST_HEADER_BYTES) {
          this.headerFill = 0;
          this.onRequest(this.header, 0);
        }
      }
    }
  }

  /** One request header at `at`: validate, then start the command. */
  private onRequest(bytes: Buffer, at: number): void {
    if (bytes.readUInt32BE(at) !== NBD_REQUEST_MAGIC) {
      this.violation(`bad request magic 0x${bytes.readUInt32BE(at).toString(16)}`);
      return;
    }
    const flags = bytes.readUInt16BE(at + 4);
    const type = bytes.readUInt16BE(at + 6);
    const high = bytes.readUInt32BE(at + 8);
    const low = bytes.readUInt32BE(at + 12);
    const offset = readUInt64(bytes, at + 16);
    const length = bytes.readUInt32BE(at + 24);

    if (type === NBD_CMD_WRITE) {
      this.onWriteHeader(flags, high, low, offset, length);
      return;
    }
    if (type === NBD_CMD_DISC) {
      this.logger.debug('nbd client disconnect requested');
      this.stopped = true;
      this.stash = null;
      this.endWhenIdle = true;
      if (this.inFlight === 0) this.endSocket();
      return;
    }
    if (this.shuttingDown) {
      this.replyError(high, low, NBD_ESHUTDOWN, 'server is shutting down');
      return;
    }
    switch (type) {
      case NBD_CMD_READ: {
        const refusal = this.checkRange(flags, READ_FLAGS, offset, length, true, false);
        if (refusal !== 0) return this.refuse(type, high, low, refusal, offset, length, flags);
        if ((flags & NBD_CMD_FLAG_DF) !== 0 && !this.structured) {
          return this.refuse(type, high, low, NBD_EINVAL, offset, length, flags);
        }
        if (length === 0) return this.replyEmptyRead(high, low);
        this.admit(length);
        void this.read(high, low, offset, length, flags);
        return;
      }
      case NBD_CMD_FLUSH:
        if ((flags & ~NBD_CMD_FLAG_FUA) !== 0) return this.refuse(type, high, low, NBD_EINVAL, offset, length, flags);
        this.admit(0);
        void this.flush(high, low);
        return;
      case NBD_CMD_TRIM: {
        const refusal = this.checkRange(flags, WRITE_FLAGS, offset, length, false, true);
        if (refusal !== 0) return this.refuse(type, high, low, refusal === NBD_ENOSPC ? NBD_EINVAL : refusal, offset, length, flags);
        if (length === 0) return this.replyOk(high, low);
        this.admit(0);
        void this.trim(high, low, offset, length, flags);
        return;
      }
      case NBD_CMD_WRITE_ZEROES: {
        const refusal = this.checkRange(flags, ZERO_FLAGS, offset, length, false, true);
        if (refusal !== 0) return this.refuse(type, high, low, refusal, offset, length, flags);
        if ((flags & NBD_CMD_FLAG_FAST_ZERO) !== 0 && (flags & NBD_CMD_FLAG_NO_HOLE) !== 0) {
          // Provisioning real zeroes is no faster than writing them.
          this.replyError(high, low, NBD_ENOTSUP, 'fast zero is only possible by releasing tracks');
          return;
        }
        if (length === 0) return this.replyOk(high, low);
        this.admit(0);
        void this.writeZeroes(high, low, offset, length, flags);
        return;
      }
      case NBD_CMD_BLOCK_STATUS: {
        if (!this.blockStatus) return this.refuse(type, high, low, NBD_EINVAL, offset, length, flags, 'no metadata context was negotiated');
        const refusal = this.checkRange(flags, STATUS_FLAGS, offset, length, false, false);
        if (refusal !== 0 || length === 0) return this.refuse(type, high, low, NBD_EINVAL, offset, length, flags);
        this.replyBlockStatus(high, low, offset, length, flags);
        return;
      }
      case NBD_CMD_CACHE: {
        // Some clients send CACHE unadvertised; it is a hint we may ignore.
        const refusal = this.checkRange(flags, 0, offset, length, false, false);
        if (refusal !== 0) return this.refuse(type, high, low, NBD_EINVAL, offset, length, flags);
        this.replyOk(high, low);
        return;
      }
      default:
        this.refuse(type, high, low, NBD_EINVAL, offset, length, flags, `unknown command ${type}`);
    }
  }

  private onWriteHeader(flags: number, high: number, low: number, offset: number, length: number): void {
    let refusal = 0;
    if (this.shuttingDown) refusal = NBD_ESHUTDOWN;
    else refusal = this.checkRange(flags, WRITE_FLAGS, offset, length, true, true);
    if (refusal !== 0) {
      if (refusal === NBD_ESHUTDOWN) this.replyError(high, low, refusal, 'server is shutting down');
      else this.refuse(NBD_CMD_WRITE, high, low, refusal, offset, length, 0);
      // The payload follows regardless; skip it without buffering.
      this.discardRemaining = length;
      return;
    }
    if (length === 0) {
      this.replyOk(high, low);
      return;
    }
    this.writeFlags = flags;
    this.writeHandleHigh = high;
    this.writeHandleLow = low;
    this.writeOffset = offset;
    // Admitted once the payload is complete: a client that vanishes mid-payload leaves nothing in flight.
    this.payloadExpected = length;
  }

  /**
   * Returns 0 when the request may run, else the error to answer.
   * Writes past the end get ENOSPC (as the spec asks), everything else EINVAL.
   */
  private checkRange(
    flags: number,
    allowedFlags: number,
    offset: number,
    length: number,
    bounded: boolean,
    writing: boolean,
  ): number {
    if ((flags & ~allowedFlags) !== 0) return NBD_EINVAL;
    if (bounded && length > this.limits.maxRequestBytes) return NBD_EINVAL;
    if (writing && this.device.readOnly) return NBD_EPERM;
    if (offset > this.sizeBytes || length > this.sizeBytes - offset) return writing ? NBD_ENOSPC : NBD_EINVAL;
    return 0;
  }

  private refuse(
    type: number,
    high: number,
    low: number,
    error: number,
    offset: number,
    length: number,
    flags: number,
    reason?: string,
  ): void {
    const message = reason ?? refusalMessage(error, length > this.limits.maxRequestBytes);
    this.logger.warn({ command: commandName(type), offset, length, flags, error }, `nbd request refused: ${message}`);
    this.replyError(high, low, error, message);
  }

  private violation(reason: string): void {
    this.logger.warn({ reason }, 'nbd protocol violation; disconnecting');
    this.stopped = true;
    this.stash = null;
    this.socket.destroy();
  }

  // ---- commands -------------------------------------------------------

  private write(data: Buffer): void {
    this.admit(data.length);
    void this.runWrite(this.writeHandleHigh, this.writeHandleLow, this.writeOffset, data, this.writeFlags);
  }

  private async runWrite(high: number, low: number, offset: number, data: Buffer, flags: number): Promise<void> {
    try {
      await this.device.write(offset, data, (flags & NBD_CMD_FLAG_FUA) !== 0 ? FUA : undefined);
      this.replyOk(high, low);
    } catch (error) {
      this.replyFailure(high, low, error, true, NBD_CMD_WRITE);
    }
    this.settle(data.length);
  }

  private async read(high: number, low: number, offset: number, length: number, flags: number): Promise<void> {
    let reply: Buffer;
    try {
      if (this.structured) {
        reply = await this.structuredRead(high, low, offset, length, flags);
      } else {
        reply = Buffer.allocUnsafe(SIMPLE_REPLY_BYTES + length);
        writeSimpleReplyHeader(reply, 0, 0, high, low);
        await this.device.readInto(offset, reply.subarray(SIMPLE_REPLY_BYTES));
      }
      this.send(reply);
    } catch (error) {
      // Simple replies: error header only, no payload, as the spec requires.
      this.replyFailure(high, low, error, false, NBD_CMD_READ);
    }
    this.settle(length);
  }

  /** Builds the structured reply for a read: holes as OFFSET_HOLE, data read in place. */
  private async structuredRead(high: number, low: number, offset: number, length: number, flags: number): Promise<Buffer> {
    let plan: ReadPlan | null = null;
    try {
      plan = buildReadReplyPlan(this.device.allocationMap(offset, length), offset, length, (flags & NBD_CMD_FLAG_DF) !== 0, high, low);
    } catch (error) {
      this.logger.debug({ err: error }, 'nbd allocation map failed; reading as data');
    }
    if (plan === null) {
      const reply = Buffer.allocUnsafe(DATA_CHUNK_PREFIX_BYTES + length);
      writeChunkHeader(reply, 0, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, high, low, 8 + length);
      writeUInt64(reply, offset, STRUCTURED_CHUNK_HEADER_BYTES);
      await this.device.readInto(offset, reply.subarray(DATA_CHUNK_PREFIX_BYTES));
      return reply;
    }
    const { reply, reads } = plan;
    if (reads.length === 1) {
      await this.device.readInto(reads[0].offset, reply.subarray(reads[0].at, reads[0].at + reads[0].length));
    } else if (reads.length > 1) {
      const device = this.device;
      await Promise.all(reads.map((part) => device.readInto(part.offset, reply.subarray(part.at, part.at + part.length))));
    }
    return reply;
  }

  private async flush(high: number, low: number): Promise<void> {
    try {
      await this.device.flush();
      this.replyOk(high, low);
    } catch (error) {
      this.replyFailure(high, low, error, true, NBD_CMD_FLUSH);
    }
    this.settle(0);
  }

  private async trim(high: number, low: number, offset: number, length: number, flags: number): Promise<void> {
    try {
      await this.device.trim(offset, length, (flags & NBD_CMD_FLAG_FUA) !== 0 ? FUA : undefined);
      this.replyOk(high, low);
    } catch (error) {
      this.replyFailure(high, low, error, false, NBD_CMD_TRIM);
    }
    this.settle(0);
  }

  private async writeZeroes(high: number, low: number, offset: number, length: number, flags: number): Promise<void> {
    const fua = (flags & NBD_CMD_FLAG_FUA) !== 0;
    const options = (flags & NBD_CMD_FLAG_NO_HOLE) !== 0
      ? (fua ? ZEROES_NO_HOLE_FUA : ZEROES_NO_HOLE)
      : (fua ? ZEROES_FUA : ZEROES_PLAIN);
    try {
      await this.device.writeZeroes(offset, length, options);
      this.replyOk(high, low);
    } catch (error) {
      this.replyFailure(high, low, error, true, NBD_CMD_WRITE_ZEROES);
    }
    this.settle(0);
  }

  private replyBlockStatus(high: number, low: number, offset: number, length: number, flags: number): void {
    try {
      const runs = this.device.allocationMap(offset, length);
      this.send(buildBlockStatusReply(runs, length, (flags & NBD_CMD_FLAG_REQ_ONE) !== 0, high, low));
    } catch (error) {
      this.replyFailure(high, low, error, false, NBD_CMD_BLOCK_STATUS);
    }
  }

  // ---- replies --------------------------------------------------------

  private replyOk(high: number, low: number): void {
    this.send(simpleReply(0, high, low));
  }

  private replyEmptyRead(high: number, low: number): void {
    if (!this.structured) return this.replyOk(high, low);
    const reply = Buffer.allocUnsafe(STRUCTURED_CHUNK_HEADER_BYTES);
    writeChunkHeader(reply, 0, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, high, low, 0);
    this.send(reply);
  }

  private replyError(high: number, low: number, error: number, message: string): void {
    this.send(this.structured ? structuredError(error, high, low, message) : simpleReply(error, high, low));
  }

  private replyFailure(high: number, low: number, error: unknown, writing: boolean, type: number): void {
    const code = nbdErrorFor(error, writing);
    if (isExpectedRefusal(error)) this.logger.debug({ err: error, command: commandName(type) }, 'nbd request failed');
    else this.logger.error({ err: error, command: commandName(type) }, 'nbd request failed');
    this.replyError(high, low, code, clientMessage(error));
  }

  /** One socket write per reply; replies finishing in the same tick share one writev. */
  private send(reply: Buffer): void {
    if (this.socketClosed || !this.socket.writable) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.socket.write(reply);
    if (!this.paused && this.socket.writableLength > this.limits.maxQueuedReplyBytes) this.pause();
  }

  private readonly uncork = (): void => {
    this.corked = false;
    if (!this.socketClosed) this.socket.uncork();
  };

  // ---- flow control ---------------------------------------------------

  private admit(bytes: number): void {
    this.inFlight++;
    this.inFlightBytes += bytes;
    if (!this.paused && (this.inFlightBytes > this.limits.maxInFlightBytes || this.inFlight >= this.limits.maxInFlightRequests)) {
      this.pause();
    }
  }

  private settle(bytes: number): void {
    this.inFlight--;
    this.inFlightBytes -= bytes;
    if (this.paused) this.maybeResume();
    if (this.inFlight === 0) {
      if (this.endWhenIdle) this.endSocket();
      this.hooks.idle();
    }
  }

  private pause(): void {
    this.paused = true;
    this.socket.pause();
  }

  private readonly onDrain = (): void => {
    if (this.paused) this.maybeResume();
  };

  private maybeResume(): void {
    if (
      this.inFlightBytes > this.limits.maxInFlightBytes / 2 ||
      this.inFlight >= this.limits.maxInFlightRequests / 2 ||
      this.socket.writableLength > this.limits.maxQueuedReplyBytes / 2
    ) {
      return;
    }
    this.paused = false;
    if (this.feeding || this.stopped) return;
    const stash = this.stash;
    if (stash !== null) {
      this.stash = null;
      this.feed(stash);
    } else if (this.socket.isPaused()) {
      this.socket.resume();
    }
  }

  private endSocket(): void {
    if (this.socketClosed) return;
    this.stopped = true;
    this.socket.end();
  }
}

function refusalMessage(error: number, oversized: boolean): string {
  switch (error) {
    case NBD_EINVAL:
      return oversized ? 'request larger than the maximum block size' : 'invalid request (flags or range)';
    case NBD_ENOSPC:
      return 'write past the end of the export';
    case NBD_EPERM:
      return 'export is read-only';
    default:
      return 'request refused';
  }
}
