import { ClientInfoSchema, ClientListSchema, PoolStatsSchema, type ClientInfo, type ClientList, type PoolStats, type Role } from '@tandem/contract';
import {
  ProbeSiteResponseSchema,
  SiteListSchema,
  SiteSummarySchema,
  type ConnectSiteRequest,
  type ProbeSiteResponse,
  type SiteList,
  type SiteSummary,
} from '../../../../../main/src/shared/console-api.ts';
import type { ApiClient } from '../../../lib/api-client.ts';

export const sitesApi = {
  list: (api: ApiClient): Promise<SiteList> => api.get('/api/sites', SiteListSchema),
  pool: (api: ApiClient, siteId: string): Promise<PoolStats> => api.get(`/api/sites/${encodeURIComponent(siteId)}/pool`, PoolStatsSchema),
  probe: (api: ApiClient, address: string): Promise<ProbeSiteResponse> => api.send('POST', '/api/sites/probe', { address }, ProbeSiteResponseSchema),
  connect: (api: ApiClient, request: ConnectSiteRequest): Promise<SiteSummary> => api.send('POST', '/api/sites', request, SiteSummarySchema),
  clients: (api: ApiClient, siteId: string): Promise<ClientList> => api.get(`/api/sites/${encodeURIComponent(siteId)}/clients`, ClientListSchema),
  setClientRole: (api: ApiClient, siteId: string, serial: string, role: Role): Promise<ClientInfo> =>
    api.send('PATCH', `/api/sites/${encodeURIComponent(siteId)}/clients/${encodeURIComponent(serial)}`, { role }, ClientInfoSchema),
  revokeClient: (api: ApiClient, siteId: string, serial: string): Promise<ClientInfo> =>
    api.send('DELETE', `/api/sites/${encodeURIComponent(siteId)}/clients/${encodeURIComponent(serial)}`, undefined, ClientInfoSchema),
  remove: (api: ApiClient, siteId: string): Promise<void> => api.perform('DELETE', `/api/sites/${encodeURIComponent(siteId)}`),
};
