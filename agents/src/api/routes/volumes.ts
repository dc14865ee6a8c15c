import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  CreateSnapshotRequestSchema,
  CreateVolumeRequestSchema,
  ResizeVolumeRequestSchema,
  TrackDetailSchema,
  TrackMapQuerySchema,
  TrackMapSchema,
  VolumeInfoSchema,
  VolumeListSchema,
  VolumeNameSchema,
  VolumeParamsSchema,
} from '@tandem/contract';
import type { ApiDependencies } from '../app.ts';
import type { ZodTypeProvider } from '../zod-schemas.ts';

const TrackParamsSchema = z.object({
  name: VolumeNameSchema,
  track: z.coerce.number().int('a track number is a whole number').min(0, 'track numbers start at 0'),
});

/** Volumes and snapshots: thin wrappers over the Engine; every rule lives there. */
export async function volumeRoutes(fastify: FastifyInstance, deps: ApiDependencies): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { engine } = deps;

  app.get('/v1/volumes', { schema: { response: { 200: VolumeListSchema } } }, async () => ({
    volumes: engine.listVolumes(),
  }));

  app.post(
    '/v1/volumes',
    { schema: { body: CreateVolumeRequestSchema, response: { 201: VolumeInfoSchema } } },
    async (request, reply) => {
      const volume = await engine.createVolume(request.body.name, request.body.sizeBytes);
      return reply.code(201).send(volume);
    },
  );

  app.get(
    '/v1/volumes/:name',
    { schema: { params: VolumeParamsSchema, response: { 200: VolumeInfoSchema } } },
    async (request) => engine.getVolume(request.params.name),
  );

  app.patch(
    '/v1/volumes/:name',
    { schema: { params: VolumeParamsSchema, body: ResizeVolumeRequestSchema, response: { 200: VolumeInfoSchema } } },
    async (request) => engine.resizeVolume(request.params.name, request.body.sizeBytes),
  );

  app.delete('/v1/volumes/:name', { schema: { params: VolumeParamsSchema } }, async (request, reply) => {
    await engine.deleteVolume(request.params.name);
    return reply.code(204).send();
  });

  app.post(
    '/v1/volumes/:name/snapshots',
    { schema: { params: VolumeParamsSchema, body: CreateSnapshotRequestSchema, response: { 201: VolumeInfoSchema } } },
    async (request, reply) => {
      const { name, readOnly } = request.body;
      const snapshot = await engine.createSnapshot(request.params.name, name, readOnly === undefined ? {} : { readOnly });
      return reply.code(201).send(snapshot);
    },
  );

  app.get(
    '/v1/volumes/:name/snapshots',
    { schema: { params: VolumeParamsSchema, response: { 200: VolumeListSchema } } },
    async (request) => {
      const source = engine.getVolume(request.params.name);
      return { volumes: source.snapshots.map((snapshot) => engine.getVolume(snapshot)) };
    },
  );

  app.get(
    '/v1/volumes/:name/track-map',
    { schema: { params: VolumeParamsSchema, querystring: TrackMapQuerySchema, response: { 200: TrackMapSchema } } },
    async (request) => engine.trackMap(request.params.name, request.query),
  );

  app.get(
    '/v1/volumes/:name/tracks/:track',
    { schema: { params: TrackParamsSchema, response: { 200: TrackDetailSchema } } },
    async (request) => engine.trackDetail(request.params.name, request.params.track),
  );
}
