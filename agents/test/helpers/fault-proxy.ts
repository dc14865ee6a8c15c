import net from 'node:net';

/**
 * A fault-injecting TCP proxy that stands in for a bad WAN between agents:
 * added latency, connections reset after N bytes, a blackhole (bytes are
 * swallowed, nothing is closed), and byte counters per direction.
 */
export class FaultProxy {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly latencyMs = { up: 0, down: 0 };
  private cutAfter: number | null = null;
  private blackholed = false;
  /** Connection resets done by `cutAfterBytes` so far. */
  cuts = 0;
  /** Bytes forwarded client -> target and target -> client. */
  readonly forwarded = { up: 0, down: 0 };
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

  /** Resets every open connection now. */
  resetAll(): void {
    for (const socket of this.sockets) socket.resetAndDestroy();
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.target.port, this.target.host);
    // Forward each chunk as it comes: Nagle would hold a short tail behind an unacknowledged segment.
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    this.sockets.add(client);
    this.sockets.add(upstream);
    const forward = (from: net.Socket, to: net.Socket, direction: 'up' | 'down') => {
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
      from.on('data', (chunk: Buffer) => {
        if (this.blackholed) return;
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
      });
      from.on('close', () => {
        if (timer) clearTimeout(timer);
        to.destroy();
      });
      from.on('error', () => to.destroy());
    };
    forward(client, upstream, 'up');
    forward(upstream, client, 'down');
    client.on('close', () => this.sockets.delete(client));
    upstream.on('close', () => this.sockets.delete(upstream));
  }

  async close(): Promise<void> {
    this.resetAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
