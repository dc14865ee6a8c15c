import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import {
  isProblemError,
  PEER_PROTOCOL_VERSION,
  peerMethods,
  peerProtocolMajor,
  ProblemError,
  type PeerMethod,
  type PeerParamsIn,
  type PeerResult,
} from '@tandem/contract';
import { parsePeerRequest } from './peer-protocol.ts';
import type { OutgoingPayload } from './frames.ts';
import { RpcConnection, type RpcHandler, type RpcRequest, type RpcResult } from './rpc-connection.ts';
import { ClockOffset } from './clock-offset.ts';

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
/** After a `peer-version` refusal the link redials this much later (the other agent must be upgraded first). */
const REFUSED_RETRY_MS = 30_000;

/**
 * The peer protocol version this agent speaks (contract PEER_PROTOCOL_VERSION).
 * TANDEM_TEST_PEER_PROTOCOL_VERSION overrides it, for tests of the refusal only.
 */
export function localPeerProtocolVersion(): string {
  return process.env.TANDEM_TEST_PEER_PROTOCOL_VERSION ?? PEER_PROTOCOL_VERSION;
}

/** The refusal of a peer speaking another major version (null when the versions go together). */
export function versionRefusal(local: string, remote: string, remoteSite: string): ProblemError | null {
  if (peerProtocolMajor(local) === peerProtocolMajor(remote)) return null;
  return new ProblemError(
    'peer-version',
    `${remoteSite} speaks peer protocol ${remote}, this agent speaks ${local}: major versions differ, so the link is refused; upgrade the older agent`,
    { localVersion: local, remoteVersion: remote },
  );
}

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
      /** The peer protocol version this listener speaks (default: localPeerProtocolVersion(); tests of the refusal set another). */
      protocolVersion?: string;
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
      handler: this.greeted(peer, remote),
      deadAfterMs: DEAD_AFTER_MS,
      onClose: () => this.connections.delete(connection),
    });
    this.connections.add(connection);
    this.options.logger.debug({ peer: peer.site, remote }, 'peer link accepted');
  }

  /**
   * One connection's handler: the first request must be `peer.hello` with a
   * peer protocol version of this agent's major version; until then every
   * request is refused `peer-version` (an older agent that does not greet),
   * and so is a hello of another major version. The connection stays open
   * (the refusal is the answer); the refusal is logged and reported once.
   */
  private greeted(peer: PeerRecord, remote: string): RpcHandler {
    let greeted = false;
    let reported = false;
    const refuse = (problem: ProblemError): never => {
      if (!reported) {
        reported = true;
        this.options.logger.warn({ peer: peer.site, remote, problem: problem.problem }, problem.message);
        this.options.onRefused(problem.message, remote);
      }
      throw problem;
    };
    return async (request: RpcRequest): Promise<RpcResult> => {
      const local = this.options.protocolVersion ?? localPeerProtocolVersion();
      if (request.method === 'peer.hello') {
        const call = parsePeerRequest(request);
        const { version } = call.params as { version: string };
        const refusal = versionRefusal(local, version, peer.site);
        if (refusal) refuse(refusal);
        greeted = true;
        return { result: { version: local } };
      }
      if (!greeted) {
        refuse(
          new ProblemError(
            'peer-version',
            `${peer.site} sent ${String(request.method).slice(0, 100)} without the peer protocol handshake (peer.hello): it speaks an older peer protocol than this agent's ${local}; upgrade it`,
            { localVersion: local, remoteVersion: null },
          ),
        );
      }
      return this.options.handler(request);
    };
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
 *
 * (This module is ~480 lines: the listener and the dialling side are the two
 * ends of one handshake, pinned mutual TLS then `peer.hello` with the
 * version check, and are kept together so the two can be read side by side.)
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
  /** The other agent refused this one's peer protocol version (or this one refused its): why, until a handshake succeeds. */
  private refusal: ProblemError | null = null;
  /** The connection whose handshake is under way (not usable for calls yet). */
  private greeting: RpcConnection | null = null;

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

  /** Why the link is refused (`peer-version`), null unless the last handshake was refused. */
  get problem(): ProblemError | null {
    return this.refusal;
  }

  /** Points the link at a new address (the peer moved, or a test proxy) and redials. */
  retarget(address: string): void {
    this.address = address;
    this.greeting?.close(new ProblemError('link-down', 'redialling a new address'));
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
      void this.hello(connection);
    });
  }

  /**
   * The link handshake: `peer.hello` with this agent's peer protocol version
   * before anything else. Only once the other agent accepts it (and its own
   * version is of the same major version) is the link up; a refusal is kept
   * (`problem`), logged and reported, and calls fail with it.
   */
  private async hello(connection: RpcConnection): Promise<void> {
    const local = localPeerProtocolVersion();
    this.greeting = connection;
    try {
      const answer = await connection.call('peer.hello', { version: local }, null, DEAD_AFTER_MS);
      const parsed = peerMethods['peer.hello'].result.safeParse(answer.result);
      if (!parsed.success) throw new ProblemError('peer-version', `${this.peer.site} answered the peer protocol handshake with no version`);
      const refusal = versionRefusal(local, parsed.data.version, this.peer.site);
      if (refusal) throw refusal;
    } catch (error) {
      let problem = isProblemError(error) ? error : new ProblemError('link-down', String(error));
      // The listener's refusal names the versions from its side: said again from this agent's.
      const theirs = problem.detail?.localVersion;
      if (problem.problem === 'peer-version' && typeof theirs === 'string' && problem.detail?.remoteVersion === local) {
        problem = new ProblemError(
          'peer-version',
          `${this.peer.site} refused the link: it speaks peer protocol ${theirs}, this agent speaks ${local}; major versions differ, upgrade the older agent`,
          { localVersion: local, remoteVersion: theirs },
        );
      }
      // An agent from before the handshake does not know peer.hello: an older peer protocol.
      if (problem.problem === 'not-supported') {
        problem = new ProblemError(
          'peer-version',
          `${this.peer.site} does not know the peer protocol handshake (peer.hello): it speaks an older peer protocol than this agent's ${local}; upgrade it`,
          { localVersion: local, remoteVersion: null },
        );
      }
      if (problem.problem === 'peer-version') {
        const known = this.refusal?.message === problem.message;
        this.refusal = problem;
        this.backoffMs = REFUSED_RETRY_MS;
        if (!known) {
          this.logger.warn({ peer: this.peer.site, problem: problem.problem, detail: problem.detail }, problem.message);
          this.emit('refused', problem);
        }
        // Calls waiting for the link fail with the refusal now (ready() finds no connection).
        const waiters = this.waiters;
        this.waiters = [];
        for (const wake of waiters) wake();
      }
      connection.close(problem);
      return;
    } finally {
      if (this.greeting === connection) this.greeting = null;
    }
    if (this.closed) connection.close();
    if (!connection.isOpen || this.closed) return;
    this.refusal = null;
    this.backoffMs = 100;
    this.connection = connection;
    this.setState('connected');
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
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
    // Refused for its peer protocol version: waiting would not help (it is retried every REFUSED_RETRY_MS).
    if (this.refusal) throw this.refusal;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== wake);
        reject(this.refusal ?? new ProblemError('link-down', `the link to ${this.peer.site} is down (${this.linkState})`));
      }, timeoutMs);
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push(wake);
    });
    if (!this.connection?.isOpen) throw this.refusal ?? new ProblemError('link-down', `the link to ${this.peer.site} is down`);
    return this.connection;
  }

  /**
   * Calls a peer method: its parameters and result are typed by the peer
   * protocol's method table (contract/src/peer.ts). The result is the
   * other agent's answer as it arrived (typed, not parsed again here).
   */
  call<M extends PeerMethod>(
    method: M,
    params: PeerParamsIn<M>,
    payload: OutgoingPayload = null,
    options: { timeoutMs?: number; waitForLinkMs?: number } = {},
  ): Promise<{ result: PeerResult<M>; payload: Buffer | null }> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const wire = params as Record<string, unknown>;
    // Link up (the hot path): send in this tick, no wait for readiness.
    if (this.connection?.isOpen) return this.connection.call(method, wire, payload, timeoutMs) as Promise<{ result: PeerResult<M>; payload: Buffer | null }>;
    return this.ready(options.waitForLinkMs ?? 0).then(
      (connection) => connection.call(method, wire, payload, timeoutMs) as Promise<{ result: PeerResult<M>; payload: Buffer | null }>,
    );
  }

  /**
   * A call outside the method table's types: for tests and benches of the
   * link itself (their own methods) and for fuzzing a receiver with
   * malformed calls. Replication code uses `call`.
   */
  callUnchecked(
    method: string,
    params: Record<string, unknown>,
    payload: Buffer | null = null,
    options: { timeoutMs?: number; waitForLinkMs?: number } = {},
  ): Promise<{ result: unknown; payload: Buffer | null }> {
    return this.call(method as PeerMethod, params as never, payload, options);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.dialing?.destroy();
    this.greeting?.close();
    this.connection?.close();
    this.setState('down', 'closed');
  }
}
