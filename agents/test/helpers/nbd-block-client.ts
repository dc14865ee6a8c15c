import { CMD, ERR, RawNbdClient } from './nbd-raw-client.ts';

/** An NBD command the server answered with an error (`errno` is the NBD error value: 1 EPERM, 5 EIO…). */
export class NbdCommandError extends Error {
  constructor(
    readonly command: string,
    readonly errno: number,
  ) {
    super(`NBD ${command} failed with error ${errno}${errno === ERR.EPERM ? ' (EPERM)' : ''}`);
    this.name = 'NbdCommandError';
  }
}

/**
 * A host's view of one export over a real NBD connection (simple replies,
 * one command at a time), shaped like the engine's BlockDevice so the same
 * writers can drive an agent process over TCP.
 */
export class NbdBlockClient {
  private handle = 1;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly client: RawNbdClient,
    readonly name: string,
    readonly sizeBytes: number,
    readonly flags: number,
  ) {}

  static async connect(host: string, port: number, name: string): Promise<NbdBlockClient> {
    const client = await RawNbdClient.connect({ host, port });
    const { size, flags } = await client.negotiate(name, { structured: false });
    return new NbdBlockClient(client, name, size, flags);
  }

  /** The export says it is read-only (NBD_FLAG_READ_ONLY). */
  get readOnly(): boolean {
    return (this.flags & 2) !== 0;
  }

  private serial<T>(step: () => Promise<T>): Promise<T> {
    const next = this.queue.then(step, step);
    this.queue = next.catch(() => {});
    return next;
  }

  write(offset: number, data: Buffer): Promise<void> {
    return this.serial(async () => {
      const handle = this.handle++;
      this.client.sendRequest(CMD.WRITE, 0, handle, offset, data.length, data);
      const reply = await this.client.readReply(30_000);
      if (reply.kind !== 'simple' || reply.handle !== handle) throw new Error('unexpected NBD reply');
      if (reply.error !== 0) throw new NbdCommandError('WRITE', reply.error);
    });
  }

  readInto(offset: number, target: Buffer): Promise<void> {
    return this.serial(async () => {
      const handle = this.handle++;
      this.client.sendRequest(CMD.READ, 0, handle, offset, target.length);
      const reply = await this.client.readReply(30_000);
      if (reply.kind !== 'simple' || reply.handle !== handle) throw new Error('unexpected NBD reply');
      if (reply.error !== 0) throw new NbdCommandError('READ', reply.error);
      (await this.client.read(target.length, 30_000)).copy(target);
    });
  }

  flush(): Promise<void> {
    return this.serial(async () => {
      const handle = this.handle++;
      this.client.sendRequest(CMD.FLUSH, 0, handle, 0, 0);
      const reply = await this.client.readReply(30_000);
      if (reply.kind !== 'simple' || reply.error !== 0) throw new NbdCommandError('FLUSH', reply.kind === 'simple' ? reply.error : -1);
    });
  }

  /** NBD_CMD_DISC, then the socket closes. */
  async close(): Promise<void> {
    await this.queue;
    this.client.sendRequest(CMD.DISC, 0, this.handle++, 0, 0);
    await this.client.closedWithin(5000);
    this.client.destroy();
  }
}

const BLOCK = 4096;

/** A 4 KiB block whose every 8 bytes carry `stamp` (big-endian). */
export function stampBlock(stamp: number): Buffer {
  const data = Buffer.alloc(BLOCK);
  for (let offset = 0; offset < BLOCK; offset += 8) data.writeBigUInt64BE(BigInt(stamp), offset);
  return data;
}

/**
 * A host writer whose writes depend on each other across several volumes:
 * stamp i goes to volume 0, then (after its acknowledgement) to volume 1,
 * and so on, each into slot i % slots. Any consistent point in time of the
 * group is the image after some prefix of this ordered log; a copy that
 * took the volumes at different instants is (almost always) not.
 */
export class GroupStampWriter {
  /** Every acknowledged write in order: [volume index, slot, stamp]. */
  readonly log: Array<[number, number, number]> = [];
  private writing = false;
  private running: Promise<void> = Promise.resolve();
  failure: unknown = null;

  constructor(
    private readonly spacing: number,
    readonly slots = 32,
  ) {}

  start(devices: NbdBlockClient[]): void {
    this.writing = true;
    this.running = (async () => {
      try {
        for (let stamp = 1; this.writing; stamp++) {
          const slot = stamp % this.slots;
          for (let index = 0; index < devices.length; index++) {
            await devices[index].write(slot * this.spacing, stampBlock(stamp));
            this.log.push([index, slot, stamp]);
          }
        }
      } catch (error) {
        this.failure = error;
      }
    })();
  }

  async stop(): Promise<void> {
    this.writing = false;
    await this.running;
    if (this.failure) throw this.failure;
  }

  /** The stamps an image holds per slot, read from its bytes (0 = never written). */
  stampsIn(image: Buffer): number[] {
    return Array.from({ length: this.slots }, (_, slot) => Number(image.readBigUInt64BE(slot * this.spacing)));
  }

  /**
   * The length of the write-log prefix whose image equals `images` (one per
   * volume, as stamps per slot), or -1 when no prefix gives it.
   */
  consistentPrefix(images: number[][]): number {
    const state = images.map(() => new Array<number>(this.slots).fill(0));
    const equal = () => state.every((stamps, volume) => stamps.every((stamp, slot) => stamp === images[volume][slot]));
    if (equal()) return 0;
    for (let count = 1; count <= this.log.length; count++) {
      const [volume, slot, stamp] = this.log[count - 1];
      state[volume][slot] = stamp;
      if (equal()) return count;
    }
    return -1;
  }
}
