import type { TLSSocket } from 'node:tls';
import { isProblemError, ProblemError, type ProblemCode } from '@tandem/contract';
import type { ClockOffset } from './clock-offset.ts';
import { encodeFrame, FLAG_ERROR, FrameKind, FrameReader, type Frame, type OutgoingPayload } from './frames.ts';

/** What a request handler gets and gives back. */
export interface RpcRequest {
  method: string;
  params: Record<string, unknown>;
  payload: Buffer | null;
  /** The paired agent that sent it. */
  peerAgentId: string;
}

export interface RpcResult {
  result?: unknown;
  payload?: Buffer | null;
}

export type RpcHandler = (request: RpcRequest) => Promise<RpcResult> | RpcResult;

interface Pending {
  resolve: (value: { result: unknown; payload: Buffer | null }) => void;
  reject: (error: Error) => void;
  /** When the call times out (Date.now() ms; Infinity without a timeout), checked by the connection's sweep. */
  deadline: number;
  method: string;
  timeoutMs: number;
}

/** How often a connection looks for calls past their timeout (a call fails within this much after it). */
const TIMEOUT_SWEEP_MS = 250;

export interface RpcConnectionOptions {
  peerAgentId: string;
  /** Dispatches incoming requests (server side); absent on a client-only connection. */
  handler?: RpcHandler;
  /** Send a heartbeat this often (client side). */
  heartbeatMs?: number;
  /** Client side: heartbeats carry our clock and replies the other side's; the samples go here (clock-offset.ts). */
  clock?: ClockOffset;
  /** Declare the connection dead after this long without any frame. */
  deadAfterMs: number;
  onClose: (reason: Error) => void;
}

/**
 * One TLS connection of the peer link: pipelined requests and responses
 * (answered in any order), heartbeats, and a dead-peer timer. Writes respect
 * backpressure: while the socket's buffer is full, callers wait for drain.
 */
export class RpcConnection {
  private readonly socket: TLSSocket;
  private readonly options: RpcConnectionOptions;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private lastHeard = Date.now();
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;
  private drainWaiters: Array<() => void> = [];

  constructor(socket: TLSSocket, options: RpcConnectionOptions) {
    this.socket = socket;
    this.options = options;
    socket.setNoDelay(true);
    const reader = new FrameReader((frame) => this.onFrame(frame));
    socket.on('data', (chunk: Buffer) => {
      this.lastHeard = Date.now();
      try {
        reader.push(chunk);
      } catch (error) {
        this.close(error as Error);
      }
    });
    socket.on('drain', () => {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const wake of waiters) wake();
    });
    socket.on('error', (error) => this.close(error));
    socket.on('close', () => this.close(new ProblemError('link-down', `the link to ${options.peerAgentId} closed`)));
    if (options.heartbeatMs) {
      const beat = () => this.send(FrameKind.Heartbeat, 0, options.clock ? { t: Date.now() } : undefined, null);
      this.timers.push(setInterval(beat, options.heartbeatMs));
      // The first at once: the other clock is known a round trip after connecting.
      if (options.clock) beat();
    }
    this.timers.push(
      setInterval(() => {
        if (Date.now() - this.lastHeard > options.deadAfterMs) {
          this.close(new ProblemError('link-down', `no word from ${options.peerAgentId} for ${options.deadAfterMs} ms`));
        }
      }, Math.max(100, Math.floor(options.deadAfterMs / 4))),
    );
    // Call timeouts: one sweep per connection rather than a timer armed and cleared per call (the hot path).
    this.timers.push(setInterval(() => this.expire(), TIMEOUT_SWEEP_MS));
    for (const timer of this.timers) timer.unref();
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** When the last bytes from the other side arrived (Date.now()). */
  get lastHeardAt(): number {
    return this.lastHeard;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Sends a request and waits for its response (failing with `timeout` after `timeoutMs`, 0 for never). */
  call(
    method: string,
    params: Record<string, unknown>,
    payload: OutgoingPayload = null,
    timeoutMs = 30_000,
  ): Promise<{ result: unknown; payload: Buffer | null }> {
    if (this.closed) return Promise.reject(new ProblemError('link-down', `the link to ${this.options.peerAgentId} is down`));
    const id = this.nextId;
    this.nextId = (this.nextId + 1) >>> 0 || 1;
    const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : Number.POSITIVE_INFINITY;
    const promise = new Promise<{ result: unknown; payload: Buffer | null }>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, deadline, method, timeoutMs });
    });
    const meta = { m: method, p: params };
    // The common case sends at once, in this tick; only a full socket buffer makes the request wait for drain.
    try {
      if (this.socket.writableNeedDrain) void this.sendWhenWritable(FrameKind.Request, id, meta, payload).catch((error: Error) => this.fail(id, error));
      else this.send(FrameKind.Request, id, meta, payload);
    } catch (error) {
      this.fail(id, error as Error); // e.g. parameters that are not JSON
    }
    return promise;
  }

  private fail(id: number, error: Error): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    pending.reject(error);
  }

  /** Fails the calls past their timeout. */
  private expire(): void {
    if (this.pending.size === 0) return;
    const now = Date.now();
    for (const [id, pending] of this.pending) {
      if (pending.deadline > now) continue;
      this.pending.delete(id);
      pending.reject(new ProblemError('timeout', `${pending.method} to ${this.options.peerAgentId} took over ${pending.timeoutMs} ms`));
    }
  }

  private async sendWhenWritable(kind: FrameKind, id: number, meta: unknown, payload: OutgoingPayload, flags = 0): Promise<void> {
    while (!this.closed && this.socket.writableNeedDrain) {
      await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    }
    this.send(kind, id, meta, payload, flags);
  }

  private send(kind: FrameKind, id: number, meta: unknown, payload: OutgoingPayload, flags = 0): void {
    if (this.closed) return;
    const parts = encodeFrame(kind, id, meta, payload, flags);
    if (parts.length === 1) this.socket.write(parts[0]);
    else {
      this.socket.cork();
      for (const part of parts) this.socket.write(part);
      this.socket.uncork();
    }
  }

  private onFrame(frame: Frame): void {
    switch (frame.kind) {
      case FrameKind.Heartbeat: {
        // A heartbeat with the sender's clock gets ours back (older agents send none and get none).
        const sent = (frame.meta as { t?: unknown } | undefined)?.t;
        this.send(FrameKind.HeartbeatReply, 0, typeof sent === 'number' ? { t: sent, s: Date.now() } : undefined, null);
        return;
      }
      case FrameKind.HeartbeatReply: {
        const reply = frame.meta as { t?: unknown; s?: unknown } | undefined;
        if (this.options.clock && typeof reply?.t === 'number' && typeof reply.s === 'number') this.options.clock.add(reply.t, reply.s, Date.now());
        return;
      }
      case FrameKind.Response: {
        const pending = this.pending.get(frame.id);
        if (!pending) return; // timed out already
        this.pending.delete(frame.id);
        const meta = (frame.meta ?? {}) as { r?: unknown; e?: { problem?: string; message?: string; detail?: unknown } };
        if (frame.flags & FLAG_ERROR) {
          const problem = (meta.e?.problem ?? 'internal-error') as ProblemCode;
          const detail = typeof meta.e?.detail === 'object' && meta.e.detail !== null ? (meta.e.detail as Record<string, unknown>) : undefined;
          pending.reject(new ProblemError(problem, meta.e?.message ?? 'the peer refused the request', detail));
        } else pending.resolve({ result: meta.r, payload: frame.payload });
        return;
      }
      case FrameKind.Request:
        void this.serve(frame);
        return;
    }
  }

  private async serve(frame: Frame): Promise<void> {
    const meta = (frame.meta ?? {}) as { m?: unknown; p?: unknown };
    try {
      if (!this.options.handler) throw new ProblemError('not-supported', 'this side of the link takes no requests');
      if (typeof meta.m !== 'string' || typeof meta.p !== 'object' || meta.p === null) {
        throw new ProblemError('bad-request', 'a peer request needs a method name and parameters');
      }
      // Payloads are views of the buffer the socket allocated for this read (or of the frame's own
      // concatenation); Node does not reuse them, so a handler may keep one after the call.
      const answer = await this.options.handler({
        method: meta.m,
        params: meta.p as Record<string, unknown>,
        payload: frame.payload,
        peerAgentId: this.options.peerAgentId,
      });
      if (this.socket.writableNeedDrain) await this.sendWhenWritable(FrameKind.Response, frame.id, { r: answer.result ?? null }, answer.payload ?? null);
      else this.send(FrameKind.Response, frame.id, { r: answer.result ?? null }, answer.payload ?? null);
    } catch (error) {
      // A refusal's detail travels with it (a `pair-broken` names its copy set).
      const problem = isProblemError(error)
        ? { problem: error.problem, message: error.message, ...(error.detail ? { detail: error.detail } : {}) }
        : { problem: 'internal-error', message: 'the peer failed to serve the request' };
      await this.sendWhenWritable(FrameKind.Response, frame.id, { e: problem }, null, FLAG_ERROR);
    }
  }

  /** Ends the connection; every pending call fails with the reason. */
  close(cause: Error = new ProblemError('link-down', 'the link was closed')): void {
    if (this.closed) return;
    const reason = isProblemError(cause)
      ? cause
      : new ProblemError('link-down', `the link to ${this.options.peerAgentId} failed: ${cause.message}`);
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    for (const [, pending] of this.pending) pending.reject(reason);
    this.pending.clear();
    for (const wake of this.drainWaiters) wake();
    this.drainWaiters = [];
    this.socket.destroy();
    this.options.onClose(reason);
  }
}
