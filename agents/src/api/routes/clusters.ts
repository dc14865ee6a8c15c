import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  AddClusterMemberRequestSchema,
  ClusterHistoryQuerySchema,
  ClusterHistorySchema,
  ClusterInfoSchema,
  ClusterListSchema,
  ClusterNameSchema,
  CreateClusterRequestSchema,
  ProblemError,
  SessionNameSchema,
  UpdateClusterRequestSchema,
} from '@tandem/contract';
import type { ClusterManager } from '../../replication/clusters/manager.ts';
import type { ApiDependencies } from '../app.ts';
import type { ZodTypeProvider } from '../zod-schemas.ts';

const ClusterParamsSchema = z.object({ name: ClusterNameSchema });

/** Clusters of sessions and their master data sets: thin wrappers over the cluster manager. */
export async function clusterRoutes(fastify: FastifyInstance, deps: ApiDependencies): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const clusters = (): ClusterManager => {
    if (!deps.replication) throw new ProblemError('not-supported', 'this agent runs without replication');
    return deps.replication.clusters;
  };

  app.get('/v1/clusters', { schema: { response: { 200: ClusterListSchema } } }, async () => ({ clusters: clusters().list() }));

  app.post(
    '/v1/clusters',
    { schema: { body: CreateClusterRequestSchema, response: { 201: ClusterInfoSchema } } },
    async (request, reply) => reply.code(201).send(await clusters().create(request.body)),
  );

  app.get(
    '/v1/clusters/:name',
    { schema: { params: ClusterParamsSchema, response: { 200: ClusterInfoSchema } } },
    async (request) => clusters().info(request.params.name),
  );

  app.patch(
    '/v1/clusters/:name',
    { schema: { params: ClusterParamsSchema, body: UpdateClusterRequestSchema, response: { 200: ClusterInfoSchema } } },
    async (request) => clusters().update(request.params.name, request.body),
  );

  app.delete('/v1/clusters/:name', { schema: { params: ClusterParamsSchema } }, async (request, reply) => {
    await clusters().delete(request.params.name);
    return reply.code(204).send();
  });

  app.post(
    '/v1/clusters/:name/members',
    { schema: { params: ClusterParamsSchema, body: AddClusterMemberRequestSchema, response: { 201: ClusterInfoSchema } } },
    async (request, reply) =>
      reply.code(201).send(await clusters().addMember(request.params.name, request.body.session, request.body.site)),
  );

  app.delete(
    '/v1/clusters/:name/members/:session',
    {
      schema: {
        params: z.object({ name: ClusterNameSchema, session: SessionNameSchema }),
        querystring: z.object({ site: z.string().min(1).optional() }),
        response: { 200: ClusterInfoSchema },
      },
    },
    async (request) => clusters().removeMember(request.params.name, request.params.session, request.query.site),
  );

  // The master data set: readable at this agent, or (with ?site=) fetched from a paired site over the peer link.
  app.get(
    '/v1/clusters/:name/history',
    { schema: { params: ClusterParamsSchema, querystring: ClusterHistoryQuerySchema, response: { 200: ClusterHistorySchema } } },
    async (request) => clusters().history(request.params.name, request.query.limit, request.query.site),
  );
}
