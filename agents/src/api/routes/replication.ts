import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  AddPairRequestSchema,
  CreateSessionRequestSchema,
  SessionActionOptionsSchema,
  FailbackPreflightSchema,
  PairBitmapQuerySchema,
  PairBitmapSchema,
  PairSiteRequestSchema,
  PeerAcceptRequestSchema,
  PeerAcceptResponseSchema,
  PeerInfoSchema,
  PeerListSchema,
  ProblemError,
  RemovePairQuerySchema,
  SessionActionSchema,
  SessionHistoryQuerySchema,
  SessionHistorySchema,
  SessionInfoSchema,
  SessionListSchema,
  SessionNameSchema,
  ShipCycleReportSchema,
  UpdateSessionRequestSchema,
  VerifyReportSchema,
  VolumeNameSchema,
} from '@tandem/contract';
import type { ReplicationRuntime } from '../../replication/runtime.ts';
import type { ApiDependencies } from '../app.ts';
import type { ZodTypeProvider } from '../zod-schemas.ts';

const SessionParamsSchema = z.object({ name: SessionNameSchema });
const booleanText = z
  .enum(['true', 'false'])
  .transform((value) => value === 'true')
  .optional();

/** Paired sites and mirroring sessions: thin wrappers over the replication runtime. */
export async function replicationRoutes(fastify: FastifyInstance, deps: ApiDependencies): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const runtime = (): ReplicationRuntime => {
    if (!deps.replication) throw new ProblemError('not-supported', 'this agent runs without replication');
    return deps.replication;
  };

  app.get('/v1/peers', { schema: { response: { 200: PeerListSchema } } }, async () => ({ peers: runtime().peers.info() }));

  app.post(
    '/v1/peers',
    { schema: { body: PairSiteRequestSchema, response: { 201: PeerInfoSchema } } },
    async (request, reply) => {
      const peer = await runtime().pairWith(request.body.apiAddress, request.body.token, request.body.fingerprint);
      return reply.code(201).send(peer);
    },
  );

  // Agent to agent: the token proves the caller may pair; nothing else is needed.
  app.post(
    '/v1/peers/accept',
    { config: { public: true }, schema: { body: PeerAcceptRequestSchema, response: { 200: PeerAcceptResponseSchema } } },
    async (request) => runtime().accept(request.body),
  );

  app.patch(
    '/v1/peers/:site',
    {
      schema: {
        params: z.object({ site: z.string().min(1) }),
        body: z.object({ linkAddress: z.string().regex(/^\[?[^\]]+\]?:\d+$/, 'the link address is host:port') }),
        response: { 200: PeerInfoSchema },
      },
    },
    async (request) => {
      const peers = runtime().peers;
      peers.setLinkAddress(request.params.site, request.body.linkAddress);
      const agentId = peers.get(request.params.site).agentId;
      return peers.info().find((peer) => peer.agentId === agentId)!;
    },
  );

  app.get('/v1/sessions', { schema: { response: { 200: SessionListSchema } } }, async () => ({
    sessions: runtime().service.list(),
  }));

  app.post(
    '/v1/sessions',
    { schema: { body: CreateSessionRequestSchema, response: { 201: SessionInfoSchema } } },
    async (request, reply) => {
      const service = runtime().service;
      const seconds = request.body.shipIntervalSeconds;
      const session = await service.createSession(request.body.name, request.body.type, request.body.peer, {
        shipIntervalMs: seconds === undefined ? undefined : Math.round(seconds * 1000),
      });
      return reply.code(201).send(service.info(session));
    },
  );

  app.get(
    '/v1/sessions/:name',
    { schema: { params: SessionParamsSchema, response: { 200: SessionInfoSchema } } },
    async (request) => {
      const service = runtime().service;
      return service.info(service.session(request.params.name));
    },
  );

  // Settings changeable while the session runs (both sites learn them).
  app.patch(
    '/v1/sessions/:name',
    { schema: { params: SessionParamsSchema, body: UpdateSessionRequestSchema, response: { 200: SessionInfoSchema } } },
    async (request) => {
      const service = runtime().service;
      const seconds = request.body.shipIntervalSeconds;
      if (seconds === undefined) throw new ProblemError('bad-request', 'nothing to change: give shipIntervalSeconds');
      const session = await service.setShipInterval(request.params.name, Math.round(seconds * 1000));
      return service.info(session);
    },
  );

  // The agent's own samples of the session (state, health, consistency time, exposure, peer links), with gaps where it took none.
  app.get(
    '/v1/sessions/:name/history',
    { schema: { params: SessionParamsSchema, querystring: SessionHistoryQuerySchema, response: { 200: SessionHistorySchema } } },
    async (request) => runtime().history.history(request.params.name, request.query),
  );

  // Snapshot shipping: one cycle now, answered once the target committed it.
  app.post(
    '/v1/sessions/:name/ship-now',
    { schema: { params: SessionParamsSchema, response: { 200: ShipCycleReportSchema } } },
    async (request) => {
      const service = runtime().service;
      const report = await service.shipNow(request.params.name);
      return {
        session: service.session(request.params.name).name,
        cycle: report.cycle,
        time: new Date(report.time).toISOString(),
        tracks: report.tracks,
        bytesSent: report.bytesSent,
        durationMs: report.durationMs,
      };
    },
  );

  app.post(
    '/v1/sessions/:name/pairs',
    { schema: { params: SessionParamsSchema, body: AddPairRequestSchema, response: { 201: SessionInfoSchema } } },
    async (request, reply) => {
      const service = runtime().service;
      await service.addPair(request.params.name, request.body.h1Volume, request.body.h2Volume, {
        primaryAgent: request.body.primaryAgent,
      });
      return reply.code(201).send(service.info(service.session(request.params.name)));
    },
  );

  app.delete(
    '/v1/sessions/:name/pairs/:volume',
    // Defined sessions, and started ones (preparing, prepared, suspended): the other copy sets keep mirroring.
    { schema: { params: z.object({ name: SessionNameSchema, volume: VolumeNameSchema }), querystring: RemovePairQuerySchema } },
    async (request, reply) => {
      await runtime().service.removePair(request.params.name, request.params.volume, { primaryAgent: request.query.primaryAgent });
      return reply.code(204).send();
    },
  );

  // The raw out-of-sync (or target-changed) bitmap of a copy set at this site, as runs: what may differ, exactly.
  app.get(
    '/v1/sessions/:name/pairs/:pair/bitmap',
    {
      schema: {
        params: z.object({ name: SessionNameSchema, pair: z.string().min(1).max(200) }),
        querystring: PairBitmapQuerySchema,
        response: { 200: PairBitmapSchema },
      },
    },
    async (request) => runtime().service.reports.pairBitmap(request.params.name, request.params.pair, request.query.which),
  );

  app.post(
    '/v1/sessions/:name/actions/:action',
    {
      schema: {
        params: z.object({ name: SessionNameSchema, action: SessionActionSchema }),
        body: SessionActionOptionsSchema.optional(),
        response: { 200: SessionInfoSchema },
      },
    },
    async (request) => runtime().service.act(request.params.name, request.params.action, request.body ?? {}),
  );

  // Online verify of a duplex session by segment codes (runs while writes go on; may take a while on big volumes).
  app.post(
    '/v1/sessions/:name/verify',
    { schema: { params: SessionParamsSchema, response: { 200: VerifyReportSchema } } },
    async (request) => runtime().service.verify(request.params.name),
  );

  app.get(
    '/v1/sessions/:name/failback-preflight',
    {
      schema: {
        params: SessionParamsSchema,
        querystring: z.object({ verifyCodes: booleanText, fullCompare: booleanText }),
        response: { 200: FailbackPreflightSchema },
      },
    },
    async (request) =>
      runtime().service.preflight(request.params.name, {
        verifyCodes: request.query.verifyCodes ?? true,
        fullCompare: request.query.fullCompare ?? false,
      }),
  );
}
