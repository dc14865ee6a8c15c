import { Button, Group, SimpleGrid, Stack, Text, Title } from '@mantine/core';
import { useUiStore } from '../../../app/ui-store.ts';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { useSites } from '../hooks/use-sites.ts';
import { SiteCard } from './SiteCard.tsx';
import { SiteLinksOverview } from './SiteLinksOverview.tsx';

/** The sites overview: every connected site, the links between them with the sessions on each, or what to do when there is none. */
export function SitesPage() {
  const sites = useSites();
  const openWizard = useUiStore((state) => state.setConnectWizardOpen);
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Sites</Title>
        <Button onClick={() => openWizard(true)}>Connect to a site</Button>
      </Group>
      {sites.error && <ProblemAlert error={sites.error} title="Sites could not be loaded" />}
      {sites.data && sites.data.sites.length === 0 && (
        <Stack align="flex-start" data-testid="sites-empty">
          <Text>No site is connected yet.</Text>
          <Text size="sm" c="dimmed">
            Run <code>tandem-agent token --data DIR</code> on a storage host, then choose “Connect to a site” and enter the agent’s address and the token.
          </Text>
        </Stack>
      )}
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        {sites.data?.sites.map((site) => <SiteCard key={site.id} site={site} />)}
      </SimpleGrid>
      {sites.data && sites.data.sites.length > 0 && <SiteLinksOverview />}
    </Stack>
  );
}
