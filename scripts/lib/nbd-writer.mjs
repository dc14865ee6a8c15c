// A minimal NBD client that writes: fixed newstyle handshake, NBD_OPT_GO,
// then WRITE and FLUSH with simple replies, one request at a time. Enough
// for the demo's gentle workload (scripts/lib/workload.mjs) without a
// qemu-io process per burst; plain JS so `npm start` needs no TypeScript.
import net from 'node:net';

const OPTION_REPLY_MAGIC = 0x3e889045565a9n;
const REQUEST_MAGIC = 0x25609513;
const SIMPLE_REPLY_MAGIC = 0x67446698;
const OPT_GO = 7;
const REP_ACK = 1;
const REP_INFO = 3;
const CMD_WRITE = 1;
const CMD_DISC = 2;
const CMD_FLUSH = 3;
const FLAG_FIXED_NEWSTYLE = 1;
const FLAG_NO_ZEROES = 2;

/** One connection to one export: `write(offset, data)`, `flush()`, `close()`. */
export class NbdWriter {
  #socket;
  #buffered = Buffer.alloc(0);
  #wake = null;
  #closed = false;
  #handle = 1;
  #queue = Promise.resolve();

  constructor(socket) {
    this.#socket = socket;
    socket.on('data', (chunk) => {
      this.#buffered = this.#buffered.length ? Buffer.concat([this.#buffered, chunk]) : chunk;
      this.#wake?.();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake?.();
    });
    socket.on('error', () => {});
  }

  /** Connects to `host:port` and opens the export `name`; resolves with the writer and the export's size in bytes. */
  static async connect(address, name, timeoutMs = 10_000) {
    const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
    const socket = await new Promise((resolve, reject) => {
      const connection = net.connect({ host, port });
      connection.once('connect', () => resolve(connection));
      connection.once('error', reject);
    });
    const writer = new NbdWriter(socket);
    try {
      writer.sizeBytes = await writer.#negotiate(name, timeoutMs);
      return writer;
    } catch (error) {
      socket.destroy();
      throw error;
    }
  }

  async #read(count, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (this.#buffered.length < count) {
      if (this.#closed) throw new Error('the NBD connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no NBD answer within ${timeoutMs} ms`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
    const bytes = this.#buffered.subarray(0, count);
    this.#buffered = this.#buffered.subarray(count);
    return bytes;
  }

  async #negotiate(name, timeoutMs) {
    const greeting = await this.#read(18, timeoutMs);
    if (greeting.toString('latin1', 0, 16) !== 'NBDMAGICIHAVEOPT') throw new Error('not an NBD server (bad greeting)');
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
    const exportName = Buffer.from(name, 'utf8');
    // NBD_OPT_GO data: name length, name, number of info requests (0).
    const data = Buffer.alloc(4 + exportName.length + 2);
    data.writeUInt32BE(exportName.length, 0);
    exportName.copy(data, 4);
    const header = Buffer.alloc(16);
    header.write('IHAVEOPT', 0, 'latin1');
    header.writeUInt32BE(OPT_GO, 8);
    header.writeUInt32BE(data.length, 12);
    this.#socket.write(Buffer.concat([flags, header, data]));
    let size = null;
    for (;;) {
      const reply = await this.#read(20, timeoutMs);
      if (reply.readBigUInt64BE(0) !== OPTION_REPLY_MAGIC) throw new Error('bad NBD option reply');
      const type = reply.readUInt32BE(12);
      const payload = await this.#read(reply.readUInt32BE(16), timeoutMs);
      if (type === REP_ACK) break;
      if (type !== REP_INFO) throw new Error(`the NBD server refused export ${name} (reply 0x${type.toString(16)}${payload.length ? `: ${payload.toString('utf8')}` : ''})`);
      if (payload.readUInt16BE(0) === 0) size = Number(payload.readBigUInt64BE(2));
    }
    if (size === null) throw new Error('the NBD server sent no export size');
    return size;
  }

  #request(type, offset, length, payload) {
    const step = async () => {
      const handle = this.#handle++;
      const header = Buffer.alloc(28);
      header.writeUInt32BE(REQUEST_MAGIC, 0);
      header.writeUInt16BE(type, 6);
      header.writeUInt32BE(handle, 12);
      header.writeBigUInt64BE(BigInt(offset), 16);
      header.writeUInt32BE(length, 24);
      this.#socket.write(payload ? Buffer.concat([header, payload]) : header);
      const reply = await this.#read(16, 30_000);
      if (reply.readUInt32BE(0) !== SIMPLE_REPLY_MAGIC || reply.readUInt32BE(12) !== handle) throw new Error('unexpected NBD reply');
      const error = reply.readUInt32BE(4);
      if (error !== 0) throw new Error(`NBD ${type === CMD_WRITE ? 'WRITE' : 'FLUSH'} failed with error ${error}`);
    };
    const next = this.#queue.then(step, step);
    this.#queue = next.catch(() => {});
    return next;
  }

  write(offset, data) {
    return this.#request(CMD_WRITE, offset, data.length, data);
  }

  flush() {
    return this.#request(CMD_FLUSH, 0, 0);
  }

  /** NBD_CMD_DISC, then the socket is closed. */
  async close() {
    await this.#queue;
    if (!this.#closed) {
      const header = Buffer.alloc(28);
      header.writeUInt32BE(REQUEST_MAGIC, 0);
      header.writeUInt16BE(CMD_DISC, 6);
      this.#socket.end(header);
    }
    this.#socket.destroy();
  }
}
