import tls from 'node:tls';
import WebSocket from 'ws';
import { EventStreamMessageSchema, ProblemError, type AgentEvent, type Problem } from '@tandem/contract';
import { splitAddress, unreachable, type AgentTlsOptions } from './agent-http.ts';
import { agentRoutes } from './agent-routes.ts';
import { backoffDelay, defaultBackoff, type BackoffPolicy } from './backoff.ts';
import { sameFingerprint } from './tls-identity.ts';

export type StreamState =
  | { state: 'connecting' }
  | { state: 'connected'; lastEventId: number }
  | { state: 'reconnecting'; problem: Problem; nextAttemptAt: Date };

export interface EventStreamOptions {
  address: string;
  tls: AgentTlsOptions;
  onEvent: (event: AgentEvent) => void;
  onState: (state: StreamState) => void;
  backoff?: BackoffPolicy;
  /** A connection with no pong for this long is treated as lost. */
  heartbeatMs?: number;
}

/**
 * One agent's WebSocket event stream (/v1/events/stream), kept open: on any
 * loss it reconnects with backoff and resumes after the last event seen, and
 * every state change is reported so the console can show it.
 */
export class AgentEventStream {
  private socket: WebSocket | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private lastEventId = 0;
  private stopped = false;

  constructor(private readonly options: EventStreamOptions) {}

  start(): void {
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeatTimer);
    this.socket?.removeAllListeners();
    this.socket?.on('error', () => undefined);
    this.socket?.terminate();
    this.socket = undefined;
  }

  private open(): void {
    if (this.stopped) return;
    this.options.onState({ state: 'connecting' });
    const { host, port } = splitAddress(this.options.address);
    const pin = this.options.tls.pinnedFingerprint;
    let failure: ProblemError | undefined;
    const url = `wss://${host.includes(':') ? `[${host}]` : host}:${port}${agentRoutes.eventStream}?after=${this.lastEventId}`;
    const socket = new WebSocket(url, {
      handshakeTimeout: 10_000,
      createConnection: () => {
        const connection = tls.connect({
          host,
          port,
          ca: this.options.tls.caCertificate,
          cert: this.options.tls.clientCertificate,
          key: this.options.tls.clientKeyPem,
          rejectUnauthorized: false,
          ALPNProtocols: ['http/1.1'],
        });
        connection.once('secureConnect', () => {
          const presented = connection.getPeerCertificate().fingerprint256 ?? '';
          if (pin && !sameFingerprint(presented, pin)) {
            failure = new ProblemError('certificate-mismatch', `the agent at ${this.options.address} presented certificate ${presented}, not the paired ${pin}`);
            connection.destroy();
          }
        });
        return connection;
      },
    });
    this.socket = socket;
    let heardBack = true;

    socket.on('open', () => {
      this.attempt = 0;
      this.heartbeatTimer = setInterval(() => {
        if (!heardBack) {
          socket.terminate();
          return;
        }
        heardBack = false;
        socket.ping();
      }, this.options.heartbeatMs ?? 15_000);
    });
    socket.on('pong', () => {
      heardBack = true;
    });
    socket.on('message', (data) => {
      heardBack = true;
      this.receive(data.toString());
    });
    socket.on('unexpected-response', (_request, response) => {
      failure =
        response.statusCode === 401 || response.statusCode === 403
          ? new ProblemError('unauthenticated', `the agent at ${this.options.address} refused the console's certificate (HTTP ${response.statusCode}); pair again`)
          : new ProblemError('agent-unreachable', `the agent at ${this.options.address} refused the event stream (HTTP ${response.statusCode})`);
      socket.terminate();
    });
    socket.on('error', (error) => {
      failure ??= error instanceof ProblemError ? error : unreachable(this.options.address, error);
    });
    socket.on('close', () => {
      clearInterval(this.heartbeatTimer);
      if (this.socket === socket) this.socket = undefined;
      this.scheduleRetry(failure ?? new ProblemError('agent-unreachable', `the event stream of the agent at ${this.options.address} closed`));
    });
  }

  private receive(text: string): void {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return;
    }
    const message = EventStreamMessageSchema.safeParse(json);
    if (!message.success) return;
    if (message.data.kind === 'hello') {
      this.lastEventId = Math.max(this.lastEventId, message.data.lastEventId);
      this.options.onState({ state: 'connected', lastEventId: this.lastEventId });
      return;
    }
    this.lastEventId = Math.max(this.lastEventId, message.data.event.id);
    this.options.onEvent(message.data.event);
  }

  private scheduleRetry(problem: ProblemError): void {
    if (this.stopped) return;
    const delay = backoffDelay(this.attempt++, this.options.backoff ?? defaultBackoff);
    this.options.onState({ state: 'reconnecting', problem: problem.toJSON(), nextAttemptAt: new Date(Date.now() + delay) });
    this.retryTimer = setTimeout(() => this.open(), delay);
  }
}
