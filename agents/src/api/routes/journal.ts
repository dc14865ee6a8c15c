import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  BookmarkRequestSchema,
  ImageAccessInfoSchema,
  ImageAccessListSchema,
  ImageAccessRequestSchema,
  JournalPointListSchema,
  JournalPointSchema,
  JournalPointsQuerySchema,
  JournalViewSchema,
  ProblemError,
  SessionNameSchema,
  SetJournalRequestSchema,
} from '@tandem/contract';
import type { JournalFeed } from '../../replication/journal-feed.ts';
import type { ApiDependencies } from '../app.ts';
import type { ZodTypeProvider } from '../zod-schemas.ts';

const SessionParamsSchema = z.object({ name: SessionNameSchema });
const ImageParamsSchema = z.object({ name: SessionNameSchema, id: z.coerce.number().int().min(1) });

/**
 * Continuous data protection at a session's secondary agent (issue 13):
 * `GET|PUT|DELETE /v1/sessions/:name/journal`, bookmarks, points, and
 * instant image access (`/v1/sessions/:name/images`). Thin wrappers over
 * replication/journal-feed.ts.
 */
export async function journalRoutes(fastify: FastifyInstance, deps: ApiDependencies): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const journals = (): JournalFeed => {
    if (!deps.replication) throw new ProblemError('not-supported', 'this agent runs without replication');
    return deps.replication.service.journals;
  };

  app.get('/v1/sessions/:name/journal', { schema: { params: SessionParamsSchema, response: { 200: JournalViewSchema } } }, async (request) =>
    journals().view(request.params.name),
  );

  app.put(
    '/v1/sessions/:name/journal',
    { schema: { params: SessionParamsSchema, body: SetJournalRequestSchema, response: { 200: JournalViewSchema } } },
    async (request) => journals().set(request.params.name, request.body),
  );

  app.delete('/v1/sessions/:name/journal', { schema: { params: SessionParamsSchema } }, async (request, reply) => {
    await journals().disable(request.params.name);
    return reply.code(204).send();
  });

  app.post(
    '/v1/sessions/:name/journal/bookmarks',
    { schema: { params: SessionParamsSchema, body: BookmarkRequestSchema, response: { 201: JournalPointSchema } } },
    async (request, reply) => reply.code(201).send(await journals().bookmark(request.params.name, request.body.name)),
  );

  app.get(
    '/v1/sessions/:name/journal/points',
    { schema: { params: SessionParamsSchema, querystring: JournalPointsQuerySchema, response: { 200: JournalPointListSchema } } },
    async (request) => journals().points(request.params.name, request.query.every * 1000),
  );

  app.get('/v1/sessions/:name/images', { schema: { params: SessionParamsSchema, response: { 200: ImageAccessListSchema } } }, async (request) => ({
    images: journals().listImages(request.params.name),
  }));

  app.post(
    '/v1/sessions/:name/images',
    { schema: { params: SessionParamsSchema, body: ImageAccessRequestSchema, response: { 201: ImageAccessInfoSchema } } },
    async (request, reply) => reply.code(201).send(journals().openImage(request.params.name, request.body)),
  );

  app.delete('/v1/sessions/:name/images/:id', { schema: { params: ImageParamsSchema } }, async (request, reply) => {
    await journals().endImage(request.params.name, request.params.id);
    return reply.code(204).send();
  });
}
