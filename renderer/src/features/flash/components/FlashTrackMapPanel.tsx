import { Card, Group, Loader, Stack, Text, Title, useComputedColorScheme } from '@mantine/core';
import type { FlashPairInfo } from '@tandem/contract';
import { useMemo, useState } from 'react';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { TrackMapCanvas } from '../../track-map/components/TrackMapCanvas.tsx';
import { TrackMapZoomButtons } from '../../track-map/components/TrackMapZoomButtons.tsx';
import { bucketsFor, fullView, panView, zoomView, type TrackMapView } from '../../track-map/hooks/track-map-model.ts';
import { copiedTotals, expandFlashRuns, flashMapColors } from '../hooks/flash-track-map.ts';
import { useFlashTrackMap } from '../hooks/use-flash.ts';

const maxCells = 4096;

/** Which tracks of a flash target are copied (its own) and which still read the source's point-in-time data. */
export function FlashTrackMapPanel({ siteId, session, pair }: { siteId: string; session: string; pair: FlashPairInfo }) {
  return <FlashTrackMapFor key={`${siteId}/${session}/${pair.id}`} siteId={siteId} session={session} pair={pair} />;
}

function FlashTrackMapFor({ siteId, session, pair }: { siteId: string; session: string; pair: FlashPairInfo }) {
  const [view, setView] = useState<TrackMapView>(() => fullView(pair.totalTracks));
  const [hovered, setHovered] = useState<number | null>(null);
  const buckets = bucketsFor(view, maxCells);
  const map = useFlashTrackMap(siteId, session, pair.id, view, buckets);
  const expanded = useMemo(() => (map.data ? expandFlashRuns(map.data) : null), [map.data]);
  const totals = useMemo(() => (expanded ? copiedTotals(expanded) : null), [expanded]);
  const colors = flashMapColors(useComputedColorScheme('light'));

  const zoom = (factor: number, bucket: number | null) => {
    const anchor = bucket !== null && expanded ? expanded.start + bucket * expanded.bucketTracks : view.start + view.count / 2;
    setView(zoomView(view, factor, anchor, pair.totalTracks));
  };
  const pan = (moved: number) => setView(panView(view, moved * (expanded?.bucketTracks ?? 1), pair.totalTracks));
  const hoverText = () => {
    if (!expanded || hovered === null) return 'Point at the map for details; wheel or + / − to zoom, drag or arrow keys to move.';
    const first = expanded.start + hovered * expanded.bucketTracks;
    const tracks = expanded.tracks[hovered];
    const copied = expanded.allocated[hovered];
    if (tracks === 1) return `Track ${first.toLocaleString()}: ${copied ? 'copied to the target' : 'not yet copied (reads the point-in-time data through the source)'}`;
    return `Tracks ${first.toLocaleString()}–${(first + tracks - 1).toLocaleString()}: ${copied.toLocaleString()} of ${tracks.toLocaleString()} copied`;
  };

  return (
    <Card withBorder padding="sm" data-testid={`flash-track-map-${pair.target}`}>
      <Stack gap="xs">
        <Group justify="space-between">
          <Group gap="xs">
            <Title order={5}>
              Copied tracks of {pair.target} (from {pair.source})
            </Title>
            {map.isFetching && <Loader size="xs" aria-label="loading" />}
          </Group>
          <TrackMapZoomButtons onZoom={(factor) => zoom(factor, null)} onWhole={() => setView(fullView(pair.totalTracks))} />
        </Group>
        <Text size="xs" c="dimmed">
          Tracks {view.start.toLocaleString()}–{(view.start + view.count - 1).toLocaleString()}
          {expanded && expanded.bucketTracks > 1 && ` · ${expanded.bucketTracks.toLocaleString()} tracks per cell`}
        </Text>
        {map.error && <ProblemAlert error={map.error} title="The copied-track map could not be loaded" />}
        {expanded && <TrackMapCanvas map={expanded} onHover={setHovered} onZoom={zoom} onPan={pan} colors={flashMapColors} />}
        {totals && (
          <Text size="sm" data-testid="flash-track-totals" data-copied={totals.copied} data-not-copied={totals.notCopied}>
            In view: {totals.copied.toLocaleString()} tracks copied, {totals.notCopied.toLocaleString()} not yet copied
          </Text>
        )}
        <Text size="xs" c="dimmed" data-testid="flash-track-hover">
          {hoverText()}
        </Text>
        <Group gap="lg" aria-label="Legend">
          {[
            { label: 'copied: the target holds the track itself', color: colors.exclusive },
            { label: 'not yet copied: read from the source’s point in time', color: colors.unallocated },
          ].map((item) => (
            <Group key={item.label} gap={6}>
              <span aria-hidden style={{ width: 14, height: 14, background: item.color, border: '1px solid var(--mantine-color-default-border)', display: 'inline-block' }} />
              <Text size="xs">{item.label}</Text>
            </Group>
          ))}
        </Group>
      </Stack>
    </Card>
  );
}
