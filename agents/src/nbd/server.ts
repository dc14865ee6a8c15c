import { lstat, chmod, unlink } from 'node:fs/promises';
import net from 'node:net';
import type { Logger } from 'pino';
import type { ExportCatalog } from '../storage/block-device.ts';
import { NbdConnection, type ConnectionContext } from './connection.ts';
import type { NbdTls } from './tls.ts';
import type { NbdMeters } from './meter.ts';

export interface NbdServerOptions {
  exports: ExportCatalog;
  logger: Logger;
  /** Largest READ or WRITE length, advertised as the maximum block size; default 32 MiB. */
  maxRequestBytes?: number;
  /** A handshake with no complete option for this long is dropped; default 10 s. */
  handshakeTimeoutMs?: number;
  /** Option progress extends the handshake deadline only within this time; default 60 s. */
  handshakeTotalMs?: number;
  /** Time close() waits for in-flight requests before destroying connections; default 10 s. */
  closeTimeoutMs?: number;
  /**
   * TLS for TCP listeners: NBD_OPT_STARTTLS is offered and required before
   * any export is served (the Unix socket, reachable by the agent's user
   * only, stays plaintext). Null: no TLS.
   */
  tls?: NbdTls | null;
  /** Per-export request counts, bytes and latencies (metrics); default none. */
  meters?: NbdMeters | null;
}

const MiB = 1024 * 1024;
const DEFAULT_MAX_REQUEST_BYTES = 32 * MiB;

/**
 * The agent's NBD listener: fixed-newstyle handshake, structured replies,
 * `base:allocation` block status, over TCP and Unix sockets. Exports are the
 * catalog's volumes, by name.
 */
export class NbdServer {
  private readonly listeners: net.Server[] = [];
  private readonly connections = new Set<NbdConnection>();
  private readonly context: ConnectionContext;
  private readonly tls: NbdTls | null;
  private readonly closeTimeoutMs: number;
  private readonly logger: Logger;
  private nextConnectionId = 1;
  private closing: Promise<void> | null = null;

  constructor(options: NbdServerOptions) {
    const maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
    if (!Number.isInteger(maxRequestBytes) || maxRequestBytes < 4096 || maxRequestBytes > 0x7fffffff) {
      throw new RangeError(`maxRequestBytes must be an integer from 4096 to 2^31-1, got ${maxRequestBytes}`);
    }
    this.logger = options.logger;
    this.tls = options.tls ?? null;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
    this.context = {
      exports: options.exports,
      logger: options.logger,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
      handshakeTotalMs: options.handshakeTotalMs ?? 60_000,
      tls: null,
      meters: options.meters ?? null,
      handshakeLimits: { maxOptionBytes: 64 * 1024, maxOptions: 4096, maxHandshakeBytes: MiB, maxRequestBytes },
      transmissionLimits: {
        maxRequestBytes,
        maxInFlightBytes: Math.max(64 * MiB, 2 * maxRequestBytes),
        maxInFlightRequests: 256,
        maxQueuedReplyBytes: Math.max(64 * MiB, 2 * maxRequestBytes),
      },
    };
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Listens on host:port (port 0 picks a free one) and returns the bound address. */
  async listenTcp(host: string, port: number): Promise<{ host: string; port: number }> {
    const server = this.createListener(true);
    await listen(server, { host, port }, this.logger);
    this.listeners.push(server);
    const address = server.address() as net.AddressInfo;
    this.logger.info({ host: address.address, port: address.port, tls: this.tls !== null }, 'nbd listening on tcp');
    return { host: address.address, port: address.port };
  }

  /** Listens on a Unix socket; a stale socket file left by a dead agent is replaced. */
  async listenUnix(path: string): Promise<void> {
    await removeStaleSocket(path);
    const server = this.createListener(false);
    await listen(server, { path }, this.logger);
    this.listeners.push(server);
    // Volumes are served without authentication: only the agent's user may connect.
    await chmod(path, 0o600);
    this.logger.info({ path }, 'nbd listening on unix socket');
  }

  /** Stops listening, lets connections finish in-flight requests, then drops the stragglers. */
  close(): Promise<void> {
    this.closing ??= this.closeNow();
    return this.closing;
  }

  private async closeNow(): Promise<void> {
    const stopped = Promise.all(this.listeners.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    for (const connection of this.connections) connection.shutdown();
    const allDone = Promise.all([...this.connections].map((connection) => connection.done));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      allDone.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), this.closeTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.logger.warn({ connections: this.connections.size }, 'nbd close timed out; dropping connections');
      for (const connection of this.connections) connection.destroy();
      await allDone;
    }
    await stopped;
    this.logger.info('nbd server closed');
  }

  private createListener(tcp: boolean): net.Server {
    // Accepted paused: the connection chooses how the socket reads before the first byte arrives.
    return net.createServer({ noDelay: tcp, pauseOnConnect: true }, (socket) => this.accept(socket, tcp));
  }

  private accept(socket: net.Socket, tcp: boolean): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    if (tcp) socket.setNoDelay(true);
    const id = this.nextConnectionId++;
    const logger = this.logger.child({ nbdConnection: id, remote: tcp ? `${socket.remoteAddress}:${socket.remotePort}` : 'unix' });
    logger.debug('nbd connection accepted');
    const connection = new NbdConnection(socket, { ...this.context, logger, tls: tcp ? this.tls : null });
    this.connections.add(connection);
    void connection.done.then(() => this.connections.delete(connection));
  }
}

/** Listens; a failure to bind rejects (and is not logged twice), later errors are logged. */
function listen(server: net.Server, options: net.ListenOptions, logger: Logger): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(options, () => {
      server.off('error', onError);
      server.on('error', (error) => logger.error({ err: error }, 'nbd listener error'));
      resolve();
    });
  });
}

async function removeStaleSocket(path: string): Promise<void> {
  try {
    const stat = await lstat(path);
    if (!stat.isSocket()) throw new Error(`${path} exists and is not a socket`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) {
    throw Object.assign(new Error(`${path} is in use by a running server`), { code: 'EADDRINUSE' });
  }
  await unlink(path);
}
