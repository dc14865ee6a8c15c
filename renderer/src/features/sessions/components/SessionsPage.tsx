import { Alert, Button, Divider, Group, Loader, Stack, Text, Title } from '@mantine/core';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { FlashSessionsSection } from '../../flash/components/FlashSessionsSection.tsx';
import { FlashWizardHost } from '../../flash/components/FlashWizardHost.tsx';
import { groupByCluster } from '../hooks/session-model.ts';
import { useSessionsUi } from '../hooks/sessions-ui-store.ts';
import { useAllSessions, useConnectedSites } from '../hooks/use-sessions.ts';
import { ClusterHeader } from './ClusterHeader.tsx';
import { CreateSessionWizard } from './CreateSessionWizard.tsx';
import { FailbackWizard } from './FailbackWizard.tsx';
import { SessionCard } from './SessionCard.tsx';

/** Every mirroring session the console can reach, grouped by cluster (master data set), then those in no cluster. */
export function SessionsPage() {
  const sites = useConnectedSites();
  const { sessions, clusters, isLoading, error } = useAllSessions({ live: true });
  const { createWizardOpen, setCreateWizardOpen, failbackOpen, openFailback } = useSessionsUi();
  const groups = groupByCluster(sessions, clusters);
  const siteIdByName = new Map(sites.map((site) => [site.site, site.id]));
  const anyFailback = sessions.some((entry) => entry.session.state === 'target-available');

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Sessions</Title>
        <Group gap="xs">
          <Button variant="default" disabled={!anyFailback} onClick={() => openFailback(null)}>
            Failback…
          </Button>
          <Button onClick={() => setCreateWizardOpen(true)} disabled={sites.length < 2}>
            Create session…
          </Button>
        </Group>
      </Group>
      {sites.length < 2 && (
        <Alert color="blue" title="Two sites are needed">
          <Text size="sm">Mirroring runs between two connected sites. Connect another site to create a session.</Text>
        </Alert>
      )}
      {error && <ProblemAlert error={error} title="Some sessions could not be read" />}
      {isLoading && <Loader />}
      {!isLoading && sessions.length === 0 && (
        <Text c="dimmed" data-testid="sessions-empty">
          No sessions yet. Create session… mirrors volumes of one site to another.
        </Text>
      )}
      {groups.map((group) => (
        <Stack key={group.key} gap="sm">
          {group.cluster ? (
            <ClusterHeader cluster={group.cluster} siteId={siteIdByName.get(group.cluster.processorSite) ?? null} />
          ) : (
            groups.length > 1 && <Title order={3}>No cluster</Title>
          )}
          {group.sessions.map((entry) => (
            <SessionCard key={entry.id} entry={entry} />
          ))}
          {group.cluster && group.sessions.length === 0 && (
            <Text size="sm" c="dimmed">
              None of this cluster's members is at a site this console is connected to.
            </Text>
          )}
          <Divider />
        </Stack>
      ))}
      <FlashSessionsSection />
      {createWizardOpen && <CreateSessionWizard onClose={() => setCreateWizardOpen(false)} />}
      <FlashWizardHost />
      {failbackOpen && <FailbackWizard sessions={sessions} />}
    </Stack>
  );
}
