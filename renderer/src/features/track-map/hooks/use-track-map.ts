import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useApi } from '../../../app/api-context.tsx';
import { trackMapApi } from '../api/track-map-api.ts';
import { trackMapKeys } from '../api/track-map-keys.ts';
import type { TrackMapView } from './track-map-model.ts';

/** The region summaries for the view on screen; the previous picture stays while the next zoom level loads. */
export function useTrackMap(siteId: string, volume: string, view: TrackMapView, buckets: number) {
  const api = useApi();
  return useQuery({
    queryKey: trackMapKeys.map(siteId, volume, view, buckets),
    queryFn: () => trackMapApi.map(api, siteId, volume, view.start, view.count, buckets),
    placeholderData: keepPreviousData,
  });
}

/** One track in detail (extent, who shares it), fetched only when a single track is hovered. */
export function useTrackDetail(siteId: string, volume: string, track: number | null) {
  const api = useApi();
  return useQuery({
    queryKey: trackMapKeys.track(siteId, volume, track ?? -1),
    queryFn: () => trackMapApi.track(api, siteId, volume, track ?? 0),
    enabled: track !== null,
  });
}
