import net from 'node:net';

/**
 * A deliberately low-level NBD client for tests: it sends exactly the bytes
 * it is told to (well-formed or not) and parses what comes back.
 */

export const IHAVEOPT = Buffer.from('IHAVEOPT', 'latin1');
export const OPT = {
  EXPORT_NAME: 1,
  ABORT: 2,
  LIST: 3,
  STARTTLS: 5,
  INFO: 6,
  GO: 7,
  STRUCTURED_REPLY: 8,
  LIST_META_CONTEXT: 9,
  SET_META_CONTEXT: 10,
} as const;
export const REP = {
  ACK: 1,
  SERVER: 2,
  INFO: 3,
  META_CONTEXT: 4,
  ERR_UNSUP: 0x80000001,
  ERR_INVALID: 0x80000003,
  ERR_UNKNOWN: 0x80000006,
  ERR_SHUTDOWN: 0x80000007,
  ERR_TOO_BIG: 0x80000009,
} as const;
export const CMD = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3, TRIM: 4, CACHE: 5, WRITE_ZEROES: 6, BLOCK_STATUS: 7 } as const;
export const CMD_FLAG = { FUA: 1, NO_HOLE: 2, DF: 4, REQ_ONE: 8, FAST_ZERO: 16 } as const;
export const ERR = { EPERM: 1, EIO: 5, EINVAL: 22, ENOSPC: 28, EOVERFLOW: 75, ENOTSUP: 95, ESHUTDOWN: 108 } as const;
export const CHUNK = { NONE: 0, OFFSET_DATA: 1, OFFSET_HOLE: 2, BLOCK_STATUS: 5, ERROR: 0x8001 } as const;
export const TFLAG = {
  HAS_FLAGS: 1,
  READ_ONLY: 2,
  SEND_FLUSH: 4,
  SEND_FUA: 8,
  SEND_TRIM: 32,
  SEND_WRITE_ZEROES: 64,
  SEND_DF: 128,
  CAN_MULTI_CONN: 256,
  SEND_FAST_ZERO: 2048,
} as const;

export type Target = { host: string; port: number } | { path: string };

export interface OptionReply {
  option: number;
  type: number;
  data: Buffer;
}

export type Reply =
  | { kind: 'simple'; error: number; handle: number }
  | { kind: 'chunk'; flags: number; type: number; handle: number; payload: Buffer };

export class RawNbdClient {
  private buffered: Buffer = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private ended = false;
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
      this.wake?.();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.ended = true;
        this.wake?.();
        resolve();
      });
    });
    socket.on('error', () => {});
  }

  static connect(target: Target): Promise<RawNbdClient> {
    return new Promise((resolve, reject) => {
      const socket = 'path' in target ? net.connect({ path: target.path }) : net.connect({ host: target.host, port: target.port });
      socket.once('connect', () => resolve(new RawNbdClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Bytes received and not yet read. */
  get pending(): number {
    return this.buffered.length;
  }

  /** Reads exactly `count` bytes; rejects on close or timeout. */
  async read(count: number, timeoutMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffered.length < count) {
      if (this.ended) throw new Error(`connection closed with ${this.buffered.length}/${count} bytes`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${count} bytes (have ${this.buffered.length})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
    const out = this.buffered.subarray(0, count);
    this.buffered = this.buffered.subarray(count);
    return out;
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Resolves true when the server closes the connection within the time. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    return Promise.race([this.closed.then(() => true), delay(timeoutMs).then(() => false)]);
  }

  destroy(): void {
    this.socket.destroy();
  }

  // ---- handshake ------------------------------------------------------

  async readGreeting(): Promise<number> {
    const greeting = await this.read(18);
    if (greeting.toString('latin1', 0, 16) !== 'NBDMAGICIHAVEOPT') throw new Error('bad greeting');
    return greeting.readUInt16BE(16);
  }

  sendClientFlags(flags: number): void {
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32BE(flags >>> 0);
    this.write(bytes);
  }

  sendOption(option: number, data: Buffer = Buffer.alloc(0), declaredLength = data.length): void {
    const header = Buffer.alloc(16);
    IHAVEOPT.copy(header, 0);
    header.writeUInt32BE(option >>> 0, 8);
    header.writeUInt32BE(declaredLength >>> 0, 12);
    this.write(Buffer.concat([header, data]));
  }

  async readOptionReply(): Promise<OptionReply> {
    const header = await this.read(20);
    if (header.readUInt32BE(0) !== 0x0003e889 || header.readUInt32BE(4) !== 0x045565a9) throw new Error('bad option reply magic');
    const length = header.readUInt32BE(16);
    return { option: header.readUInt32BE(8), type: header.readUInt32BE(12), data: await this.read(length) };
  }

  /** Greeting, client flags, optional structured replies + base:allocation, then GO. */
  async negotiate(
    exportName: string,
    options: { structured?: boolean; metaContext?: boolean } = {},
  ): Promise<{ size: number; flags: number; infos: Map<number, Buffer> }> {
    const structured = options.structured ?? true;
    await this.readGreeting();
    this.sendClientFlags(1 | 2);
    if (structured) {
      this.sendOption(OPT.STRUCTURED_REPLY);
      expectReply(await this.readOptionReply(), REP.ACK);
      if (options.metaContext ?? true) {
        this.sendOption(OPT.SET_META_CONTEXT, metaContextData(exportName, ['base:allocation']));
        expectReply(await this.readOptionReply(), REP.META_CONTEXT);
        expectReply(await this.readOptionReply(), REP.ACK);
      }
    }
    this.sendOption(OPT.GO, goData(exportName, [3]));
    const infos = new Map<number, Buffer>();
    for (;;) {
      const reply = await this.readOptionReply();
      if (reply.type === REP.ACK) break;
      expectReply(reply, REP.INFO);
      infos.set(reply.data.readUInt16BE(0), reply.data.subarray(2));
    }
    const exportInfo = infos.get(0);
    if (!exportInfo) throw new Error('no NBD_INFO_EXPORT');
    return { size: Number(exportInfo.readBigUInt64BE(0)), flags: exportInfo.readUInt16BE(8), infos };
  }

  // ---- transmission ---------------------------------------------------

  sendRequest(type: number, flags: number, handle: number, offset: number | bigint, length: number, payload?: Buffer): void {
    const header = Buffer.alloc(28);
    header.writeUInt32BE(0x25609513, 0);
    header.writeUInt16BE(flags, 4);
    header.writeUInt16BE(type, 6);
    header.writeUInt32BE(0, 8);
    header.writeUInt32BE(handle >>> 0, 12);
    header.writeBigUInt64BE(BigInt(offset), 16);
    header.writeUInt32BE(length >>> 0, 24);
    this.write(payload ? Buffer.concat([header, payload]) : header);
  }

  /** Reads one simple reply header or one structured chunk (a simple READ reply's data is left unread). */
  async readReply(timeoutMs?: number): Promise<Reply> {
    const magic = (await this.read(4, timeoutMs)).readUInt32BE(0);
    if (magic === 0x67446698) {
      const rest = await this.read(12, timeoutMs);
      return { kind: 'simple', error: rest.readUInt32BE(0), handle: rest.readUInt32BE(8) };
    }
    if (magic === 0x668e33ef) {
      const rest = await this.read(16, timeoutMs);
      const length = rest.readUInt32BE(12);
      return {
        kind: 'chunk',
        flags: rest.readUInt16BE(0),
        type: rest.readUInt16BE(2),
        handle: rest.readUInt32BE(8),
        payload: await this.read(length, timeoutMs),
      };
    }
    throw new Error(`bad reply magic 0x${magic.toString(16)}`);
  }

  /** Reads structured chunks for one request until the DONE flag. */
  async readStructured(timeoutMs?: number): Promise<Array<Extract<Reply, { kind: 'chunk' }>>> {
    const chunks: Array<Extract<Reply, { kind: 'chunk' }>> = [];
    for (;;) {
      const reply = await this.readReply(timeoutMs);
      if (reply.kind !== 'chunk') throw new Error('expected a structured chunk');
      chunks.push(reply);
      if (reply.flags & 1) return chunks;
    }
  }

  /** Error value of a reply: simple error field, or the error of an ERROR chunk, else 0. */
  static errorOf(reply: Reply): number {
    if (reply.kind === 'simple') return reply.error;
    return reply.type & 0x8000 ? reply.payload.readUInt32BE(0) : 0;
  }

  /** A full structured read of `length` bytes at `offset`, reassembled from its chunks. */
  async structuredRead(handle: number, offset: number, length: number, flags = 0): Promise<{ data: Buffer; chunkTypes: number[] }> {
    this.sendRequest(CMD.READ, flags, handle, offset, length);
    const chunks = await this.readStructured();
    const data = Buffer.alloc(length);
    const covered = Buffer.alloc(length);
    for (const chunk of chunks) {
      if (chunk.handle !== handle) throw new Error('reply for another handle');
      if (chunk.type & 0x8000) throw new Error(`read failed with error ${chunk.payload.readUInt32BE(0)}`);
      if (chunk.type === CHUNK.OFFSET_DATA) {
        const at = Number(chunk.payload.readBigUInt64BE(0)) - offset;
        chunk.payload.copy(data, at, 8);
        covered.fill(1, at, at + chunk.payload.length - 8);
      } else if (chunk.type === CHUNK.OFFSET_HOLE) {
        const at = Number(chunk.payload.readBigUInt64BE(0)) - offset;
        covered.fill(1, at, at + chunk.payload.readUInt32BE(8));
      }
    }
    if (covered.includes(0)) throw new Error('structured read did not cover the whole range');
    return { data, chunkTypes: chunks.map((chunk) => chunk.type) };
  }
}

export function goData(name: string, infoRequests: number[] = []): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  const data = Buffer.alloc(4 + nameBytes.length + 2 + 2 * infoRequests.length);
  data.writeUInt32BE(nameBytes.length, 0);
  nameBytes.copy(data, 4);
  data.writeUInt16BE(infoRequests.length, 4 + nameBytes.length);
  infoRequests.forEach((type, index) => data.writeUInt16BE(type, 6 + nameBytes.length + 2 * index));
  return data;
}

export function metaContextData(name: string, queries: string[]): Buffer {
  const parts: Buffer[] = [];
  const nameBytes = Buffer.from(name, 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(nameBytes.length);
  parts.push(head, nameBytes);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(queries.length);
  parts.push(count);
  for (const query of queries) {
    const bytes = Buffer.from(query, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    parts.push(length, bytes);
  }
  return Buffer.concat(parts);
}

export function expectReply(reply: OptionReply, type: number): OptionReply {
  if (reply.type !== type) {
    throw new Error(`expected option reply type 0x${type.toString(16)}, got 0x${reply.type.toString(16)} (${reply.data.toString('utf8')})`);
  }
  return reply;
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
