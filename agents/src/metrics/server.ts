import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { AgentMetrics } from './agent-metrics.ts';

export interface MetricsServer {
  /** `host:port` it listens on. */
  address: string;
  close(): Promise<void>;
}

/** A scrape that takes longer than this is answered 503 (a stuck source must not pile up scrapes). */
const SCRAPE_TIMEOUT_MS = 10_000;

/**
 * `GET /metrics` on its own plain-HTTP listener, apart from the control API
 * (which requires client certificates Prometheus would not have). It serves
 * nothing else and reads nothing from the request beyond method and path.
 * A listen failure rejects with the socket error (`code` EADDRINUSE,
 * EACCES, EADDRNOTAVAIL…) marked `listener: 'metrics'`.
 */
export async function startMetricsServer(options: { host: string; port: number; metrics: AgentMetrics; logger: Logger }): Promise<MetricsServer> {
  const { metrics, logger } = options;
  const server = http.createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: metrics are at /metrics\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`scrape took longer than ${SCRAPE_TIMEOUT_MS} ms`)), SCRAPE_TIMEOUT_MS);
    });
    Promise.race([metrics.render(), timeout]).then(
      (text) => {
        response.writeHead(200, { 'content-type': metrics.contentType });
        response.end(request.method === 'HEAD' ? undefined : text);
      },
      (error: unknown) => {
        logger.warn({ err: error }, 'metrics scrape failed');
        response.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics unavailable\n');
      },
    ).finally(() => clearTimeout(timer));
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => reject(Object.assign(error, { listener: 'metrics' }));
    server.once('error', onError);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (error) => logger.error({ err: error }, 'metrics listener failed'));
  const bound = server.address() as AddressInfo;
  let closing: Promise<void> | null = null;
  return {
    address: bound.address.includes(':') ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
