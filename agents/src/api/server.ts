import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { ServerTls } from '../tls/files.ts';
import { createApiInstance, type ApiDependencies } from './app.ts';

export interface ApiServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  tls: ServerTls;
  deps: ApiDependencies;
  logger?: FastifyBaseLogger;
  /** How long `close()` waits for requests in flight before cutting connections. */
  closeTimeoutMs?: number;
}

export interface ApiServer {
  app: FastifyInstance;
  host: string;
  port: number;
  /** `host:port`, IPv6 hosts in brackets. */
  address: string;
  close(): Promise<void>;
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Listens with the control API over HTTPS, asking (not requiring) every client for a certificate. */
export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const app = await createApiInstance(options.deps, {
    https: {
      key: options.tls.keyPem,
      cert: options.tls.certificatePem,
      ca: options.tls.caPem,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    },
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    forceCloseConnections: 'idle',
  });
  // Upgraded (WebSocket) connections are invisible to closeAllConnections(); track them all at the TCP level.
  const sockets = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await app.listen({ host: options.host, port: options.port });
  const bound = app.server.address();
  const port = typeof bound === 'object' && bound ? bound.port : options.port;
  const closeTimeoutMs = options.closeTimeoutMs ?? 5_000;
  let closing: Promise<void> | undefined;
  return {
    app,
    host: options.host,
    port,
    address: formatHostPort(options.host, port),
    close() {
      closing ??= (async () => {
        const timer = setTimeout(() => {
          app.log.warn({ connections: sockets.size }, 'API close timed out; dropping connections');
          for (const socket of sockets) socket.destroy();
        }, closeTimeoutMs);
        try {
          await app.close();
        } finally {
          clearTimeout(timer);
        }
      })();
      return closing;
    },
  };
}
