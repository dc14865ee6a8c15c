import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  EstablishFlashRequestSchema,
  FlashRefreshRequestSchema,
  FlashReverseRequestSchema,
  FlashSessionInfoSchema,
  FlashSessionListSchema,
  FlashSessionNameSchema,
  FlashTrackMapSchema,
  FlashUpdateRequestSchema,
  FlashWithdrawRequestSchema,
  ProblemError,
  TrackMapQuerySchema,
} from '@tandem/contract';
import type { FlashService } from '../../flash/service.ts';
import type { ApiDependencies } from '../app.ts';
import type { ZodTypeProvider } from '../zod-schemas.ts';

const SessionParamsSchema = z.object({ name: FlashSessionNameSchema });
const PairParamsSchema = z.object({ name: FlashSessionNameSchema, pair: z.string().min(1).max(128) });

/** A request whose body may be left out entirely: no body means every field takes its default. */
function optionalBody<S extends z.ZodType>(schema: S) {
  return z.preprocess((value) => value ?? {}, schema);
}

/** Flash copy sessions: thin wrappers over the FlashService; every rule lives there. */
export async function flashRoutes(fastify: FastifyInstance, deps: ApiDependencies): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const flash = (): FlashService => {
    if (!deps.flash) throw new ProblemError('not-supported', 'this agent runs without flash copy');
    return deps.flash;
  };

  app.get('/v1/flash-sessions', { schema: { response: { 200: FlashSessionListSchema } } }, async () => ({
    sessions: flash().list(),
  }));

  app.post(
    '/v1/flash-sessions',
    { schema: { body: EstablishFlashRequestSchema, response: { 201: FlashSessionInfoSchema } } },
    async (request, reply) => reply.code(201).send(await flash().establish(request.body)),
  );

  app.get(
    '/v1/flash-sessions/:name',
    { schema: { params: SessionParamsSchema, response: { 200: FlashSessionInfoSchema } } },
    async (request) => flash().get(request.params.name),
  );

  app.patch(
    '/v1/flash-sessions/:name',
    { schema: { params: SessionParamsSchema, body: FlashUpdateRequestSchema, response: { 200: FlashSessionInfoSchema } } },
    async (request) => flash().update(request.params.name, request.body),
  );

  app.delete('/v1/flash-sessions/:name', { schema: { params: SessionParamsSchema } }, async (request, reply) => {
    await flash().remove(request.params.name);
    return reply.code(204).send();
  });

  app.post(
    '/v1/flash-sessions/:name/refresh',
    { schema: { params: SessionParamsSchema, body: optionalBody(FlashRefreshRequestSchema), response: { 200: FlashSessionInfoSchema } } },
    async (request) => flash().refresh(request.params.name, request.body),
  );

  app.post(
    '/v1/flash-sessions/:name/reverse',
    { schema: { params: SessionParamsSchema, body: optionalBody(FlashReverseRequestSchema), response: { 200: FlashSessionInfoSchema } } },
    async (request) => flash().reverse(request.params.name, request.body),
  );

  app.post(
    '/v1/flash-sessions/:name/withdraw',
    { schema: { params: SessionParamsSchema, body: optionalBody(FlashWithdrawRequestSchema), response: { 200: FlashSessionInfoSchema } } },
    async (request) => flash().withdraw(request.params.name, request.body),
  );

  app.get(
    '/v1/flash-sessions/:name/pairs/:pair/track-map',
    { schema: { params: PairParamsSchema, querystring: TrackMapQuerySchema, response: { 200: FlashTrackMapSchema } } },
    async (request) => flash().trackMap(request.params.name, request.params.pair, request.query),
  );
}
