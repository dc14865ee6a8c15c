import { Group, Text, useComputedColorScheme } from '@mantine/core';
import { trackMapColors } from './track-map-colors.ts';

export function TrackMapLegend() {
  const colors = trackMapColors(useComputedColorScheme('light'));
  const items = [
    { label: 'unallocated (reads as zeros)', color: colors.unallocated },
    { label: 'exclusive to this volume', color: colors.exclusive },
    { label: 'shared with its source or snapshots', color: colors.shared },
  ];
  return (
    <Group gap="lg" aria-label="Legend">
      {items.map((item) => (
        <Group key={item.label} gap={6}>
          <span aria-hidden style={{ width: 14, height: 14, background: item.color, border: '1px solid var(--mantine-color-default-border)', display: 'inline-block' }} />
          <Text size="xs">{item.label}</Text>
        </Group>
      ))}
    </Group>
  );
}
