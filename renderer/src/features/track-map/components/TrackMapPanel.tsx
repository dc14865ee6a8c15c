import { Badge, Button, Card, Group, Loader, Stack, Text, Title } from '@mantine/core';
import type { VolumeInfo } from '@tandem/contract';
import { useQueryClient } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { formatSize } from '../../../lib/format.ts';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { volumeKeys } from '../../volumes/api/volume-keys.ts';
import { trackMapKeys } from '../api/track-map-keys.ts';
import { bucketsFor, expandRuns, fullView, panView, zoomView, type TrackMapView } from '../hooks/track-map-model.ts';
import { useTrackMap } from '../hooks/use-track-map.ts';
import { TrackHoverDetail } from './TrackHoverDetail.tsx';
import { TrackMapCanvas } from './TrackMapCanvas.tsx';
import { TrackMapLegend } from './TrackMapLegend.tsx';
import { TrackMapZoomButtons } from './TrackMapZoomButtons.tsx';

/** Cells drawn at most: the agent is asked for this many region summaries, whatever the volume's size. */
const maxCells = 8192;

/** The snapshot track map of one volume, with its lineage, zoom and pan. */
export function TrackMapPanel({ siteId, volume }: { siteId: string; volume: VolumeInfo }) {
  return <TrackMapPanelFor key={`${siteId}/${volume.name}`} siteId={siteId} volume={volume} />;
}

function TrackMapPanelFor({ siteId, volume }: { siteId: string; volume: VolumeInfo }) {
  const [view, setView] = useState<TrackMapView>(() => fullView(volume.trackCount));
  const [hovered, setHovered] = useState<number | null>(null);
  const buckets = bucketsFor(view, maxCells);
  const map = useTrackMap(siteId, volume.name, view, buckets);
  const queryClient = useQueryClient();
  const expanded = useMemo(() => (map.data ? expandRuns(map.data) : null), [map.data]);
  const totals = useMemo(() => {
    if (!expanded) return null;
    let allocated = 0;
    let shared = 0;
    for (let bucket = 0; bucket < expanded.tracks.length; bucket++) {
      allocated += expanded.allocated[bucket];
      shared += expanded.shared[bucket];
    }
    return { allocated, shared, exclusive: allocated - shared };
  }, [expanded]);

  const trackOf = (bucket: number | null) => (bucket === null || !expanded ? null : expanded.start + bucket * expanded.bucketTracks);
  const zoom = (factor: number, bucket: number | null) => {
    const anchor = trackOf(bucket) ?? view.start + view.count / 2;
    setView(zoomView(view, factor, anchor, volume.trackCount));
  };
  const pan = (bucketsMoved: number) => setView(panView(view, bucketsMoved * (expanded?.bucketTracks ?? 1), volume.trackCount));
  const lastTrack = view.start + view.count - 1;

  return (
    <Card withBorder padding="md" data-testid="track-map">
      <Stack gap="sm">
        <Group justify="space-between">
          <Group gap="xs">
            <Title order={3}>Track map of {volume.name}</Title>
            {volume.kind === 'snapshot' && (
              <Badge color="grape" variant="light" data-testid="lineage">
                snapshot of {volume.source ?? 'a deleted volume'}
              </Badge>
            )}
            {map.isFetching && <Loader size="xs" aria-label="loading" />}
          </Group>
          <TrackMapZoomButtons onZoom={(factor) => zoom(factor, null)} onWhole={() => setView(fullView(volume.trackCount))}>
            <Button size="xs" variant="default" onClick={() => {
                void queryClient.invalidateQueries({ queryKey: trackMapKeys.volume(siteId, volume.name) });
                void queryClient.invalidateQueries({ queryKey: volumeKeys.site(siteId) });
              }}>
              Refresh
            </Button>
          </TrackMapZoomButtons>
        </Group>
        <Text size="sm" c="dimmed">
          {formatSize(volume.sizeBytes)} in {volume.trackCount.toLocaleString()} tracks of {formatSize(volume.trackSize)}
          {volume.snapshots.length > 0 && ` · snapshots: ${volume.snapshots.join(', ')}`}
        </Text>
        <Text size="sm" data-testid="track-map-view">
          Tracks {view.start.toLocaleString()}–{lastTrack.toLocaleString()}
          {expanded && expanded.bucketTracks > 1 && ` · ${expanded.bucketTracks.toLocaleString()} tracks per cell`}
        </Text>
        {map.error && <ProblemAlert error={map.error} title="The track map could not be loaded" />}
        {expanded && <TrackMapCanvas map={expanded} onHover={setHovered} onZoom={zoom} onPan={pan} />}
        {totals && (
          <Text
            size="sm"
            data-testid="track-map-totals"
            data-allocated={totals.allocated}
            data-shared={totals.shared}
            data-exclusive={totals.exclusive}
          >
            In view: {totals.allocated.toLocaleString()} allocated tracks — {totals.exclusive.toLocaleString()} exclusive, {totals.shared.toLocaleString()} shared
          </Text>
        )}
        <TrackHoverDetail siteId={siteId} volume={volume.name} map={expanded} bucket={hovered} />
        <TrackMapLegend />
      </Stack>
    </Card>
  );
}
