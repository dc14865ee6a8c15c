import { ActionIcon, Button, Group, Tooltip } from '@mantine/core';
import type { ReactNode } from 'react';

/** Zoom in, zoom out and back to the whole volume, for any track map; `children` adds further buttons after them. */
export function TrackMapZoomButtons({ onZoom, onWhole, children }: { onZoom: (factor: number) => void; onWhole: () => void; children?: ReactNode }) {
  return (
    <Group gap={4}>
      <Tooltip label="Zoom in (+)">
        <ActionIcon variant="default" aria-label="Zoom in" onClick={() => onZoom(0.5)}>
          +
        </ActionIcon>
      </Tooltip>
      <Tooltip label="Zoom out (-)">
        <ActionIcon variant="default" aria-label="Zoom out" onClick={() => onZoom(2)}>
          −
        </ActionIcon>
      </Tooltip>
      <Button size="xs" variant="default" onClick={onWhole}>
        Whole volume
      </Button>
      {children}
    </Group>
  );
}
