import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { BlockDevice, ExportCatalog } from '../storage/block-device.ts';
import { greeting } from './framing.ts';
import { readIntoChosenBuffers, switchToChosenBuffers } from './socket-reads.ts';
import { Handshake, OPEN_POLICY, type HandshakeLimits, type NegotiatedExport } from './handshake.ts';
import type { NbdTls } from './tls.ts';
import { allowsExport } from './tls-clients.ts';
import { Transmission, type TransmissionLimits } from './transmission.ts';
import type { NbdMeters } from './meter.ts';

export interface ConnectionContext {
  exports: ExportCatalog;
  logger: Logger;
  handshakeLimits: HandshakeLimits;
  transmissionLimits: TransmissionLimits;
  /** A handshake making no progress (no complete option) for this long is dropped. */
  handshakeTimeoutMs: number;
  /** After this long, option progress no longer extends the handshake deadline. */
  handshakeTotalMs: number;
  /** TLS on this listener: offered, and required before any export is served. Null: plaintext. */
  tls: NbdTls | null;
  /** Per-export request meters (metrics); null when nobody measures. */
  meters: NbdMeters | null;
}

/** How long a connection we ended may linger before it is destroyed. */
const LINGER_MS = 2_000;
/** The connection's own read buffer (socket-reads.ts), used between WRITE payloads. */
const READ_BUFFER_BYTES = 64 * 1024;

/**
 * One client connection: greets, runs option haggling, then hands the socket
 * to the transmission phase. Holds the export open (retain/release) from the
 * moment an export is chosen until the socket is gone and nothing is in flight.
 */
export class NbdConnection {
  /** Settles when the socket is closed and the export released. */
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private phase: 'handshake' | 'tls' | 'transmission' | 'ending' = 'handshake';
  private handshake: Handshake;
  private transmission: Transmission | null = null;
  private device: BlockDevice | null = null;
  private handshakeTimer: NodeJS.Timeout | null;
  private socketClosed = false;
  private finished = false;
  private readonly startedAt = Date.now();
  private optionsAtLastProgress = 0;
  /** Set when the socket reads into buffers we choose (socket-reads.ts); null with 'data' events. */
  private readBuffer: Buffer | null = null;

  /** The client's socket: the TCP or Unix socket, or the TLS socket over it after STARTTLS. */
  private socket: Socket;

  constructor(
    socket: Socket,
    private readonly context: ConnectionContext,
  ) {
    this.socket = socket;
    this.done = new Promise<void>((resolve) => {
      this.resolveDone = resolve;
    });
    const policy = context.tls
      ? { tlsAvailable: true, tlsRequired: true, tlsActive: false, allowed: null, refusal: null }
      : OPEN_POLICY;
    this.handshake = new Handshake(context.exports, this.sendHandshake, context.logger, context.handshakeLimits, policy);
    // The listener accepted the socket paused, so nothing was read yet. A
    // socket that may turn into TLS keeps 'data' events (TLS wraps it).
    this.readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
    if (context.tls || !readIntoChosenBuffers(socket, this.nextReadTarget, this.onRead)) {
      this.readBuffer = null;
      socket.on('data', this.onData);
    }
    if (socket.isPaused()) socket.resume();
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    this.handshakeTimer = setTimeout(this.onHandshakeTimeout, context.handshakeTimeoutMs);
    this.handshakeTimer.unref();
    socket.write(greeting());
  }

  /** Graceful stop: handshakes are dropped, transmission finishes in-flight requests first. */
  shutdown(): void {
    if (this.phase === 'transmission' && this.transmission) {
      this.transmission.shutdown();
    } else if (this.phase === 'handshake') {
      this.handshake.shuttingDown = true;
      this.endGently();
    }
  }

  /** Hard stop. */
  destroy(): void {
    this.socket.destroy();
  }

  private readonly sendHandshake = (bytes: Buffer): void => {
    if (!this.socketClosed) this.socket.write(bytes);
  };

  private readonly nextReadTarget = (): Buffer => this.transmission?.nextReadTarget() ?? this.readBuffer!;

  /** A read into a buffer nextReadTarget chose: ours (bytes to parse) or a payload's (already in place). */
  private readonly onRead = (bytes: number, buffer: Buffer): void => {
    if (buffer !== this.readBuffer) {
      this.transmission?.fedDirectly(bytes);
      return;
    }
    this.onData(buffer.subarray(0, bytes), true);
  };

  private readonly onData = (chunk: Buffer, transient = false): void => {
    try {
      if (this.phase === 'transmission') {
        this.transmission!.feed(chunk, transient);
      } else if (this.phase === 'handshake') {
        // The handshake keeps unparsed bytes, so it gets its own copy.
        this.onHandshakeData(transient ? Buffer.from(chunk) : chunk);
      }
    } catch (error) {
      // Never let a parsing bug escape into the event loop and take the agent down.
      this.context.logger.error({ err: error }, 'nbd connection failed; disconnecting');
      this.socket.destroy();
    }
  };

  private onHandshakeData(chunk: Buffer): void {
    const outcome = this.handshake.feed(chunk);
    if (outcome.kind === 'need-more') {
      // Listing many exports takes many options: progress buys time, up to a total limit.
      const options = this.handshake.optionCount;
      if (options !== this.optionsAtLastProgress && Date.now() - this.startedAt < this.context.handshakeTotalMs) {
        this.optionsAtLastProgress = options;
        this.handshakeTimer?.refresh();
      }
      return;
    }
    if (outcome.kind === 'close') {
      if (outcome.violation) this.context.logger.warn({ reason: outcome.reason }, 'nbd handshake refused');
      else this.context.logger.debug({ reason: outcome.reason }, 'nbd handshake ended');
      this.endGently();
      return;
    }
    if (outcome.kind === 'starttls') {
      this.startTls(outcome.rest);
      return;
    }
    this.startTransmission(outcome.negotiated, outcome.rest);
  }

  /**
   * STARTTLS was acknowledged: once the ACK has left, the TLS handshake runs
   * on the socket, then option haggling starts afresh over TLS (the
   * protocol resets what was negotiated before), for the client the
   * certificate or PSK identity names, with its export allow-list.
   */
  private startTls(rest: Buffer): void {
    const tls = this.context.tls!;
    if (rest.length > 0) {
      // The client must wait for the ACK before its TLS handshake: bytes already here are not TLS we can use.
      this.context.logger.warn({ bytes: rest.length }, 'nbd client sent data after STARTTLS before the ACK; disconnecting');
      this.phase = 'ending';
      this.socket.destroy();
      return;
    }
    this.phase = 'tls';
    const raw = this.socket;
    raw.off('data', this.onData);
    raw.pause();
    raw.write(Buffer.alloc(0), () => {
      if (this.phase !== 'tls' || this.socketClosed) return;
      raw.off('error', this.onError);
      raw.off('close', this.onClose);
      raw.on('error', () => {}); // reported by the TLS socket
      tls.upgrade(raw, this.context.handshakeTimeoutMs).then(
        (session) => {
          if (this.phase !== 'tls') {
            session.socket.destroy();
            return;
          }
          this.socket = session.socket;
          session.socket.on('data', this.onData);
          session.socket.on('error', this.onError);
          session.socket.on('close', this.onClose);
          const client = session.client;
          if (client) this.context.logger.info({ client: client.name, kind: client.kind }, 'nbd tls client');
          else this.context.logger.warn({ reason: session.refusal }, 'nbd tls client refused');
          this.handshake = new Handshake(this.context.exports, this.sendHandshake, this.context.logger, this.context.handshakeLimits, {
            tlsAvailable: true,
            tlsRequired: true,
            tlsActive: true,
            allowed: client ? (name: string) => allowsExport(client, name) : null,
            refusal: client ? null : `TLS client refused: ${session.refusal}`,
          }, { noZeroes: this.handshake.clientNoZeroes });
          this.phase = 'handshake';
          // Option haggling over TLS gets its own deadline.
          this.clearHandshakeTimer();
          this.handshakeTimer = setTimeout(this.onHandshakeTimeout, this.context.handshakeTimeoutMs);
          this.handshakeTimer.unref();
        },
        (error: unknown) => {
          this.context.logger.warn({ err: error }, 'nbd tls handshake failed');
          this.phase = 'ending';
          raw.destroy();
          this.onClose();
        },
      );
    });
  }

  private startTransmission(negotiated: NegotiatedExport, rest: Buffer): void {
    this.clearHandshakeTimer();
    negotiated.device.retain();
    this.device = negotiated.device;
    this.phase = 'transmission';
    this.transmission = new Transmission(
      this.socket,
      negotiated,
      this.context.logger,
      this.context.transmissionLimits,
      { idle: this.onIdle },
      this.context.meters?.forExport(negotiated.exportName) ?? null,
    );
    this.context.logger.debug(
      {
        exportName: negotiated.exportName,
        sizeBytes: negotiated.sizeBytes,
        structuredReplies: negotiated.structuredReplies,
        blockStatus: negotiated.blockStatus,
        flags: negotiated.transmissionFlags,
      },
      'nbd transmission started',
    );
    let input = rest;
    if (this.readBuffer === null && this.context.tls !== null) {
      // The TLS socket was read with 'data' events so far (handshake, option haggling): from now on
      // into chosen buffers too, as plaintext sockets are from the start.
      const buffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
      this.readBuffer = buffer;
      const buffered = switchToChosenBuffers(this.socket, this.onData, this.nextReadTarget, this.onRead);
      if (buffered === null) this.readBuffer = null;
      else if (buffered.length > 0) input = input.length > 0 ? Buffer.concat([input, buffered]) : buffered;
    }
    if (input.length > 0) this.transmission.feed(input);
  }

  private endGently(): void {
    this.phase = 'ending';
    this.clearHandshakeTimer();
    this.socket.end();
    setTimeout(this.destroyLingering, LINGER_MS).unref();
  }

  private readonly destroyLingering = (): void => {
    if (!this.socketClosed) this.socket.destroy();
  };

  private readonly onHandshakeTimeout = (): void => {
    this.handshakeTimer = null;
    if (this.phase !== 'handshake') return;
    this.context.logger.warn(
      { idleMs: this.context.handshakeTimeoutMs, elapsedMs: Date.now() - this.startedAt, options: this.handshake.optionCount },
      'nbd handshake timed out',
    );
    this.phase = 'ending';
    this.socket.destroy();
  };

  private clearHandshakeTimer(): void {
    if (this.handshakeTimer) {
      clearTimeout(this.handshakeTimer);
      this.handshakeTimer = null;
    }
  }

  private readonly onError = (error: Error): void => {
    this.context.logger.debug({ err: error }, 'nbd socket error');
  };

  private readonly onClose = (): void => {
    if (this.socketClosed) return;
    this.socketClosed = true;
    this.clearHandshakeTimer();
    this.transmission?.socketGone();
    this.context.logger.debug('nbd connection closed');
    if (!this.transmission || this.transmission.requestsInFlight === 0) this.finish();
  };

  private readonly onIdle = (): void => {
    if (this.socketClosed) this.finish();
  };

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.device) {
      try {
        this.device.release();
      } catch (error) {
        this.context.logger.error({ err: error }, 'nbd export release failed');
      }
      this.device = null;
    }
    this.resolveDone();
  }
}
