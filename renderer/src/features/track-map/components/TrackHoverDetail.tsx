import { Text } from '@mantine/core';
import { cellState, type ExpandedMap } from '../hooks/track-map-model.ts';
import { useTrackDetail } from '../hooks/use-track-map.ts';

/** What is under the pointer: a region summary, or for a single track its extent and who shares it. */
export function TrackHoverDetail({ siteId, volume, map, bucket }: { siteId: string; volume: string; map: ExpandedMap | null; bucket: number | null }) {
  const single = map && bucket !== null && map.bucketTracks === 1 ? map.start + bucket : null;
  const detail = useTrackDetail(siteId, volume, single);
  if (!map || bucket === null) {
    return (
      <Text size="xs" c="dimmed" data-testid="track-hover">
        Point at the map for details; wheel or + / − to zoom, drag or arrow keys to move.
      </Text>
    );
  }
  const first = map.start + bucket * map.bucketTracks;
  const tracks = map.tracks[bucket];
  const allocated = map.allocated[bucket];
  const shared = map.shared[bucket];
  if (tracks === 1) {
    const info = detail.data;
    return (
      <Text size="xs" data-testid="track-hover">
        Track {first.toLocaleString()}: {cellState(1, allocated, shared)}
        {info && info.extent !== null && ` · extent ${info.extent} · ${info.references} reference${info.references === 1 ? '' : 's'}`}
        {info && info.sharedWith.length > 0 && ` · shared with ${info.sharedWith.join(', ')}`}
      </Text>
    );
  }
  return (
    <Text size="xs" data-testid="track-hover">
      Tracks {first.toLocaleString()}–{(first + tracks - 1).toLocaleString()}: {allocated.toLocaleString()} of {tracks.toLocaleString()} allocated (
      {(allocated - shared).toLocaleString()} exclusive, {shared.toLocaleString()} shared)
    </Text>
  );
}
