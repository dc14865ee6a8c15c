import {
  ClusterHistorySchema,
  ClusterInfoSchema,
  ClusterListSchema,
  FailbackPreflightSchema,
  PeerInfoSchema,
  PeerListSchema,
  SessionHistorySchema,
  SessionInfoSchema,
  SessionListSchema,
  ShipCycleReportSchema,
  VerifyReportSchema,
  type AddClusterMemberRequest,
  type AddPairRequest,
  type ClusterHistory,
  type ClusterInfo,
  type CreateClusterRequest,
  type CreateSessionRequest,
  type FailbackOptions,
  type SessionActionOptions,
  type FailbackPreflight,
  type PeerInfo,
  type SessionAction,
  type SessionHistory,
  type SessionInfo,
  type ShipCycleReport,
  type UpdateSessionRequest,
  type VerifyReport,
} from '@tandem/contract';
import { ReportFileSchema, SessionEventsSchema, type ReportFile, type ReportFormat, type SessionEvents } from '../../../../../main/src/shared/sessions-api.ts';
import type { ApiClient } from '../../../lib/api-client.ts';

const site = (siteId: string) => `/api/sites/${encodeURIComponent(siteId)}`;
const session = (siteId: string, name: string) => `${site(siteId)}/sessions/${encodeURIComponent(name)}`;
const cluster = (siteId: string, name: string) => `${site(siteId)}/clusters/${encodeURIComponent(name)}`;

export const sessionsApi = {
  peers: (api: ApiClient, siteId: string): Promise<PeerInfo[]> => api.get(`${site(siteId)}/peers`, PeerListSchema).then((list) => list.peers),
  pairSites: (api: ApiClient, siteId: string, otherSiteId: string): Promise<PeerInfo> => api.send('POST', `${site(siteId)}/peers`, { otherSiteId }, PeerInfoSchema),
  list: (api: ApiClient, siteId: string): Promise<SessionInfo[]> => api.get(`${site(siteId)}/sessions`, SessionListSchema).then((list) => list.sessions),
  session: (api: ApiClient, siteId: string, name: string): Promise<SessionInfo> => api.get(session(siteId, name), SessionInfoSchema),
  create: (api: ApiClient, siteId: string, request: CreateSessionRequest): Promise<SessionInfo> =>
    api.send('POST', `${site(siteId)}/sessions`, request, SessionInfoSchema),
  addPair: (api: ApiClient, siteId: string, name: string, request: AddPairRequest): Promise<SessionInfo> =>
    api.send('POST', `${session(siteId, name)}/pairs`, request, SessionInfoSchema),
  removePair: (api: ApiClient, siteId: string, name: string, h1Volume: string): Promise<void> =>
    api.perform('DELETE', `${session(siteId, name)}/pairs/${encodeURIComponent(h1Volume)}`),
  update: (api: ApiClient, siteId: string, name: string, request: UpdateSessionRequest): Promise<SessionInfo> =>
    api.send('PATCH', session(siteId, name), request, SessionInfoSchema),
  shipNow: (api: ApiClient, siteId: string, name: string): Promise<ShipCycleReport> =>
    api.send('POST', `${session(siteId, name)}/ship-now`, undefined, ShipCycleReportSchema),
  act: (api: ApiClient, siteId: string, name: string, action: SessionAction, options?: SessionActionOptions): Promise<SessionInfo> =>
    api.send('POST', `${session(siteId, name)}/actions/${action}`, options ?? {}, SessionInfoSchema),
  preflight: (api: ApiClient, siteId: string, name: string, options: FailbackOptions): Promise<FailbackPreflight> =>
    api.get(`${session(siteId, name)}/failback-preflight?verifyCodes=${options.verifyCodes}&fullCompare=${options.fullCompare}`, FailbackPreflightSchema),
  verify: (api: ApiClient, siteId: string, name: string): Promise<VerifyReport> => api.send('POST', `${session(siteId, name)}/verify`, undefined, VerifyReportSchema),
  history: (api: ApiClient, siteId: string, name: string, query: { from: string; to: string; maxPoints: number }): Promise<SessionHistory> =>
    api.get(`${session(siteId, name)}/history?${new URLSearchParams({ from: query.from, to: query.to, maxPoints: String(query.maxPoints) })}`, SessionHistorySchema),
  events: (api: ApiClient, siteId: string, name: string): Promise<SessionEvents> => api.get(`${session(siteId, name)}/events?limit=100`, SessionEventsSchema),
  clusters: (api: ApiClient, siteId: string): Promise<ClusterInfo[]> => api.get(`${site(siteId)}/clusters`, ClusterListSchema).then((list) => list.clusters),
  createCluster: (api: ApiClient, siteId: string, request: CreateClusterRequest): Promise<ClusterInfo> =>
    api.send('POST', `${site(siteId)}/clusters`, request, ClusterInfoSchema),
  deleteCluster: (api: ApiClient, siteId: string, name: string): Promise<void> => api.perform('DELETE', cluster(siteId, name)),
  addClusterMember: (api: ApiClient, siteId: string, name: string, request: AddClusterMemberRequest): Promise<ClusterInfo> =>
    api.send('POST', `${cluster(siteId, name)}/members`, request, ClusterInfoSchema),
  removeClusterMember: (api: ApiClient, siteId: string, name: string, session: string, memberSite?: string): Promise<ClusterInfo> =>
    api.send('DELETE', `${cluster(siteId, name)}/members/${encodeURIComponent(session)}${memberSite ? `?site=${encodeURIComponent(memberSite)}` : ''}`, undefined, ClusterInfoSchema),
  clusterHistory: (api: ApiClient, siteId: string, name: string): Promise<ClusterHistory> => api.get(`${cluster(siteId, name)}/history?limit=100`, ClusterHistorySchema),
  sessionReport: (api: ApiClient, siteId: string, name: string, format: ReportFormat): Promise<ReportFile> =>
    api.get(`${session(siteId, name)}/report?format=${format}`, ReportFileSchema),
  clusterReport: (api: ApiClient, siteId: string, name: string, format: ReportFormat): Promise<ReportFile> =>
    api.get(`${cluster(siteId, name)}/report?format=${format}`, ReportFileSchema),
};
