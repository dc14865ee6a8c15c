import {
  AlertListSchema,
  AlertSettingsSchema,
  type AlertSettings,
  type SetAlertSettingsRequest,
  SessionAlertThresholdsViewSchema,
  type AlertList,
  type SessionAlertThresholdsView,
  type SetSessionAlertThresholdsRequest,
} from '@tandem/contract';
import type { ApiClient } from '../../../lib/api-client.ts';

const site = (siteId: string) => `/api/sites/${encodeURIComponent(siteId)}`;

export const alertsApi = {
  /** A site's active alerts and the `recent` cleared last (`GET /v1/alerts` through the backend). */
  list: (api: ApiClient, siteId: string, recent = 50): Promise<AlertList> => api.get(`${site(siteId)}/alerts?recent=${recent}`, AlertListSchema),
  thresholds: (api: ApiClient, siteId: string, session: string): Promise<SessionAlertThresholdsView> =>
    api.get(`${site(siteId)}/sessions/${encodeURIComponent(session)}/alert-thresholds`, SessionAlertThresholdsViewSchema),
  setThresholds: (api: ApiClient, siteId: string, session: string, change: SetSessionAlertThresholdsRequest): Promise<SessionAlertThresholdsView> =>
    api.send('PUT', `${site(siteId)}/sessions/${encodeURIComponent(session)}/alert-thresholds`, change, SessionAlertThresholdsViewSchema),
  settings: (api: ApiClient, siteId: string): Promise<AlertSettings> => api.get(`${site(siteId)}/alerts/settings`, AlertSettingsSchema),
  setSettings: (api: ApiClient, siteId: string, change: SetAlertSettingsRequest): Promise<AlertSettings> =>
    api.send('PUT', `${site(siteId)}/alerts/settings`, change, AlertSettingsSchema),
};
