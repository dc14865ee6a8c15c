import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { BlockDevice } from '../storage/block-device.ts';
import { dataBuffers } from './buffer-pool.ts';
import { Commands, type CommandHost } from './commands.ts';
import { offloadableFd, sendOffloaded } from './socket-send.ts';
import { readUInt64 } from './framing.ts';
import type { NegotiatedExport } from './handshake.ts';
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
  NBD_REQUEST_MAGIC,
  REQUEST_HEADER_BYTES,
  commandName,
} from './protocol.ts';
import type { NbdExportMeter } from './meter.ts';

export interface TransmissionLimits {
  /** Largest READ or WRITE length; also the advertised maximum block size. */
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

const MAX_REFUSAL_WARNINGS = 20;
/** How long an ended connection may wait for the client to close its side. */
const LINGER_MS = 5_000;
const READ_FLAGS = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_DF;
const WRITE_FLAGS = NBD_CMD_FLAG_FUA;
const ZERO_FLAGS = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
const STATUS_FLAGS = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_REQ_ONE;
/** A payload with at least this much still to come is read straight into its buffer (see nextReadTarget). */
const DIRECT_READ_MIN_BYTES = 16 * 1024;
/** Replies this large are written one at a time, not batched (see sendBulk). */
const BULK_REPLY_BYTES = 128 * 1024;
/** Payloads are read straight into place at most this much per socket read. */
const DIRECT_READ_MAX_BYTES = 1024 * 1024;
/** Connections of this process in the transmission phase whose socket is open (see pumpBulk). */
let openTransmissions = 0;

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
  private readonly commands: Commands;

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
  /** The chunk being parsed will be overwritten by the next socket read. */
  private transient = false;

  private inFlight = 0;
  private inFlightBytes = 0;
  private paused = false;
  /** Large replies waiting to be written one at a time (sendBulk). */
  private readonly bulk: Array<{ reply: Buffer; sent?: () => void }> = [];
  private bulkBytes = 0;
  /** Bytes of the large reply a thread-pool thread is sending (socket-send.ts). */
  private offloadedBytes = 0;
  /** A large reply is being written, or waits: every reply queues behind it. */
  private pumping = false;
  /** The socket is to be ended once the large replies queued are written. */
  private endAfterBulk = false;
  private feeding = false;
  /** Replies sent meanwhile stay corked until the batch ends (see send). */
  private batching = false;
  private corked = false;
  private uncorkScheduled = false;
  /** DISC received or the stream is unusable: parse nothing more. */
  private stopped = false;
  private endWhenIdle = false;
  private shuttingDown = false;
  private socketClosed = false;
  private refusals = 0;

  constructor(
    private readonly socket: Socket,
    negotiated: NegotiatedExport,
    private readonly logger: Logger,
    private readonly limits: TransmissionLimits,
    private readonly hooks: TransmissionHooks,
    meter: NbdExportMeter | null = null,
  ) {
    this.device = negotiated.device;
    this.sizeBytes = negotiated.sizeBytes;
    this.structured = negotiated.structuredReplies;
    this.blockStatus = negotiated.blockStatus;
    const host: CommandHost = { send: this.send, admit: this.admit, settle: this.settle };
    this.commands = new Commands(this.device, this.structured, logger, host, meter);
    socket.on('drain', this.onDrain);
    openTransmissions++;
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
    if (!this.socketClosed) openTransmissions--;
    this.socketClosed = true;
    this.stopped = true;
    this.stash = null;
    this.payload = null;
  }

  /**
   * Parses bytes from the socket. `transient` input lives in a buffer the
   * socket reads into again (see socket-reads.ts): whatever must outlive
   * this call is copied.
   */
  feed(input: Buffer, transient = false): void {
    if (this.stopped) return;
    let chunk = input;
    if (this.stash !== null) {
      chunk = Buffer.concat([this.stash, input]);
      this.stash = null;
      transient = false;
    }
    this.feeding = true;
    this.transient = transient;
    const outer = !this.batching;
    this.batching = true;
    try {
      this.parse(chunk);
    } finally {
      this.feeding = false;
      this.transient = false;
      if (outer) this.endBatch();
    }
    if (!this.paused && !this.stopped && this.socket.isPaused()) this.socket.resume();
  }

  /**
   * Where the next socket read should land: the rest of a WRITE payload
   * being gathered, when much of it is still to come (the kernel then
   * copies it into place once); null for the connection's read buffer.
   */
  nextReadTarget(): Buffer | null {
    const payload = this.payload;
    if (payload === null || this.stopped || payload.length - this.payloadFill < DIRECT_READ_MIN_BYTES) return null;
    return payload.subarray(this.payloadFill, Math.min(payload.length, this.payloadFill + DIRECT_READ_MAX_BYTES));
  }

  /** `bytes` were read into the target nextReadTarget() gave. */
  fedDirectly(bytes: number): void {
    const payload = this.payload;
    if (this.stopped || payload === null) return;
    this.payloadFill += bytes;
    if (this.payloadFill === payload.length) {
      this.payload = null;
      this.batching = true;
      try {
        this.write(payload, true);
      } finally {
        this.endBatch();
      }
    }
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
          this.write(data, true);
        }
        continue;
      }
      if (this.payloadExpected > 0) {
        const length = this.payloadExpected;
        this.payloadExpected = 0;
        if (end - at >= length) {
          // The whole payload is in this chunk: hand the device a view, no copy
          // (a transient one only to a write done at once, else a copy).
          const data = chunk.subarray(at, at + length);
          at += length;
          if (!this.transient) this.write(data);
          else if (!this.writeNow(data)) {
            const copy = dataBuffers.take(length);
            data.copy(copy);
            this.writeLater(copy, true);
          }
        } else {
          this.payload = dataBuffers.take(length);
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
        this.stash = this.transient ? Buffer.from(chunk.subarray(at)) : chunk.subarray(at);
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
      this.commands.replyError(high, low, NBD_ESHUTDOWN, 'server is shutting down');
      return;
    }
    switch (type) {
      case NBD_CMD_READ: {
        const refusal = this.checkRange(flags, READ_FLAGS, offset, length, true, false);
        if (refusal !== 0) return this.refuse(type, high, low, refusal, offset, length, flags);
        if ((flags & NBD_CMD_FLAG_DF) !== 0 && !this.structured) {
          return this.refuse(type, high, low, NBD_EINVAL, offset, length, flags);
        }
        if (length === 0) return this.commands.replyEmptyRead(high, low);
        this.commands.read(high, low, offset, length, flags);
        return;
      }
      case NBD_CMD_FLUSH:
        if ((flags & ~NBD_CMD_FLAG_FUA) !== 0) return this.refuse(type, high, low, NBD_EINVAL, offset, length, flags);
        this.admit(0);
        void this.commands.flush(high, low);
        return;
      case NBD_CMD_TRIM: {
        const refusal = this.checkRange(flags, WRITE_FLAGS, offset, length, false, true);
        if (refusal !== 0) return this.refuse(type, high, low, refusal === NBD_ENOSPC ? NBD_EINVAL : refusal, offset, length, flags);
        if (length === 0) return this.commands.replyOk(high, low);
        this.admit(0);
        void this.commands.trim(high, low, offset, length, flags);
        return;
      }
      case NBD_CMD_WRITE_ZEROES: {
        const refusal = this.checkRange(flags, ZERO_FLAGS, offset, length, false, true);
        if (refusal !== 0) return this.refuse(type, high, low, refusal, offset, length, flags);
        if ((flags & NBD_CMD_FLAG_FAST_ZERO) !== 0 && (flags & NBD_CMD_FLAG_NO_HOLE) !== 0) {
          // Provisioning real zeroes is no faster than writing them.
          this.commands.replyError(high, low, NBD_ENOTSUP, 'fast zero is only possible by releasing tracks');
          return;
        }
        if (length === 0) return this.commands.replyOk(high, low);
        this.admit(0);
        void this.commands.writeZeroes(high, low, offset, length, flags);
        return;
      }
      case NBD_CMD_BLOCK_STATUS: {
        if (!this.blockStatus) return this.refuse(type, high, low, NBD_EINVAL, offset, length, flags, 'no metadata context was negotiated');
        const refusal = this.checkRange(flags, STATUS_FLAGS, offset, length, false, false);
        if (refusal !== 0 || length === 0) return this.refuse(type, high, low, NBD_EINVAL, offset, length, flags);
        this.commands.replyBlockStatus(high, low, offset, length, flags);
        return;
      }
      case NBD_CMD_CACHE: {
        // Some clients send CACHE unadvertised; it is a hint we may ignore.
        const refusal = this.checkRange(flags, 0, offset, length, false, false);
        if (refusal !== 0) return this.refuse(type, high, low, NBD_EINVAL, offset, length, flags);
        this.commands.replyOk(high, low);
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
      if (refusal === NBD_ESHUTDOWN) this.commands.replyError(high, low, refusal, 'server is shutting down');
      else this.refuse(NBD_CMD_WRITE, high, low, refusal, offset, length, 0);
      // The payload follows regardless; skip it without buffering.
      this.discardRemaining = length;
      return;
    }
    if (length === 0) {
      this.commands.replyOk(high, low);
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
    // A misbehaving client must not flood the log: the first few refusals are warnings.
    this.refusals++;
    const details = { command: commandName(type), offset, length, flags, error };
    if (this.refusals <= MAX_REFUSAL_WARNINGS) this.logger.warn(details, `nbd request refused: ${message}`);
    else this.logger.debug(details, `nbd request refused: ${message}`);
    if (this.refusals === MAX_REFUSAL_WARNINGS) this.logger.warn('further refusals on this connection are logged at debug level');
    this.commands.replyError(high, low, error, message);
  }

  private violation(reason: string): void {
    this.logger.warn({ reason }, 'nbd protocol violation; disconnecting');
    this.stopped = true;
    this.stash = null;
    this.socket.destroy();
  }

  /** Runs the WRITE whose payload is `data`: at once when the device can (writeNow), else asynchronously. */
  private write(data: Buffer, pooled = false): void {
    if (this.writeNow(data)) {
      if (pooled) dataBuffers.give(data);
    } else {
      this.writeLater(data, pooled);
    }
  }

  /** A write done and answered at once (Commands.writeNow): nothing in flight, `data` is free again. */
  private writeNow(data: Buffer): boolean {
    return this.commands.writeNow(this.writeHandleHigh, this.writeHandleLow, this.writeOffset, data, this.writeFlags);
  }

  private writeLater(data: Buffer, pooled: boolean): void {
    this.admit(data.length);
    const done = this.commands.runWrite(this.writeHandleHigh, this.writeHandleLow, this.writeOffset, data, this.writeFlags);
    // The device is done with `data` once the write settles (BlockDevice.write's contract).
    if (pooled) void done.finally(() => dataBuffers.give(data));
    else void done;
  }

  // ---- replies and flow control ----------------------------------------

  /**
   * One socket write per reply; replies sent while one batch of input is
   * parsed (requests done at once) leave together at its end, replies
   * finishing asynchronously in the same turn of the event loop leave
   * together at its check phase (setImmediate): one write or writev each.
   * `sent` runs once the socket no longer needs `reply`.
   */
  private readonly send = (reply: Buffer, sent?: () => void): void => {
    if (this.socketClosed || !this.socket.writable) {
      sent?.();
      return;
    }
    // While large replies are queued, everything queues behind them: replies never interleave on the wire.
    if (reply.length >= BULK_REPLY_BYTES || this.pumping) {
      this.sendBulk(reply, sent);
      return;
    }
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
    }
    if (!this.batching && !this.uncorkScheduled) {
      this.uncorkScheduled = true;
      setImmediate(this.uncork);
    }
    if (sent) this.socket.write(reply, () => sent());
    else this.socket.write(reply);
    if (!this.paused && this.queuedReplyBytes() > this.limits.maxQueuedReplyBytes) this.pause();
  };

  /**
   * Large replies (READ data) leave one at a time: each is written once the
   * one before it was handed to the kernel, with a turn of the event loop in
   * between. Batched in one writev, sixteen 1 MiB replies kept the event loop
   * in the kernel for up to 20 ms, and every other connection's replies
   * waited behind them (a hot 4K reader's p99 went from ~0.15 to ~15 ms
   * beside a cold sequential reader; strace -T of the main thread). Each
   * reply is one write: slicing one into 256 KiB writes cost more turns per
   * MiB and measured no better. Replies sent meanwhile queue behind (send).
   * On a plaintext socket a thread-pool thread writes each large reply
   * (socket-send.ts): those writes were half of the event loop's CPU beside
   * a cold sequential reader.
   */
  private sendBulk(reply: Buffer, sent?: () => void): void {
    this.bulk.push({ reply, sent });
    this.bulkBytes += reply.length;
    if (!this.paused && this.queuedReplyBytes() > this.limits.maxQueuedReplyBytes) this.pause();
    if (!this.pumping) this.pumpBulk();
  }

  private readonly pumpBulk = (): void => {
    const next = this.bulk.shift();
    if (!next) {
      this.pumping = false;
      if (this.endAfterBulk) this.endSocket();
      return;
    }
    this.pumping = true;
    this.bulkBytes -= next.reply.length;
    if (this.socketClosed || !this.socket.writable) {
      next.sent?.();
      setImmediate(this.pumpBulk);
      return;
    }
    // Only while other connections wait for the event loop and this one streams (more requests in
    // flight or replies queued). A lone reply (qd1) is written sooner from here than through two
    // thread-pool round trips (read, then send), and a single client streaming warm data lost about
    // a quarter of its seq 1M qd16 throughput to the hand-offs between sends.
    const offload = openTransmissions > 1 && (this.inFlight > 1 || this.bulk.length > 0);
    const fd = offload && next.reply.length >= BULK_REPLY_BYTES ? offloadableFd(this.socket) : -1;
    if (fd >= 0) {
      this.offloadedBytes = next.reply.length;
      void sendOffloaded(fd, next.reply).then((bytes) => this.offloadedSent(next, bytes));
      return;
    }
    this.writeBulk(next, next.reply);
  };

  /** Writes (the rest of) a large reply through the stream, then the next. */
  private writeBulk(next: { reply: Buffer; sent?: () => void }, bytes: Buffer): void {
    this.socket.write(bytes, () => {
      next.sent?.();
      if (this.paused) this.maybeResume();
      setImmediate(this.pumpBulk);
    });
  }

  /**
   * A thread-pool thread sent `bytes` of `next.reply` (socket-send.ts): the
   * rest, if any, goes through the stream; an error means part of a reply
   * may be on the wire, so the connection ends.
   */
  private offloadedSent(next: { reply: Buffer; sent?: () => void }, bytes: number): void {
    this.offloadedBytes = 0;
    if (bytes < 0) {
      this.logger.debug({ errno: -bytes }, 'nbd reply send failed; closing the connection');
      next.sent?.();
      this.socket.destroy();
      setImmediate(this.pumpBulk);
      return;
    }
    if (bytes < next.reply.length && !this.socketClosed && this.socket.writable) {
      this.writeBulk(next, next.reply.subarray(bytes));
      return;
    }
    next.sent?.();
    if (this.paused) this.maybeResume();
    // Already a turn of its own (the thread pool's completion): the next one may start now.
    this.pumpBulk();
  }

  private queuedReplyBytes(): number {
    return this.socket.writableLength + this.bulkBytes + this.offloadedBytes;
  }

  private readonly uncork = (): void => {
    this.uncorkScheduled = false;
    if (!this.batching) this.releaseReplies();
  };

  /** The end of a batch of input: its replies leave now. */
  private endBatch(): void {
    this.batching = false;
    this.releaseReplies();
  }

  private releaseReplies(): void {
    if (!this.corked) return;
    this.corked = false;
    if (!this.socketClosed) this.socket.uncork();
  }

  // ---- flow control ---------------------------------------------------

  private readonly admit = (bytes: number): void => {
    this.inFlight++;
    this.inFlightBytes += bytes;
    if (!this.paused && (this.inFlightBytes > this.limits.maxInFlightBytes || this.inFlight >= this.limits.maxInFlightRequests)) {
      this.pause();
    }
  };

  private readonly settle = (bytes: number): void => {
    this.inFlight--;
    this.inFlightBytes -= bytes;
    if (this.paused) this.maybeResume();
    if (this.inFlight === 0) {
      if (this.endWhenIdle) this.endSocket();
      this.hooks.idle();
    }
  };

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
      this.queuedReplyBytes() > this.limits.maxQueuedReplyBytes / 2
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
    if (this.pumping) {
      // Large replies still wait to be written (or a thread-pool thread is writing one): end after them.
      this.endAfterBulk = true;
      return;
    }
    this.socket.end();
    // A client that never closes its side must not keep the connection (and its export) forever.
    setTimeout(this.destroyLingering, LINGER_MS).unref();
  }

  private readonly destroyLingering = (): void => {
    if (!this.socketClosed) this.socket.destroy();
  };
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
