import { NbdCommandError } from './nbd-block-client.ts';
import { CMD, CMD_FLAG, RawNbdClient } from './nbd-raw-client.ts';

/** The connection died (or was closed) with the request unanswered: it may or may not have been carried out. */
export class NbdConnectionLost extends Error {
  constructor(reason: string) {
    super(`NBD connection lost: ${reason}`);
    this.name = 'NbdConnectionLost';
  }
}

interface Pending {
  command: 'WRITE' | 'READ' | 'FLUSH';
  /** Bytes of data that follow the simple reply (reads). */
  dataLength: number;
  resolve(data: Buffer | null): void;
  reject(error: Error): void;
}

/**
 * A pipelined NBD client over one real TCP connection (RawNbdClient,
 * simple replies): any number of commands in flight, replies matched by
 * handle in whatever order the server sends them. A host's queue depth is
 * how many commands its callers keep in flight.
 */
export class NbdPipe {
  private nextHandle = 1;
  private readonly pending = new Map<number, Pending>();
  private lost: Error | null = null;

  private constructor(
    private readonly client: RawNbdClient,
    readonly exportName: string,
    readonly sizeBytes: number,
    readonly flags: number,
  ) {
    void this.pump();
  }

  static async connect(host: string, port: number, exportName: string): Promise<NbdPipe> {
    const client = await RawNbdClient.connect({ host, port });
    try {
      const { size, flags } = await client.negotiate(exportName, { structured: false });
      return new NbdPipe(client, exportName, size, flags);
    } catch (error) {
      client.destroy();
      throw error;
    }
  }

  get inFlight(): number {
    return this.pending.size;
  }

  get alive(): boolean {
    return this.lost === null;
  }

  /** Writes `data` at `offset`; with `fua` the server makes it durable before answering. */
  write(offset: number, data: Buffer, options: { fua?: boolean } = {}): Promise<void> {
    return this.send('WRITE', CMD.WRITE, options.fua ? CMD_FLAG.FUA : 0, offset, data.length, data).then(() => undefined);
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.send('READ', CMD.READ, 0, offset, length).then((data) => data!);
  }

  flush(): Promise<void> {
    return this.send('FLUSH', CMD.FLUSH, 0, 0, 0).then(() => undefined);
  }

  /** Reads `length` bytes at `offset` with up to `depth` reads of `chunk` bytes in flight. */
  async readRange(offset: number, length: number, options: { chunk?: number; depth?: number } = {}): Promise<Buffer> {
    const chunk = options.chunk ?? 256 * 1024;
    const out = Buffer.alloc(length);
    let next = 0;
    const worker = async () => {
      while (next < length) {
        const at = next;
        const size = Math.min(chunk, length - at);
        next += size;
        (await this.read(offset + at, size)).copy(out, at);
      }
    };
    await Promise.all(Array.from({ length: options.depth ?? 8 }, worker));
    return out;
  }

  /** NBD_CMD_DISC after what is in flight, then the socket closes. */
  async close(): Promise<void> {
    if (this.lost) return;
    const deadline = Date.now() + 30_000;
    while (this.pending.size > 0 && !this.lost && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    if (!this.lost) this.client.sendRequest(CMD.DISC, 0, this.nextHandle++, 0, 0);
    await this.client.closedWithin(2000);
    this.destroy();
  }

  /** Drops the connection at once; commands in flight fail with NbdConnectionLost. */
  destroy(): void {
    this.client.destroy();
    this.fail(new NbdConnectionLost('closed by the client'));
  }

  private send(command: Pending['command'], type: number, flags: number, offset: number, length: number, payload?: Buffer): Promise<Buffer | null> {
    if (this.lost) return Promise.reject(this.lost);
    const handle = this.nextHandle++;
    return new Promise((resolve, reject) => {
      this.pending.set(handle, { command, dataLength: command === 'READ' ? length : 0, resolve, reject });
      this.client.sendRequest(type, flags, handle, offset, length, payload);
    });
  }

  private fail(error: Error): void {
    if (!this.lost) this.lost = error;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const request of pending) request.reject(this.lost);
  }

  /** Reads replies for as long as the connection lives (the server may take as long as it likes). */
  private async pump(): Promise<void> {
    try {
      for (;;) {
        const reply = await this.client.readReply(24 * 3600_000);
        if (reply.kind !== 'simple') throw new Error('a structured reply on a connection that did not ask for them');
        const request = this.pending.get(reply.handle);
        if (!request) throw new Error(`a reply for unknown handle ${reply.handle}`);
        this.pending.delete(reply.handle);
        if (reply.error !== 0) {
          // A failed read sends no data after its simple reply.
          request.reject(new NbdCommandError(request.command, reply.error));
          continue;
        }
        const data = request.dataLength > 0 ? Buffer.from(await this.client.read(request.dataLength, 120_000)) : null;
        request.resolve(data);
      }
    } catch (error) {
      this.client.destroy();
      this.fail(new NbdConnectionLost((error as Error).message));
    }
  }
}
