import { z } from 'zod';
import {
  AlertListQuerySchema,
  AlertListSchema,
  AlertSettingsSchema,
  SessionAlertThresholdsViewSchema,
  SessionNameSchema,
  SetAlertSettingsRequestSchema,
  SetSessionAlertThresholdsRequestSchema,
} from '@tandem/contract';
import { parseInput, type Router } from '../router.ts';
import type { SiteManager } from '../site-manager.ts';

const SiteParams = z.object({ siteId: z.string().min(1) });
const SessionParams = SiteParams.extend({ name: SessionNameSchema });

/** Agent paths of alerts (contract/PROTOCOL.md, "Alerts"). */
export const alertPaths = {
  alerts: '/v1/alerts',
  settings: '/v1/alerts/settings',
  thresholds: (session: string) => `/v1/sessions/${encodeURIComponent(session)}/alert-thresholds`,
} as const;

/**
 * Alert routes for the renderer: a site's alerts, its alert settings and a
 * session's thresholds. Thin proxies to the site's agent; bodies validated
 * here with the contract's schemas, answers by the agent client.
 */
export function alertRoutes(sites: SiteManager, router: Router): Router {
  const agent = (params: Record<string, string>) => sites.client(parseInput(SiteParams, params).siteId);
  return router
    .add('GET', '/api/sites/:siteId/alerts', async ({ params, query }) => {
      const { recent, session } = parseInput(AlertListQuerySchema, Object.fromEntries(query));
      const search = new URLSearchParams({ recent: String(recent) });
      if (session) search.set('session', session);
      return { body: await agent(params).request('GET', `${alertPaths.alerts}?${search}`, AlertListSchema) };
    })
    .add('GET', '/api/sites/:siteId/alerts/settings', async ({ params }) => ({
      body: await agent(params).request('GET', alertPaths.settings, AlertSettingsSchema),
    }))
    .add('PUT', '/api/sites/:siteId/alerts/settings', async ({ params, body }) => ({
      body: await agent(params).request('PUT', alertPaths.settings, AlertSettingsSchema, parseInput(SetAlertSettingsRequestSchema, body)),
    }))
    .add('GET', '/api/sites/:siteId/sessions/:name/alert-thresholds', async ({ params }) => {
      const { name } = parseInput(SessionParams, params);
      return { body: await agent(params).request('GET', alertPaths.thresholds(name), SessionAlertThresholdsViewSchema) };
    })
    .add('PUT', '/api/sites/:siteId/sessions/:name/alert-thresholds', async ({ params, body }) => {
      const { name } = parseInput(SessionParams, params);
      const change = parseInput(SetSessionAlertThresholdsRequestSchema, body);
      return { body: await agent(params).request('PUT', alertPaths.thresholds(name), SessionAlertThresholdsViewSchema, change) };
    });
}
