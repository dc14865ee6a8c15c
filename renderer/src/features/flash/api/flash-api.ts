import {
  FlashSessionInfoSchema,
  FlashSessionListSchema,
  FlashTrackMapSchema,
  type EstablishFlashRequest,
  type FlashSessionInfo,
  type FlashTrackMap,
  type FlashUpdateRequest,
  type FlashWithdrawRequest,
} from '@tandem/contract';
import { SessionEventsSchema, type SessionEvents } from '../../../../../main/src/shared/sessions-api.ts';
import type { ApiClient } from '../../../lib/api-client.ts';

const base = (siteId: string) => `/api/sites/${encodeURIComponent(siteId)}/flash-sessions`;
const session = (siteId: string, name: string) => `${base(siteId)}/${encodeURIComponent(name)}`;

export const flashApi = {
  list: (api: ApiClient, siteId: string): Promise<FlashSessionInfo[]> => api.get(base(siteId), FlashSessionListSchema).then((list) => list.sessions),
  establish: (api: ApiClient, siteId: string, request: EstablishFlashRequest): Promise<FlashSessionInfo> => api.send('POST', base(siteId), request, FlashSessionInfoSchema),
  refresh: (api: ApiClient, siteId: string, name: string): Promise<FlashSessionInfo> => api.send('POST', `${session(siteId, name)}/refresh`, {}, FlashSessionInfoSchema),
  reverse: (api: ApiClient, siteId: string, name: string): Promise<FlashSessionInfo> => api.send('POST', `${session(siteId, name)}/reverse`, {}, FlashSessionInfoSchema),
  withdraw: (api: ApiClient, siteId: string, name: string, request: FlashWithdrawRequest): Promise<FlashSessionInfo> =>
    api.send('POST', `${session(siteId, name)}/withdraw`, request, FlashSessionInfoSchema),
  /** Forgets a withdrawn session. */
  remove: (api: ApiClient, siteId: string, name: string): Promise<void> => api.perform('DELETE', session(siteId, name)),
  update: (api: ApiClient, siteId: string, name: string, request: FlashUpdateRequest): Promise<FlashSessionInfo> =>
    api.send('PATCH', session(siteId, name), request, FlashSessionInfoSchema),
  /** The session's recent flash events (without the copy progress ticks). */
  events: (api: ApiClient, siteId: string, name: string): Promise<SessionEvents> => api.get(`${session(siteId, name)}/events?limit=100`, SessionEventsSchema),
  /** Copied / not-yet-copied tracks of a pair's target, [start, start+count) in at most `buckets` buckets. */
  trackMap: (api: ApiClient, siteId: string, name: string, pair: string, start: number, count: number, buckets: number): Promise<FlashTrackMap> =>
    api.get(`${session(siteId, name)}/pairs/${encodeURIComponent(pair)}/track-map?start=${start}&count=${count}&buckets=${buckets}`, FlashTrackMapSchema),
};
