import net from 'node:net';

/** How a stall treats what arrives while it lasts (see `FaultProxy.stall`). */
export type StallMode = 'drop' | 'hold';

/** What the proxy did so far (faults injected and their effect). */
export interface FaultProxyStats {
  /** Connections accepted. */
  connections: number;
  /** `resetAll()` calls that found at least one connection, and the sockets they reset. */
  resets: number;
  socketsReset: number;
  /** Stalls begun, by mode. */
  stalls: Record<StallMode, number>;
  /** Bytes swallowed by a dropping stall or the blackhole. */
  bytesDropped: number;
  /** Bytes held by a holding stall (delivered late, or lost with their receiver). */
  bytesHeld: number;
  /**
   * Held bytes delivered to a receiver after their sender had given up on the
   * connection (closed it, was reset or killed): stale requests arriving late.
   */
  staleBytesDelivered: number;
  /** Connections whose held bytes were delivered after their sender was gone. */
  staleConnections: number;
  /** Sender sides reset by `abandonSenders()`. */
  sendersAbandoned: number;
}

/** A held direction keeps at most this many bytes in memory, then stops reading (TCP backpressure, like a full WAN path). */
const HOLD_LIMIT_BYTES = 32 * 1024 * 1024;

type Direction = 'up' | 'down';

/** One proxied connection: the dialler (client) and our connection to the target (upstream). */
interface Conn {
  client: net.Socket;
  upstream: net.Socket;
  /** Chunks held by a holding stall, per direction (up = client -> target). */
  held: Record<Direction, Buffer[]>;
  heldBytes: Record<Direction, number>;
  /** The sending side of a direction closed while it had (or could get) held chunks: deliver them, then end. */
  senderGone: Record<Direction, boolean>;
  /** Puts a chunk on its way in a direction (latency, cut accounting, forwarding). */
  forward: Record<Direction, (chunk: Buffer) => void>;
}

/**
 * A fault-injecting TCP proxy that stands in for a bad WAN between agents:
 * added latency, connections reset after N bytes, a blackhole (bytes are
 * swallowed, nothing is closed), stalls, and byte counters per direction.
 *
 * Stalls keep every connection open and forward nothing while they last (new
 * connections are accepted and stalled too):
 * - `stall('drop')` swallows what arrives (a path that loses packets until it
 *   comes back; the TLS stream is broken afterwards, so the connection dies
 *   on its next record);
 * - `stall('hold')` keeps what arrives and delivers it when the stall ends
 *   (a WAN path that comes back with its queues full). A sender that gave
 *   up on a connection meanwhile (closed it, was killed, or was reset with
 *   `abandonSenders()`) does not take its bytes back: they still reach the
 *   receiver, `staleDelayMs` after the connections of the living senders
 *   were released, so requests of a connection given up on arrive after a
 *   new connection started — the hazard of stale requests.
 */
export class FaultProxy {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly conns = new Set<Conn>();
  private readonly latencyMs = { up: 0, down: 0 };
  private cutAfter: number | null = null;
  private blackholed = false;
  private stalled: StallMode | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Connection resets done by `cutAfterBytes` so far. */
  cuts = 0;
  /** Bytes forwarded client -> target and target -> client. */
  readonly forwarded = { up: 0, down: 0 };
  readonly stats: FaultProxyStats = {
    connections: 0,
    resets: 0,
    socketsReset: 0,
    stalls: { drop: 0, hold: 0 },
    bytesDropped: 0,
    bytesHeld: 0,
    staleBytesDelivered: 0,
    staleConnections: 0,
    sendersAbandoned: 0,
  };
  port = 0;

  private constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => this.accept(client));
  }

  static async start(target: { host: string; port: number }): Promise<FaultProxy> {
    const proxy = new FaultProxy(target);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    proxy.port = (proxy.server.address() as net.AddressInfo).port;
    return proxy;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Open connections (each a client and an upstream socket). */
  get openConnections(): number {
    return this.conns.size;
  }

  /** The stall in effect, if any. */
  get stalling(): StallMode | null {
    return this.stalled;
  }

  /** Adds this much delay to every chunk in each direction (or in one: 'up' = client -> target). */
  setLatency(ms: number, direction: 'both' | 'up' | 'down' = 'both'): void {
    this.latencyMs.up = direction === 'down' ? 0 : ms;
    this.latencyMs.down = direction === 'up' ? 0 : ms;
  }

  /** Resets every connection once `bytes` more bytes have crossed (either way). */
  cutAfterBytes(bytes: number | null): void {
    this.cutAfter = bytes;
  }

  /** Swallows all traffic (connections stay open) until turned off. */
  blackhole(on: boolean): void {
    this.blackholed = on;
  }

  /** Resets every open connection now (RST to both sides); held bytes go with them. */
  resetAll(): void {
    if (this.sockets.size > 0) this.stats.resets++;
    for (const socket of this.sockets) {
      this.stats.socketsReset++;
      socket.resetAndDestroy();
    }
    for (const conn of this.conns) {
      conn.held.up = [];
      conn.held.down = [];
    }
    this.conns.clear();
  }

  /**
   * Stops forwarding without closing anything, until `endStall()`: `drop`
   * swallows what arrives meanwhile, `hold` keeps it for late delivery.
   * A stall begun while another lasts replaces its mode (held bytes stay held).
   */
  stall(mode: StallMode): void {
    this.stalled = mode;
    this.stats.stalls[mode]++;
  }

  /**
   * Ends a stall. After a holding one, the held bytes of connections whose
   * sender is still there are forwarded at once, in order, ahead of anything
   * new; those whose sender gave up meanwhile reach the receiver `staleDelayMs`
   * later (then that side is ended too). Resolves once every late delivery is done.
   */
  async endStall(options: { staleDelayMs?: number } = {}): Promise<void> {
    this.stalled = null;
    const late: Array<{ conn: Conn; direction: Direction }> = [];
    for (const conn of [...this.conns]) {
      for (const direction of ['up', 'down'] as const) {
        if (conn.senderGone[direction]) {
          late.push({ conn, direction });
          continue;
        }
        const chunks = conn.held[direction];
        conn.held[direction] = [];
        conn.heldBytes[direction] = 0;
        for (const chunk of chunks) conn.forward[direction](chunk);
        (direction === 'up' ? conn.client : conn.upstream).resume();
      }
    }
    if (late.length === 0) return;
    await new Promise<void>((resolve) => this.later(options.staleDelayMs ?? 0, resolve));
    for (const { conn, direction } of late) {
      const receiver = direction === 'up' ? conn.upstream : conn.client;
      const chunks = conn.held[direction];
      conn.held[direction] = [];
      conn.heldBytes[direction] = 0;
      const bytes = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
      if (!receiver.destroyed && bytes > 0) {
        this.stats.staleConnections++;
        this.stats.staleBytesDelivered += bytes;
        for (const chunk of chunks) receiver.write(chunk);
      }
      this.finish(conn, receiver);
    }
  }

  /**
   * Resets the dialling side of every connection (the sender gives up: it sees
   * its connection die and dials again) while the target side stays open.
   * During a holding stall what that sender had sent stays held and reaches
   * the target late (see `endStall`). Returns how many senders it reset.
   */
  abandonSenders(): number {
    let abandoned = 0;
    for (const conn of this.conns) {
      if (conn.client.destroyed) continue;
      this.stats.sendersAbandoned++;
      abandoned++;
      conn.client.resetAndDestroy();
    }
    return abandoned;
  }

  private later(ms: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run();
    }, ms);
    this.timers.add(timer);
  }

  /** Ends a connection after its late bytes went out: the receiver gets a FIN after the data (destroyed if it lingers). */
  private finish(conn: Conn, receiver: net.Socket): void {
    this.conns.delete(conn);
    if (receiver.destroyed) return;
    receiver.end();
    this.later(10_000, () => receiver.destroy());
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.target.port, this.target.host);
    this.stats.connections++;
    // Forward each chunk as it comes: Nagle would hold a short tail behind an unacknowledged segment.
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    this.sockets.add(client);
    this.sockets.add(upstream);
    const conn: Conn = {
      client,
      upstream,
      held: { up: [], down: [] },
      heldBytes: { up: 0, down: 0 },
      senderGone: { up: false, down: false },
      forward: { up: () => {}, down: () => {} },
    };
    this.conns.add(conn);
    const forward = (from: net.Socket, to: net.Socket, direction: Direction) => {
      // Chunks wait out the latency in order, without holding back the ones behind them.
      const queue: Array<{ chunk: Buffer; due: number }> = [];
      let timer: NodeJS.Timeout | null = null;
      let draining = false;
      const pass = (chunk: Buffer) => {
        if (!to.destroyed && !to.write(chunk) && !draining) {
          draining = true;
          from.pause();
          to.once('drain', () => {
            draining = false;
            from.resume();
          });
        }
      };
      const deliver = () => {
        timer = null;
        const now = Date.now();
        while (queue.length > 0 && queue[0].due <= now) pass(queue.shift()!.chunk);
        if (queue.length > 0) timer = setTimeout(deliver, queue[0].due - now);
      };
      const send = (chunk: Buffer) => {
        this.forwarded[direction] += chunk.length;
        if (this.cutAfter !== null) {
          this.cutAfter -= chunk.length;
          if (this.cutAfter <= 0) {
            this.cutAfter = null;
            this.cuts++;
            this.resetAll();
            return;
          }
        }
        const latency = this.latencyMs[direction];
        if (latency === 0 && queue.length === 0) {
          pass(chunk); // nothing to wait out: forward at once (no queue entry, no clock read)
          return;
        }
        queue.push({ chunk, due: Date.now() + latency });
        if (latency === 0 || queue[0].due <= Date.now()) deliver();
        else if (!timer) timer = setTimeout(deliver, queue[0].due - Date.now());
      };
      conn.forward[direction] = send;
      from.on('data', (chunk: Buffer) => {
        if (this.blackholed || this.stalled === 'drop') {
          this.stats.bytesDropped += chunk.length;
          return;
        }
        if (this.stalled === 'hold' || conn.held[direction].length > 0) {
          conn.held[direction].push(chunk);
          conn.heldBytes[direction] += chunk.length;
          this.stats.bytesHeld += chunk.length;
          if (conn.heldBytes[direction] > HOLD_LIMIT_BYTES) from.pause();
          return;
        }
        send(chunk);
      });
      from.on('close', () => {
        if (timer) clearTimeout(timer);
        // A sender gone during a holding stall: its held bytes still go to the receiver when the stall ends.
        if (this.conns.has(conn) && (this.stalled === 'hold' || conn.held[direction].length > 0) && !to.destroyed) {
          conn.senderGone[direction] = true;
          return;
        }
        this.conns.delete(conn);
        to.destroy();
      });
      from.on('error', () => {
        if (!conn.senderGone[direction] && this.stalled !== 'hold') to.destroy();
      });
    };
    forward(client, upstream, 'up');
    forward(upstream, client, 'down');
    client.on('close', () => this.sockets.delete(client));
    upstream.on('close', () => this.sockets.delete(upstream));
  }

  async close(): Promise<void> {
    this.stalled = null;
    this.resetAll();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
