import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { ProblemError } from '@tandem/contract';
import { ClockOffset } from './clock-offset.ts';
import { RpcConnection, type RpcHandler } from './rpc-connection.ts';

/** A paired site, pinned by its CA certificate. */
export interface PeerRecord {
  agentId: string;
  site: string;
  caPem: string;
  /** SHA-256 fingerprint of the peer's CA certificate, `AB:CD:…`. */
  caFingerprint: string;
  /** host:port of the peer's link listener. */
  linkAddress: string;
}

export interface LinkCredentials {
  certificatePem: string;
  keyPem: string;
  /** Our own CA: clients presenting certificates of it are never peers. */
  caPem: string;
}

const HEARTBEAT_MS = 1000;
const DEAD_AFTER_MS = 5000;

export function splitHostPort(address: string): { host: string; port: number } {
  const match = /^\[?([^\]]+)\]?:(\d+)$/.exec(address);
  if (!match) throw new ProblemError('bad-request', `${address} is not host:port`);
  return { host: match[1], port: Number(match[2]) };
}

/**
 * The peer link listener. Mutual TLS: a client must present a certificate
 * signed by the CA of a paired site; the connection is then bound to that
 * site and its requests go to the handler. Anything else is refused and the
 * refusal reported (so it becomes an event).
 */
export class PeerLinkServer {
  private readonly server: tls.Server;
  private readonly connections = new Set<RpcConnection>();
  /** Every socket the server holds, handshaking ones included: close() drops them all. */
  private readonly sockets = new Set<net.Socket>();
  private closing = false;
  private peers: PeerRecord[];

  constructor(
    private readonly options: {
      credentials: LinkCredentials;
      peers: PeerRecord[];
      handler: RpcHandler;
      onRefused: (reason: string, remote: string) => void;
      logger: Logger;
    },
  ) {
    this.peers = options.peers;
    this.server = tls.createServer({
      ...this.secureOptions(),
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    });
    this.server.on('connection', (socket: net.Socket) => {
      if (this.closing) {
        socket.destroy();
        return;
      }
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.server.on('secureConnection', (socket) => this.accept(socket));
    this.server.on('tlsClientError', (error, socket) => {
      options.onRefused(`TLS handshake failed: ${error.message}`, `${socket.remoteAddress}:${socket.remotePort}`);
    });
  }

  private secureOptions(): tls.SecureContextOptions {
    return {
      cert: this.options.credentials.certificatePem,
      key: this.options.credentials.keyPem,
      // Our own CA keeps the list non-empty; its certificates are refused below.
      ca: [this.options.credentials.caPem, ...this.peers.map((peer) => peer.caPem)],
    };
  }

  /** Trusts a new set of paired sites (after pairing or unpairing). */
  updatePeers(peers: PeerRecord[]): void {
    this.peers = peers;
    this.server.setSecureContext(this.secureOptions());
  }

  private accept(socket: tls.TLSSocket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const certificate = socket.getPeerCertificate(true);
    const issuer = certificate?.issuerCertificate?.fingerprint256;
    const peer = this.peers.find((p) => p.caFingerprint === issuer);
    if (!peer) {
      this.options.onRefused('the client certificate is not from a paired site', remote);
      socket.destroy();
      return;
    }
    const connection = new RpcConnection(socket, {
      peerAgentId: peer.agentId,
      handler: this.options.handler,
      deadAfterMs: DEAD_AFTER_MS,
      onClose: () => this.connections.delete(connection),
    });
    this.connections.add(connection);
    this.options.logger.debug({ peer: peer.site, remote }, 'peer link accepted');
  }

  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as net.AddressInfo;
    return { host: address.address, port: address.port };
  }

  /**
   * Stops listening and drops every connection, those still in their TLS
   * handshake too: one a peer began while we closed would otherwise hold
   * server.close() open for as long as the peer keeps it.
   */
  async close(): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections) connection.close();
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

export type LinkState = 'connecting' | 'connected' | 'down';

/**
 * Our side of the link to one paired site: dials it (verifying its
 * certificate against that site's pinned CA only), keeps the connection up
 * with heartbeats, and redials with backoff. Calls made while the link is
 * down wait for it (within their timeout) or fail with `link-down`.
 */
export class PeerLinkClient extends EventEmitter {
  private connection: RpcConnection | null = null;
  private linkState: LinkState = 'connecting';
  /** When the link entered its state (Date.now()). */
  stateSince = Date.now();
  /**
   * Since when the peer has not been reachable: it never was yet, or the
   * last frame heard from it before the link was lost (a silent path is
   * declared dead only DEAD_AFTER_MS later; it was silent since then). Null
   * while connected.
   */
  unreachableSince: number | null = Date.now();
  /** When the last connection last heard from the peer (kept once it closed). */
  private lastHeardAt: number | null = null;
  /** The other agent's clock as measured by this link's heartbeats (kept across reconnections). */
  readonly clock = new ClockOffset();
  private backoffMs = 100;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** The socket of a dial whose TLS handshake has not completed yet. */
  private dialing: tls.TLSSocket | null = null;
  private waiters: Array<() => void> = [];
  private address: string;

  constructor(
    readonly peer: PeerRecord,
    private readonly credentials: LinkCredentials,
    private readonly logger: Logger,
  ) {
    super();
    this.address = peer.linkAddress;
    this.dial();
  }

  get state(): LinkState {
    return this.linkState;
  }

  /** Points the link at a new address (the peer moved, or a test proxy) and redials. */
  retarget(address: string): void {
    this.address = address;
    this.connection?.close(new ProblemError('link-down', 'redialling a new address'));
  }

  private setState(state: LinkState, detail?: string): void {
    if (this.linkState === state) return;
    this.linkState = state;
    this.stateSince = Date.now();
    if (state === 'connected') this.unreachableSince = null;
    else this.unreachableSince ??= Math.min(this.stateSince, this.lastHeardAt ?? this.stateSince);
    this.emit('state', state, detail);
  }

  private dial(): void {
    if (this.closed) return;
    const { host, port } = splitHostPort(this.address);
    const socket = tls.connect({
      host,
      port,
      cert: this.credentials.certificatePem,
      key: this.credentials.keyPem,
      ca: [this.peer.caPem],
      minVersion: 'TLSv1.3',
      // The pinned CA is the peer's identity; its address may be a proxy or NAT.
      checkServerIdentity: () => undefined,
    });
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      if (this.dialing === socket) this.dialing = null;
      socket.destroy();
      this.scheduleRedial(error.message);
    };
    socket.once('error', fail);
    socket.once('close', () => fail(new Error('connection closed during the handshake')));
    // A handshake that never completes (a black-holed path) must not hold the link down forever.
    socket.setTimeout(DEAD_AFTER_MS, () => fail(new Error(`no TLS handshake in ${DEAD_AFTER_MS} ms`)));
    this.dialing = socket;
    socket.once('secureConnect', () => {
      settled = true;
      this.dialing = null;
      // Closed while the handshake ran: no connection for a link nobody keeps.
      if (this.closed) {
        socket.destroy();
        return;
      }
      socket.setTimeout(0);
      socket.removeAllListeners('timeout');
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      this.backoffMs = 100;
      this.clock.reconnected();
      const connection: RpcConnection = new RpcConnection(socket, {
        peerAgentId: this.peer.agentId,
        heartbeatMs: HEARTBEAT_MS,
        clock: this.clock,
        deadAfterMs: DEAD_AFTER_MS,
        onClose: (reason) => {
          if (this.connection === connection) this.connection = null;
          this.lastHeardAt = connection.lastHeardAt;
          this.scheduleRedial(reason.message);
        },
      });
      this.connection = connection;
      this.setState('connected');
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    });
  }

  private scheduleRedial(reason: string): void {
    if (this.closed || this.timer) return;
    this.setState('down', reason);
    this.logger.debug({ peer: this.peer.site, reason, retryMs: this.backoffMs }, 'peer link down');
    this.timer = setTimeout(() => {
      this.timer = null;
      this.setState('connecting');
      this.dial();
    }, this.backoffMs);
    this.timer.unref();
    this.backoffMs = Math.min(this.backoffMs * 2, 5000);
  }

  /** Waits up to `timeoutMs` for the link to be up. */
  async ready(timeoutMs: number): Promise<RpcConnection> {
    if (this.connection?.isOpen) return this.connection;
    if (this.closed) throw new ProblemError('link-down', `the link to ${this.peer.site} is closed`);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== wake);
        reject(new ProblemError('link-down', `the link to ${this.peer.site} is down (${this.linkState})`));
      }, timeoutMs);
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push(wake);
    });
    if (!this.connection?.isOpen) throw new ProblemError('link-down', `the link to ${this.peer.site} is down`);
    return this.connection;
  }

  call(
    method: string,
    params: Record<string, unknown>,
    payload: Buffer | null = null,
    options: { timeoutMs?: number; waitForLinkMs?: number } = {},
  ): Promise<{ result: unknown; payload: Buffer | null }> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    // Link up (the hot path): send in this tick, no wait for readiness.
    if (this.connection?.isOpen) return this.connection.call(method, params, payload, timeoutMs);
    return this.ready(options.waitForLinkMs ?? 0).then((connection) => connection.call(method, params, payload, timeoutMs));
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.dialing?.destroy();
    this.connection?.close();
    this.setState('down', 'closed');
  }
}
