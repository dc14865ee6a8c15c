import { Badge, Group, Tooltip } from '@mantine/core';
import type { VolumeMirrorRole } from '../hooks/volume-dependents.ts';

/** On a volume row: the copy sets it is in, as H1 (primary, mirrored to the other site) or H2 (the copy), and the session. */
export function VolumeMirrorBadges({ roles }: { roles: VolumeMirrorRole[] | undefined }) {
  if (!roles || roles.length === 0) return null;
  return (
    <Group gap={4} wrap="nowrap">
      {roles.map((role) => (
        <Tooltip
          key={`${role.session}/${role.role}`}
          label={`session ${role.session} (${role.sessionState}): copy set ${role.h1Volume} → ${role.h2Volume}; ${role.role === 'h1' ? `mirrored to ${role.otherSite}:${role.otherVolume}` : `the copy of ${role.otherSite}:${role.otherVolume}`}`}
        >
          <Badge size="xs" variant="light" tt="none" color={role.role === 'h1' ? 'indigo' : 'cyan'} data-testid={`mirror-role-${role.role}`}>
            {role.role === 'h1' ? `H1 of ${role.session} → ${role.otherSite}` : `H2 of ${role.session} ← ${role.otherSite}`}
          </Badge>
        </Tooltip>
      ))}
    </Group>
  );
}
