import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  AlertListQuerySchema,
  AlertListSchema,
  AlertSettingsSchema,
  ProblemError,
  SessionAlertThresholdsViewSchema,
  SessionNameSchema,
  SetAlertSettingsRequestSchema,
  SetSessionAlertThresholdsRequestSchema,
  type SessionAlertThresholdsView,
} from '@tandem/contract';
import type { AlertEvaluator } from '../../alerts/evaluator.ts';
import { effectiveThresholds } from '../../alerts/store.ts';
import type { ApiDependencies } from '../app.ts';
import type { ZodTypeProvider } from '../zod-schemas.ts';

const SessionParamsSchema = z.object({ name: SessionNameSchema });

/**
 * `GET /v1/alerts`, `GET|PUT /v1/alerts/settings` (the site's thresholds and
 * webhook) and `GET|PUT /v1/sessions/:name/alert-thresholds`: thin wrappers
 * over the alert evaluator. A change makes the rules run again at once.
 */
export async function alertRoutes(fastify: FastifyInstance, deps: ApiDependencies): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const alerts = (): AlertEvaluator => {
    if (!deps.alerts) throw new ProblemError('not-supported', 'this agent runs without alerts');
    return deps.alerts;
  };
  const sessionId = (name: string): { id: string; name: string } => {
    if (!deps.replication) throw new ProblemError('not-supported', 'this agent runs without replication');
    const record = deps.replication.service.session(name);
    return { id: record.id, name: record.name };
  };
  const thresholdsView = (session: { id: string; name: string }): SessionAlertThresholdsView => {
    const store = alerts().store;
    const own = store.ownThresholds(session.id);
    return { session: session.name, own, effective: effectiveThresholds(own, store.settings().sessionDefaults) };
  };

  app.get('/v1/alerts', { schema: { querystring: AlertListQuerySchema, response: { 200: AlertListSchema } } }, async (request) =>
    alerts().list(request.query),
  );

  app.get('/v1/alerts/settings', { schema: { response: { 200: AlertSettingsSchema } } }, async () => alerts().store.settings());

  app.put('/v1/alerts/settings', { schema: { body: SetAlertSettingsRequestSchema, response: { 200: AlertSettingsSchema } } }, async (request) => {
    const settings = alerts().store.setSettings(request.body);
    alerts().trigger();
    return settings;
  });

  app.get(
    '/v1/sessions/:name/alert-thresholds',
    { schema: { params: SessionParamsSchema, response: { 200: SessionAlertThresholdsViewSchema } } },
    async (request) => thresholdsView(sessionId(request.params.name)),
  );

  app.put(
    '/v1/sessions/:name/alert-thresholds',
    { schema: { params: SessionParamsSchema, body: SetSessionAlertThresholdsRequestSchema, response: { 200: SessionAlertThresholdsViewSchema } } },
    async (request) => {
      const session = sessionId(request.params.name);
      alerts().store.setOwnThresholds(session.id, request.body);
      alerts().trigger();
      return thresholdsView(session);
    },
  );
}
