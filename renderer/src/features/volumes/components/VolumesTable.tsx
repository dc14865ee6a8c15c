import { ActionIcon, Badge, Box, Group, Menu, Text, UnstyledButton } from '@mantine/core';
import type { VolumeInfo } from '@tandem/contract';
import { useVirtualizer } from '@tanstack/react-virtual';
import { useRef } from 'react';
import { formatSize } from '../../../lib/format.ts';
import { VolumeFlashBadges } from '../../flash/components/VolumeFlashBadges.tsx';
import type { VolumeFlashRole } from '../../flash/hooks/flash-model.ts';
import type { VolumeRow, VolumeSort, VolumeSortKey } from '../hooks/lineage.ts';
import type { VolumeMirrorRole } from '../hooks/volume-dependents.ts';
import { VolumeMirrorBadges } from './VolumeMirrorBadges.tsx';
import classes from './VolumesTable.module.css';

export type VolumeAction = 'resize' | 'delete' | 'snapshot' | 'flash';

const volumeMenu: Array<{ action: VolumeAction; label: string; color?: string }> = [
  { action: 'snapshot', label: 'Take snapshot' },
  { action: 'flash', label: 'Flash copy…' },
  { action: 'resize', label: 'Resize' },
  { action: 'delete', label: 'Delete', color: 'red' },
];

const rowHeight = 44;

/**
 * Volumes and their snapshots, virtualized (only the visible rows are in the
 * DOM, so thousands of volumes scroll smoothly). Snapshots sit under their
 * source. Clicking a row opens its track map; clicking a header sorts by it.
 */
export function VolumesTable(props: {
  rows: VolumeRow[];
  selected: string | null;
  onSelect: (name: string) => void;
  onAction: (action: VolumeAction, volume: VolumeInfo) => void;
  /** Why this console's role may not take an action (shown disabled, with the reason under it); absent or null: allowed. */
  actionReasons?: Partial<Record<VolumeAction, string | null>>;
  /** Flash copy roles per volume name (source / target badges). */
  flashRoles?: Map<string, VolumeFlashRole[]>;
  /** Mirror roles per volume name (H1 / H2 of a session's copy set). */
  mirrorRoles?: Map<string, VolumeMirrorRole[]>;
  /** The order shown in the headers; a click on a sortable header asks for another. */
  sort?: VolumeSort;
  onSort?: (sort: VolumeSort) => void;
}) {
  const header = (label: string, by: VolumeSortKey) => {
    const active = props.sort?.by === by;
    const ariaSort = active ? (props.sort!.descending ? 'descending' : 'ascending') : 'none';
    return (
      <span role="columnheader" aria-sort={ariaSort}>
        <UnstyledButton
          className={classes.sortButton}
          onClick={() => props.onSort?.({ by, descending: active ? !props.sort!.descending : by !== 'name' })}
          aria-label={`Sort by ${label.toLowerCase()}`}
        >
          {label}
          {active ? (props.sort!.descending ? ' ↓' : ' ↑') : ''}
        </UnstyledButton>
      </span>
    );
  };
  const scroller = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: props.rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => rowHeight,
    overscan: 8,
    initialRect: { width: 1000, height: 440 },
  });
  return (
    <Box className={classes.table} role="table" aria-label="Volumes" aria-rowcount={props.rows.length}>
      <div className={classes.header} role="row">
        {header('Name', 'name')}
        {header('Size', 'size')}
        {header('Allocated', 'allocated')}
        {header('Shared', 'shared')}
        {header('Snapshots', 'snapshots')}
        <span role="columnheader" aria-label="Actions" />
      </div>
      <div ref={scroller} className={classes.scroller} style={{ height: Math.min(440, Math.max(rowHeight, props.rows.length * rowHeight)) }}>
        <div style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
          {virtualizer.getVirtualItems().map((item) => {
            const { volume, depth } = props.rows[item.index];
            const selected = props.selected === volume.name;
            return (
              <div
                key={volume.name}
                role="row"
                aria-rowindex={item.index + 1}
                aria-selected={selected}
                data-testid={`volume-row-${volume.name}`}
                className={classes.row}
                data-selected={selected || undefined}
                style={{ transform: `translateY(${item.start}px)`, height: rowHeight }}
              >
                <div role="cell" className={classes.name} style={{ paddingLeft: depth * 20 }}>
                <UnstyledButton className={classes.nameButton} onClick={() => props.onSelect(volume.name)} aria-label={`Show track map of ${volume.name}`}>
                  <Group gap={6} wrap="nowrap">
                    {depth > 0 && <Text c="dimmed">↳</Text>}
                    <Text fw={500} truncate>
                      {volume.name}
                    </Text>
                    {volume.kind === 'snapshot' && (
                      <Badge size="xs" variant="light" color="grape">
                        snapshot{volume.source ? ` of ${volume.source}` : ''}
                      </Badge>
                    )}
                    {volume.readOnly && (
                      <Badge size="xs" variant="outline">
                        read-only
                      </Badge>
                    )}
                    <VolumeMirrorBadges roles={props.mirrorRoles?.get(volume.name)} />
                    <VolumeFlashBadges roles={props.flashRoles?.get(volume.name)} />
                  </Group>
                </UnstyledButton>
                </div>
                <span role="cell">{formatSize(volume.sizeBytes)}</span>
                <span role="cell">{formatSize(volume.allocatedBytes)}</span>
                <span role="cell">{formatSize(volume.sharedBytes)}</span>
                <span role="cell">{volume.snapshots.length}</span>
                <span role="cell">
                  <Menu position="bottom-end" withinPortal>
                    <Menu.Target>
                      <ActionIcon variant="subtle" aria-label={`Actions for ${volume.name}`}>
                        ⋯
                      </ActionIcon>
                    </Menu.Target>
                    <Menu.Dropdown>
                      {volumeMenu.map(({ action, label, color }) => {
                        const reason = props.actionReasons?.[action] ?? null;
                        return (
                          <Menu.Item key={action} color={color} disabled={reason !== null} title={reason ?? undefined} onClick={() => props.onAction(action, volume)}>
                            {label}
                            {reason && (
                              <Text size="xs" c="dimmed" data-testid="role-reason">
                                {reason}
                              </Text>
                            )}
                          </Menu.Item>
                        );
                      })}
                    </Menu.Dropdown>
                  </Menu>
                </span>
              </div>
            );
          })}
        </div>
      </div>
    </Box>
  );
}
