import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import websocket from '@fastify/websocket';
import type { AgentInfo } from '@tandem/contract';
import type { Engine } from '../storage/engine-api.ts';
import type { Authority } from '../tls/authority.ts';
import { installAuthentication } from './auth.ts';
import { installErrorHandling } from './errors.ts';
import { agentRoutes } from './routes/agent.ts';
import { eventRoutes } from './routes/events.ts';
import { pairRoutes } from './routes/pair.ts';
import { volumeRoutes } from './routes/volumes.ts';
import { jsonSerializerCompiler, zodValidatorCompiler } from './zod-schemas.ts';

/** What the control API needs from the rest of the agent. It holds no storage logic of its own. */
export interface ApiDependencies {
  engine: Engine;
  /** The CA that signs paired clients' certificates. */
  authority: Authority;
  /** Identity and addresses, as `GET /v1/agent` reports them. */
  agentInfo: () => AgentInfo;
}

/** The control API as a plugin, apart from the listening server (tests `inject()` into it). */
export async function apiApp(app: FastifyInstance, deps: ApiDependencies): Promise<void> {
  app.setValidatorCompiler(zodValidatorCompiler);
  app.setSerializerCompiler(jsonSerializerCompiler);
  installErrorHandling(app);
  installAuthentication(app, deps.engine.catalog);
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  await app.register(agentRoutes, deps);
  await app.register(pairRoutes, deps);
  await app.register(volumeRoutes, deps);
  await app.register(eventRoutes, deps);
}
// The plugin shares its error handler, hooks and compilers with the instance it is registered on.
(apiApp as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

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
