import { randomBytes, timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isProblemError, problemHttpStatus, type Problem } from '@tandem/contract';
import { alertRoutes } from './alerts/alert-routes.ts';
import { consoleRoutes } from './api-routes.ts';
import { clusterRoutes } from './sessions/cluster-routes.ts';
import { replicationRoutes } from './sessions/replication-routes.ts';
import type { BackoffPolicy } from './backoff.ts';
import { contentSecurityPolicy } from './content-security-policy.ts';
import { EventHub } from './event-hub.ts';
import { flashRoutes } from './flash/flash-routes.ts';
import { journalRoutes } from './protection/journal-routes.ts';
import { readJsonBody } from './router.ts';
import { plainSecretBox, type SecretBox } from './secret-box.ts';
import { SiteManager } from './site-manager.ts';
import { SiteRegistry } from './site-registry.ts';
import { serveStatic } from './static-files.ts';

export interface BackendOptions {
  /** Where sites.json lives. */
  configDir: string;
  /** The built renderer (out/renderer). */
  rendererDir: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** A fixed token (tests); by default 32 random bytes. */
  token?: string;
  secrets?: SecretBox;
  backoff?: BackoffPolicy;
  log?: (message: string) => void;
}

export interface RunningBackend {
  /** `http://127.0.0.1:PORT` */
  url: string;
  token: string;
  sites: SiteManager;
  close(): Promise<void>;
}

/**
 * The console backend: site registry, agent clients and event fan-in behind
 * a local HTTP + WebSocket API on 127.0.0.1 that also serves the renderer.
 * Plain Node: Electron runs it in-process, `npm start` runs it alone.
 */
export async function startBackend(options: BackendOptions): Promise<RunningBackend> {
  const token = options.token ?? randomBytes(32).toString('hex');
  const registry = await SiteRegistry.open(options.configDir, options.secrets ?? plainSecretBox);
  const sites = new SiteManager(registry, { backoff: options.backoff });
  const routes = journalRoutes(sites, alertRoutes(sites, clusterRoutes(sites, flashRoutes(sites, replicationRoutes(sites, consoleRoutes(sites))))));
  const expected = Buffer.from(token);
  const isTokenValid = (candidate: string) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
  const hub = new EventHub(sites, isTokenValid);
  let origin = '';
  let allowedHosts = new Set<string>();

  const server = http.createServer((request, response) => {
    void handle(request, response).catch((error: unknown) => {
      options.log?.(`backend: ${request.method} ${request.url} failed: ${String(error)}`);
      if (!response.headersSent) sendProblem(response, { problem: 'internal-error', message: 'the console backend failed; see its log' });
      else response.destroy();
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    // Only our own origin: a web page elsewhere that rebinds a name to 127.0.0.1 gets nothing.
    if (!allowedHosts.has(request.headers.host ?? '')) {
      sendProblem(response, { problem: 'access-denied', message: 'wrong Host header' });
      return;
    }
    const url = new URL(request.url ?? '/', origin);
    const headers = securityHeaders(origin);
    if (!url.pathname.startsWith('/api/')) {
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        sendProblem(response, { problem: 'bad-request', message: 'only GET is served here' });
        return;
      }
      await serveStatic(options.rendererDir, url.pathname, response, headers);
      return;
    }
    const authorization = request.headers.authorization ?? '';
    if (!authorization.startsWith('Bearer ') || !isTokenValid(authorization.slice(7))) {
      sendProblem(response, { problem: 'unauthenticated', message: 'the console API needs the bearer token the backend printed at start' });
      return;
    }
    const requestOrigin = request.headers.origin;
    if (requestOrigin !== undefined && requestOrigin !== origin) {
      sendProblem(response, { problem: 'access-denied', message: `requests from ${requestOrigin} are not accepted` });
      return;
    }
    const match = routes.match(request.method ?? 'GET', url.pathname);
    if (match === undefined) {
      sendProblem(response, { problem: 'not-found', message: `no API route ${url.pathname}` });
      return;
    }
    if (match === 'wrong-method') {
      sendProblem(response, { problem: 'bad-request', message: `${request.method} is not allowed on ${url.pathname}` });
      return;
    }
    try {
      const body = await readJsonBody(request);
      const result = await match.handler({ params: match.params, query: url.searchParams, body });
      const status = result.status ?? 200;
      if (result.body === undefined) response.writeHead(status, headers).end();
      else response.writeHead(status, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify(result.body));
    } catch (error) {
      if (!isProblemError(error)) throw error;
      sendProblem(response, error.toJSON());
    }
  }

  server.on('upgrade', (request, socket, head) => {
    const pathname = new URL(request.url ?? '/', 'http://x').pathname;
    if (!allowedHosts.has(request.headers.host ?? '') || pathname !== '/api/events') {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    hub.handleUpgrade(request, socket, head);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  origin = `http://127.0.0.1:${port}`;
  allowedHosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
  sites.start();

  return {
    url: origin,
    token,
    sites,
    close: async () => {
      sites.stop();
      hub.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function securityHeaders(origin: string): Record<string, string> {
  return {
    'content-security-policy': contentSecurityPolicy(origin),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
  };
}

function sendProblem(response: ServerResponse, problem: Problem): void {
  const status = problemHttpStatus[problem.problem];
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(problem));
}
