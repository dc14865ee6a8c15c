import type { TrackMapView } from '../hooks/track-map-model.ts';

/** Query keys for track maps; `site(siteId)` covers every map and track detail of a site. */
export const trackMapKeys = {
  all: ['track-map'] as const,
  site: (siteId: string) => [...trackMapKeys.all, siteId] as const,
  volume: (siteId: string, volume: string) => [...trackMapKeys.site(siteId), volume] as const,
  map: (siteId: string, volume: string, view: TrackMapView, buckets: number) =>
    [...trackMapKeys.volume(siteId, volume), 'map', view.start, view.count, buckets] as const,
  track: (siteId: string, volume: string, track: number) => [...trackMapKeys.volume(siteId, volume), 'track', track] as const,
};
