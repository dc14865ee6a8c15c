import { Button, Group, Loader, Stack, Text, Title } from '@mantine/core';
import { RoleGated } from '../../../components/RoleGated.tsx';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { everySiteReason } from '../../sites/hooks/site-access.ts';
import { useSites } from '../../sites/hooks/use-sites.ts';
import { SiteGapNotice } from '../../sites/components/SiteGapNotice.tsx';
import { useFlashUi } from '../hooks/flash-ui-store.ts';
import { useAllFlashSessions } from '../hooks/use-flash.ts';
import { FlashSessionCard } from './FlashSessionCard.tsx';

/** Flash copy sessions of every site, beside the mirror sessions; an unreachable site's are kept as last known, and the section says so. */
export function FlashSessionsSection() {
  const { sessions, sites, isLoading, error } = useAllFlashSessions({ live: true });
  const openWizard = useFlashUi((state) => state.openWizard);
  const allSites = useSites().data?.sites ?? [];
  return (
    <Stack gap="sm" data-testid="flash-sessions">
      <Group justify="space-between">
        <Title order={3}>Flash copy</Title>
        <RoleGated reason={everySiteReason(allSites, 'POST /v1/flash-sessions')}>
          <Button variant="light" onClick={() => openWizard()}>
            Flash copy…
          </Button>
        </RoleGated>
      </Group>
      {error && <ProblemAlert error={error} title="Some flash sessions could not be read" />}
      {sites.map(({ site, reach, receivedAt, count }) => (
        <SiteGapNotice key={site.id} site={site} reach={reach} count={count} receivedAt={receivedAt} noun="flash copies" testId={`flash-gap-${site.site}`} brief />
      ))}
      {isLoading && <Loader size="sm" />}
      {!isLoading && sessions.length === 0 && (
        <Text c="dimmed" size="sm" data-testid="flash-empty">
          No flash copies yet. Flash copy… makes a point-in-time copy of volumes onto other volumes of the same site, usable at once.
        </Text>
      )}
      {sessions.map((entry) => (
        <FlashSessionCard key={`${entry.siteId}/${entry.session.name}`} entry={entry} />
      ))}
    </Stack>
  );
}
