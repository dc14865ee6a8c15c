import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import websocket from '@fastify/websocket';
import type { AgentInfo } from '@tandem/contract';
import type { AlertEvaluator } from '../alerts/evaluator.ts';
import type { FlashService } from '../flash/service.ts';
import type { ReplicationRuntime } from '../replication/runtime.ts';
import type { Engine } from '../storage/engine-api.ts';
import type { Authority } from '../tls/authority.ts';
import { AuditLog, defaultAuditRetention, type AuditRetention } from '../storage/audit-log.ts';
import { installAuditTrail } from './audit.ts';
import { installAuthentication } from './auth.ts';
import { installErrorHandling } from './errors.ts';
import { installRoleChecks } from './roles.ts';
import { agentRoutes } from './routes/agent.ts';
import { alertRoutes } from './routes/alerts.ts';
import { auditRoutes } from './routes/audit.ts';
import { clientRoutes } from './routes/clients.ts';
import { clusterRoutes } from './routes/clusters.ts';
import { eventRoutes } from './routes/events.ts';
import { flashRoutes } from './routes/flash.ts';
import { pairRoutes } from './routes/pair.ts';
import { replicationRoutes } from './routes/replication.ts';
import { journalRoutes } from './routes/journal.ts';
import { volumeRoutes } from './routes/volumes.ts';
import { jsonSerializerCompiler, zodValidatorCompiler } from './zod-schemas.ts';

/** What the control API needs from the rest of the agent. It holds no storage logic of its own. */
export interface ApiDependencies {
  engine: Engine;
  /** The CA that signs paired clients' certificates. */
  authority: Authority;
  /** Identity and addresses, as `GET /v1/agent` reports them. */
  agentInfo: () => AgentInfo;
  /** Paired sites and sessions; absent when the agent runs without replication (API unit tests). */
  replication?: ReplicationRuntime;
  /** Flash copy sessions; absent when the agent runs without them (API unit tests). */
  flash?: FlashService;
  /** How the audit trail is bounded (default: defaultAuditRetention). */
  auditRetention?: AuditRetention;
  /** Alert rules and their settings; absent when the agent runs without them (API unit tests). */
  alerts?: AlertEvaluator;
}

/** The control API as a plugin, apart from the listening server (tests `inject()` into it). */
export async function apiApp(app: FastifyInstance, deps: ApiDependencies): Promise<void> {
  app.setValidatorCompiler(zodValidatorCompiler);
  app.setSerializerCompiler(jsonSerializerCompiler);
  installErrorHandling(app);
  installAuthentication(app, deps.engine.catalog);
  // After authentication (hooks run in the order they were added): the caller is known when its role is checked.
  installRoleChecks(app);
  const auditLog = new AuditLog(deps.engine.catalog.db, deps.auditRetention ?? defaultAuditRetention);
  installAuditTrail(app, auditLog);
  await app.register(websocket, { options: { maxPayload: 64 * 1024 }, preClose: closeWebSockets });
  await app.register(agentRoutes, deps);
  await app.register(pairRoutes, deps);
  await app.register(clientRoutes, deps);
  await app.register(volumeRoutes, deps);
  await app.register(eventRoutes, deps);
  await app.register(replicationRoutes, deps);
  await app.register(clusterRoutes, deps);
  await app.register(flashRoutes, deps);
  await app.register(auditRoutes, { ...deps, auditLog });
  await app.register(alertRoutes, deps);
  await app.register(journalRoutes, deps);
}
// The plugin shares its error handler, hooks and compilers with the instance it is registered on.
(apiApp as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

/**
 * Says goodbye to every event stream (1001 going away) and cuts the ones that
 * do not finish the closing handshake within a second, so shutdown never
 * waits on a slow or vanished console.
 */
async function closeWebSockets(this: FastifyInstance): Promise<void> {
  const server = this.websocketServer;
  for (const client of server.clients) client.close(1001, 'agent shutting down');
  const deadline = Date.now() + 1000;
  while (server.clients.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  for (const client of server.clients) client.terminate();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A fastify instance with the API registered; HTTPS when `https` options are given. */
export async function createApiInstance(
  deps: ApiDependencies,
  options: Omit<FastifyServerOptions, 'https'> & { https?: import('node:https').ServerOptions } = {},
): Promise<FastifyInstance> {
  const app = Fastify({
    bodyLimit: 1024 * 1024,
    requestTimeout: 30_000,
    connectionTimeout: 30_000,
    keepAliveTimeout: 10_000,
    return503OnClosing: true,
    ...options,
  } as FastifyServerOptions) as unknown as FastifyInstance;
  await app.register(apiApp, deps);
  await app.ready();
  return app;
}
