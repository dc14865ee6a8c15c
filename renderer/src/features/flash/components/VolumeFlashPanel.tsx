import { Button, Card, Group, Stack, Text, Title } from '@mantine/core';
import type { VolumeInfo } from '@tandem/contract';
import { RoleGated } from '../../../components/RoleGated.tsx';
import { useSiteAccess } from '../../sites/hooks/site-access.ts';
import { useFlashUi } from '../hooks/flash-ui-store.ts';
import { useFlashSessions, useVolumeFlashRoles } from '../hooks/use-flash.ts';
import { FlashSessionView } from './FlashSessionView.tsx';
import { FlashTrackMapPanel } from './FlashTrackMapPanel.tsx';

/** The selected volume's flash copy relationships: each session live, and as a target its copied tracks. */
export function VolumeFlashPanel({ siteId, volume }: { siteId: string; volume: VolumeInfo }) {
  const sessions = useFlashSessions(siteId);
  const roles = useVolumeFlashRoles(siteId).get(volume.name) ?? [];
  const openWizard = useFlashUi((state) => state.openWizard);
  const names = [...new Set(roles.map((role) => role.session))];
  const access = useSiteAccess(siteId);
  return (
    <Card withBorder padding="md" data-testid="volume-flash">
      <Stack gap="sm">
        <Group justify="space-between">
          <Title order={3}>Flash copy of {volume.name}</Title>
          {!roles.some((role) => role.role === 'target') && (
            <RoleGated reason={access.reason('POST /v1/flash-sessions')}>
              <Button size="xs" variant="light" onClick={() => openWizard({ siteId, source: volume.name })}>
                Flash copy {volume.name}…
              </Button>
            </RoleGated>
          )}
        </Group>
        {roles.length === 0 && (
          <Text size="sm" c="dimmed">
            {volume.name} is in no flash copy relationship.
          </Text>
        )}
        {names.map((name) => {
          const session = sessions.data?.find((each) => each.name === name);
          if (!session) return null;
          const mine = roles.filter((role) => role.session === name);
          return (
            <Stack key={name} gap="xs">
              <Text size="sm" fw={600}>
                Session {name}: {volume.name} is the {mine.map((role) => (role.role === 'source' ? `source of ${role.other}` : `target of ${role.other}`)).join(' and ')}
              </Text>
              <FlashSessionView siteId={siteId} session={session} />
              {mine
                .filter((role) => role.role === 'target')
                .map((role) => (
                  <FlashTrackMapPanel key={role.pair.id} siteId={siteId} session={name} pair={role.pair} />
                ))}
            </Stack>
          );
        })}
      </Stack>
    </Card>
  );
}
