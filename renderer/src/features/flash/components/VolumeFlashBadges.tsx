import { Badge, Group, Tooltip } from '@mantine/core';
import { flashStateLook, type VolumeFlashRole } from '../hooks/flash-model.ts';

/** On a volume row: it is a flash source (→ its targets) or a flash target (← its source), with the mapping state. */
export function VolumeFlashBadges({ roles }: { roles: VolumeFlashRole[] | undefined }) {
  if (!roles || roles.length === 0) return null;
  return (
    <Group gap={4} wrap="nowrap">
      {roles.map((role) => (
        <Tooltip key={`${role.session}/${role.pair.id}/${role.role}`} label={`flash session ${role.session}: ${flashStateLook[role.pair.state].label}, ${Math.floor(role.pair.percent)} % copied`}>
          <Badge size="xs" variant="light" tt="none" color={role.role === 'source' ? 'teal' : 'orange'} data-testid={`flash-role-${role.role}`}>
            {role.role === 'source' ? `flash source → ${role.other}` : `flash target ← ${role.other}`}
          </Badge>
        </Tooltip>
      ))}
    </Group>
  );
}
