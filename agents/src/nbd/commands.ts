import type { Logger } from 'pino';
import type { BlockDevice, IoOptions, WriteZeroesOptions } from '../storage/block-device.ts';
import { dataBuffers } from './buffer-pool.ts';
import { clientMessage, isExpectedRefusal, nbdErrorFor } from './errors.ts';
import {
  DATA_CHUNK_PREFIX_BYTES,
  simpleReply,
  structuredError,
  writeChunkHeader,
  writeSimpleReplyHeader,
  writeUInt64,
} from './framing.ts';
import { buildBlockStatusReply, buildReadReplyPlan, type ReadPlan } from './read-plan.ts';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_FLAG_DF,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  SIMPLE_REPLY_BYTES,
  STRUCTURED_CHUNK_HEADER_BYTES,
  commandName,
} from './protocol.ts';
import type { NbdExportMeter } from './meter.ts';

/** Where a command's reply goes, and who hears that it finished. */
export interface CommandHost {
  /** Queues one complete reply on the socket; `sent` runs once the socket is done with it. */
  send(reply: Buffer, sent?: () => void): void;
  /** A request holding `bytes` of payload is now in flight (it settles later). */
  admit(bytes: number): void;
  /** The request holding `bytes` of payload has been answered. */
  settle(bytes: number): void;
}

const FUA: IoOptions = Object.freeze({ fua: true });
const ZEROES_PLAIN: WriteZeroesOptions = Object.freeze({});
const ZEROES_FUA: WriteZeroesOptions = Object.freeze({ fua: true });
const ZEROES_NO_HOLE: WriteZeroesOptions = Object.freeze({ noHole: true });
const ZEROES_NO_HOLE_FUA: WriteZeroesOptions = Object.freeze({ noHole: true, fua: true });

/**
 * Runs validated requests against the device and builds their replies. Each
 * async command answers exactly once and then settles; none ever rejects.
 * Reads land straight in the reply buffer, after its header.
 */
export class Commands {
  constructor(
    private readonly device: BlockDevice,
    private readonly structured: boolean,
    private readonly logger: Logger,
    private readonly host: CommandHost,
    /** Request counts, bytes and latencies of this export (metrics); null when nobody measures. */
    private readonly meter: NbdExportMeter | null = null,
  ) {}

  /** The start of a request, for its meter (0 when nobody measures: no clock read). */
  private started(): number {
    return this.meter === null ? 0 : performance.now();
  }

  /**
   * A WRITE the device can do at once (BlockDevice.writeNow: no FUA, an
   * overwrite in place): done and answered, true; false when runWrite must
   * run it. Nothing is in flight either way.
   */
  writeNow(high: number, low: number, offset: number, data: Buffer, flags: number): boolean {
    if ((flags & NBD_CMD_FLAG_FUA) !== 0 || this.device.writeNow === undefined) return false;
    const started = this.started();
    let done: boolean;
    try {
      done = this.device.writeNow(offset, data);
    } catch (error) {
      this.logger.debug({ err: error }, 'nbd fast write failed; writing the slow way');
      done = false;
    }
    if (done) {
      this.replyOk(high, low);
      this.meter?.write.answered(started, data.length);
    }
    return done;
  }

  async runWrite(high: number, low: number, offset: number, data: Buffer, flags: number): Promise<void> {
    const started = this.started();
    try {
      await this.device.write(offset, data, (flags & NBD_CMD_FLAG_FUA) !== 0 ? FUA : undefined);
      this.replyOk(high, low);
      this.meter?.write.answered(started, data.length);
    } catch (error) {
      this.replyFailure(high, low, error, true, NBD_CMD_WRITE);
      this.meter?.write.failed(started);
    }
    this.host.settle(data.length);
  }

  /**
   * Answers a validated READ. Reads land in a pooled reply buffer (see
   * buffer-pool.ts), given back once the socket has sent it; replies with
   * holes have their own. When the device can read the range at once
   * (BlockDevice.readIntoNow: all of it in the page cache) the reply is
   * sent before this returns, with no promise and nothing in flight;
   * otherwise the request is admitted and finished asynchronously.
   */
  read(high: number, low: number, offset: number, length: number, flags: number): void {
    const started = this.started();
    const plan = this.structured ? this.planRead(high, low, offset, length, flags) : null;
    let pooled: Buffer | null = null;
    if (plan === null) {
      const prefix = this.structured ? DATA_CHUNK_PREFIX_BYTES : SIMPLE_REPLY_BYTES;
      pooled = dataBuffers.take(prefix + length);
      if (this.structured) {
        writeChunkHeader(pooled, 0, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, high, low, 8 + length);
        writeUInt64(pooled, offset, STRUCTURED_CHUNK_HEADER_BYTES);
      } else {
        writeSimpleReplyHeader(pooled, 0, 0, high, low);
      }
      if (this.readNow(offset, pooled.subarray(prefix))) {
        this.host.send(pooled, this.givePooled(pooled));
        this.meter?.read.answered(started, length);
        return;
      }
    }
    this.host.admit(length);
    void this.readLater(high, low, offset, length, plan, pooled, started);
  }

  private readNow(offset: number, target: Buffer): boolean {
    if (this.device.readIntoNow === undefined) return false;
    try {
      return this.device.readIntoNow(offset, target);
    } catch (error) {
      this.logger.debug({ err: error }, 'nbd fast read failed; reading the slow way');
      return false;
    }
  }

  private givePooled(buffer: Buffer): () => void {
    return () => dataBuffers.give(buffer);
  }

  /** The asynchronous rest of `read`: `pooled` is the reply buffer of a single data chunk (header filled), else `plan`'s. */
  private async readLater(
    high: number,
    low: number,
    offset: number,
    length: number,
    plan: ReadPlan | null,
    pooled: Buffer | null,
    started: number,
  ): Promise<void> {
    try {
      let reply: Buffer;
      if (pooled !== null) {
        reply = pooled;
        await this.device.readInto(offset, reply.subarray(this.structured ? DATA_CHUNK_PREFIX_BYTES : SIMPLE_REPLY_BYTES));
      } else {
        reply = await this.readPlanned(plan!);
      }
      this.host.send(reply, pooled !== null ? this.givePooled(pooled) : undefined);
      this.meter?.read.answered(started, length);
    } catch (error) {
      // A failed read's buffer is not given back: another part of it may still be in flight.
      // Simple replies: error header only, no payload, as the spec requires.
      this.replyFailure(high, low, error, false, NBD_CMD_READ);
      this.meter?.read.failed(started);
    }
    this.host.settle(length);
  }

  /** The structured reply plan for a read with holes; null when one data chunk answers it. */
  private planRead(high: number, low: number, offset: number, length: number, flags: number): ReadPlan | null {
    try {
      return buildReadReplyPlan(this.device.allocationMap(offset, length), offset, length, (flags & NBD_CMD_FLAG_DF) !== 0, high, low);
    } catch (error) {
      this.logger.debug({ err: error }, 'nbd allocation map failed; reading as data');
      return null;
    }
  }

  /** Fills a planned reply: holes as OFFSET_HOLE chunks, data read in place. */
  private async readPlanned(plan: ReadPlan): Promise<Buffer> {
    const { reply, reads } = plan;
    if (reads.length === 1) {
      await this.device.readInto(reads[0].offset, reply.subarray(reads[0].at, reads[0].at + reads[0].length));
    } else if (reads.length > 1) {
      const device = this.device;
      await Promise.all(reads.map((part) => device.readInto(part.offset, reply.subarray(part.at, part.at + part.length))));
    }
    return reply;
  }

  async flush(high: number, low: number): Promise<void> {
    const started = this.started();
    try {
      await this.device.flush();
      this.replyOk(high, low);
      this.meter?.flush.answered(started, 0);
    } catch (error) {
      this.replyFailure(high, low, error, true, NBD_CMD_FLUSH);
      this.meter?.flush.failed(started);
    }
    this.host.settle(0);
  }

  async trim(high: number, low: number, offset: number, length: number, flags: number): Promise<void> {
    const started = this.started();
    try {
      await this.device.trim(offset, length, (flags & NBD_CMD_FLAG_FUA) !== 0 ? FUA : undefined);
      this.replyOk(high, low);
      this.meter?.trim.answered(started, 0);
    } catch (error) {
      this.replyFailure(high, low, error, false, NBD_CMD_TRIM);
      this.meter?.trim.failed(started);
    }
    this.host.settle(0);
  }

  async writeZeroes(high: number, low: number, offset: number, length: number, flags: number): Promise<void> {
    const started = this.started();
    const fua = (flags & NBD_CMD_FLAG_FUA) !== 0;
    const options = (flags & NBD_CMD_FLAG_NO_HOLE) !== 0
      ? (fua ? ZEROES_NO_HOLE_FUA : ZEROES_NO_HOLE)
      : (fua ? ZEROES_FUA : ZEROES_PLAIN);
    try {
      await this.device.writeZeroes(offset, length, options);
      this.replyOk(high, low);
      this.meter?.writeZeroes.answered(started, 0);
    } catch (error) {
      this.replyFailure(high, low, error, true, NBD_CMD_WRITE_ZEROES);
      this.meter?.writeZeroes.failed(started);
    }
    this.host.settle(0);
  }

  replyBlockStatus(high: number, low: number, offset: number, length: number, flags: number): void {
    const started = this.started();
    try {
      const runs = this.device.allocationMap(offset, length);
      this.host.send(buildBlockStatusReply(runs, length, (flags & NBD_CMD_FLAG_REQ_ONE) !== 0, high, low));
      this.meter?.blockStatus.answered(started, 0);
    } catch (error) {
      this.replyFailure(high, low, error, false, NBD_CMD_BLOCK_STATUS);
      this.meter?.blockStatus.failed(started);
    }
  }

  replyOk(high: number, low: number): void {
    this.host.send(simpleReply(0, high, low));
  }

  replyEmptyRead(high: number, low: number): void {
    if (!this.structured) return this.replyOk(high, low);
    const reply = Buffer.allocUnsafe(STRUCTURED_CHUNK_HEADER_BYTES);
    writeChunkHeader(reply, 0, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, high, low, 0);
    this.host.send(reply);
  }

  replyError(high: number, low: number, error: number, message: string): void {
    this.host.send(this.structured ? structuredError(error, high, low, message) : simpleReply(error, high, low));
  }

  /** Answers a failed command. Never throws: a command's promise must not reject. */
  private replyFailure(high: number, low: number, error: unknown, writing: boolean, type: number): void {
    const code = nbdErrorFor(error, writing);
    try {
      if (isExpectedRefusal(error)) this.logger.debug({ err: error, command: commandName(type) }, 'nbd request failed');
      else this.logger.error({ err: error, command: commandName(type) }, 'nbd request failed');
      this.replyError(high, low, code, clientMessage(error));
    } catch {
      this.host.send(simpleReply(code, high, low));
    }
  }

}
