import type { FastifyInstance } from 'fastify';
import { AgentInfoSchema, HealthSchema, PoolStatsSchema } from '@tandem/contract';
import type { ApiDependencies } from '../app.ts';
import type { ZodTypeProvider } from '../zod-schemas.ts';

/** `GET /v1/health` (public), `GET /v1/agent`, `GET /v1/pool`. */
export async function agentRoutes(fastify: FastifyInstance, deps: ApiDependencies): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get('/v1/health', { config: { public: true }, schema: { response: { 200: HealthSchema } } }, async () => {
    const info = deps.agentInfo();
    return { status: 'ok' as const, site: info.site, agentId: info.agentId, version: info.version };
  });

  // Also who the caller is and its role, so a console knows what it may offer.
  app.get('/v1/agent', { schema: { response: { 200: AgentInfoSchema } } }, async (request) => {
    const client = request.client!;
    return {
      ...deps.agentInfo(),
      caller: { subject: client.subject, serial: client.serial, role: client.role!, roleSource: client.roleSource },
    };
  });

  app.get('/v1/pool', { schema: { response: { 200: PoolStatsSchema } } }, async () => deps.engine.poolStats());
}
