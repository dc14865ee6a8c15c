import { Box, Group, Text, Tooltip } from '@mantine/core';
import type { JournalPoint } from '@tandem/contract';

/**
 * The protection window as a strip: the oldest point at the left, now at
 * the right, a tick per point and a marker per bookmark; with `selected`, a
 * marker at the point chosen, and with `onPick`, a click picks the point
 * nearest to where it lands.
 */
export function JournalTimeline({
  oldest,
  points,
  now,
  selected = null,
  onPick,
}: {
  oldest: JournalPoint | null;
  points: JournalPoint[];
  now: number;
  selected?: JournalPoint | null;
  onPick?: (point: JournalPoint) => void;
}) {
  if (!oldest) {
    return (
      <Text size="xs" c="dimmed" data-testid="journal-timeline">
        No point in time yet.
      </Text>
    );
  }
  const span = Math.max(1, now - oldest.timeMs);
  const at = (timeMs: number) => `${Math.min(100, Math.max(0, ((timeMs - oldest.timeMs) / span) * 100))}%`;
  return (
    <Box data-testid="journal-timeline">
      <Box
        pos="relative"
        h={16}
        style={{ background: 'var(--mantine-color-blue-1)', borderRadius: 4, cursor: onPick ? 'pointer' : undefined }}
        onClick={
          onPick &&
          ((event) => {
            const box = event.currentTarget.getBoundingClientRect();
            if (box.width <= 0 || points.length === 0) return;
            const timeMs = oldest.timeMs + ((event.clientX - box.left) / box.width) * span;
            onPick(points.reduce((best, point) => (Math.abs(point.timeMs - timeMs) < Math.abs(best.timeMs - timeMs) ? point : best)));
          })
        }
      >
        {points
          .filter((point) => point.bookmark === null)
          .map((point) => (
            <Box key={`p${point.seq}`} pos="absolute" top={4} h={8} w={1} style={{ left: at(point.timeMs), background: 'var(--mantine-color-blue-4)' }} />
          ))}
        {points
          .filter((point) => point.bookmark !== null)
          .map((point) => (
            <Tooltip key={`b${point.seq}-${point.bookmark}`} label={`${point.bookmark} · ${new Date(point.timeMs).toLocaleString()}`}>
              <Box
                pos="absolute"
                top={0}
                h={16}
                w={4}
                data-testid="timeline-bookmark"
                aria-label={`bookmark ${point.bookmark}`}
                style={{ left: at(point.timeMs), background: 'var(--mantine-color-grape-6)', borderRadius: 2, transform: 'translateX(-2px)' }}
              />
            </Tooltip>
          ))}
        {selected && (
          <Box
            pos="absolute"
            top={-3}
            h={22}
            w={3}
            data-testid="timeline-selected"
            aria-label={`chosen point ${selected.seq}`}
            style={{ left: at(selected.timeMs), background: 'var(--mantine-color-red-7)', transform: 'translateX(-1px)' }}
          />
        )}
      </Box>
      <Group justify="space-between">
        <Text size="xs" c="dimmed">
          oldest point {new Date(oldest.timeMs).toLocaleString()}
        </Text>
        <Text size="xs" c="dimmed">
          now
        </Text>
      </Group>
    </Box>
  );
}
