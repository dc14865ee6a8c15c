import {
  ImageAccessInfoSchema,
  JournalPointListSchema,
  JournalPointSchema,
  JournalViewSchema,
  type BookmarkRequest,
  type ImageAccessInfo,
  type ImageAccessRequest,
  type JournalPoint,
  type JournalPointList,
  type JournalView,
  type SetJournalRequest,
} from '@tandem/contract';
import type { ApiClient } from '../../../lib/api-client.ts';

const session = (siteId: string, name: string) => `/api/sites/${encodeURIComponent(siteId)}/sessions/${encodeURIComponent(name)}`;

/** A session's CDP journal at its secondary site (contract/PROTOCOL.md, "Continuous data protection"), through the backend. */
export const journalApi = {
  view: (api: ApiClient, siteId: string, name: string): Promise<JournalView> => api.get(`${session(siteId, name)}/journal`, JournalViewSchema),
  set: (api: ApiClient, siteId: string, name: string, policy: SetJournalRequest): Promise<JournalView> =>
    api.send('PUT', `${session(siteId, name)}/journal`, policy, JournalViewSchema),
  disable: (api: ApiClient, siteId: string, name: string): Promise<void> => api.perform('DELETE', `${session(siteId, name)}/journal`),
  points: (api: ApiClient, siteId: string, name: string, everySeconds = 60): Promise<JournalPointList> =>
    api.get(`${session(siteId, name)}/journal/points?every=${everySeconds}`, JournalPointListSchema),
  bookmark: (api: ApiClient, siteId: string, name: string, request: BookmarkRequest): Promise<JournalPoint> =>
    api.send('POST', `${session(siteId, name)}/journal/bookmarks`, request, JournalPointSchema),
  openImage: (api: ApiClient, siteId: string, name: string, request: ImageAccessRequest): Promise<ImageAccessInfo> =>
    api.send('POST', `${session(siteId, name)}/images`, request, ImageAccessInfoSchema),
  endImage: (api: ApiClient, siteId: string, name: string, id: number): Promise<void> => api.perform('DELETE', `${session(siteId, name)}/images/${id}`),
};
