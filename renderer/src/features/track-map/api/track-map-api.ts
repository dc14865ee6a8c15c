import { TrackDetailSchema, TrackMapSchema, type TrackDetail, type TrackMap } from '@tandem/contract';
import type { ApiClient } from '../../../lib/api-client.ts';

const base = (siteId: string, volume: string) => `/api/sites/${encodeURIComponent(siteId)}/volumes/${encodeURIComponent(volume)}`;

export const trackMapApi = {
  /** Region summaries of tracks [start, start+count) in at most `buckets` buckets: the resolution drawn, never more. */
  map: (api: ApiClient, siteId: string, volume: string, start: number, count: number, buckets: number): Promise<TrackMap> =>
    api.get(`${base(siteId, volume)}/track-map?start=${start}&count=${count}&buckets=${buckets}`, TrackMapSchema),
  track: (api: ApiClient, siteId: string, volume: string, track: number): Promise<TrackDetail> =>
    api.get(`${base(siteId, volume)}/tracks/${track}`, TrackDetailSchema),
};
