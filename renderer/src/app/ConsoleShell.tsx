import { ActionIcon, Alert, AppShell, Group, NavLink, ScrollArea, Text, Title, Tooltip, useMantineColorScheme } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useState, type MouseEvent } from 'react';
import type { BackendEndpoint } from '../../../main/src/shared/console-api.ts';
import { NotificationCentre } from '../features/alerts/components/NotificationCentre.tsx';
import { ConnectionBadge } from '../features/sites/components/ConnectionBadge.tsx';
import { ConnectSiteWizard } from '../features/sites/components/ConnectSiteWizard.tsx';
import { SessionsPage } from '../features/sessions/components/SessionsPage.tsx';
import { SitesPage } from '../features/sites/components/SitesPage.tsx';
import { useSites } from '../features/sites/hooks/use-sites.ts';
import { VolumesPage } from '../features/volumes/components/VolumesPage.tsx';
import { connectConsoleEvents, type BackendLink } from './console-events.ts';
import { overview, routeHash } from './routes.ts';
import { useUiStore } from './ui-store.ts';

/** A navigation link that is a real link (its screen's URL) and navigates in place when clicked. */
function linkTo(hash: string, go: () => void) {
  return {
    component: 'a' as const,
    href: hash,
    onClick: (event: MouseEvent) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
      event.preventDefault();
      go();
    },
  };
}

/** The frame: header, site navigation, the page of the selected site (or the overview). */
export function ConsoleShell({ endpoint }: { endpoint: BackendEndpoint | null }) {
  const queryClient = useQueryClient();
  const [link, setLink] = useState<BackendLink>('connecting');
  const sites = useSites();
  const { selectedSiteId, selectSite, sessionsOpen, showSessions, connectWizardOpen, setConnectWizardOpen } = useUiStore();
  const { colorScheme, toggleColorScheme } = useMantineColorScheme();

  useEffect(() => (endpoint ? connectConsoleEvents(endpoint, queryClient, setLink) : undefined), [endpoint, queryClient]);

  const selected = sites.data?.sites.find((site) => site.id === selectedSiteId) ?? null;

  return (
    <AppShell header={{ height: 56 }} navbar={{ width: 260, breakpoint: 'sm' }} padding="md">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between">
          <Title order={3}>Tandem</Title>
          <Group gap="sm">
            <NotificationCentre />
            <Tooltip label={`Switch to ${colorScheme === 'dark' ? 'light' : 'dark'} theme`}>
              <ActionIcon variant="default" onClick={toggleColorScheme} aria-label="Toggle colour theme">
                {colorScheme === 'dark' ? '☀' : '☾'}
              </ActionIcon>
            </Tooltip>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs">
        <ScrollArea>
          <NavLink label="All sites" active={!selected && !sessionsOpen} {...linkTo(routeHash(overview), () => selectSite(null))} />
          <NavLink label="Sessions" active={sessionsOpen} {...linkTo(routeHash({ ...overview, sessionsOpen: true }), () => showSessions(true))} />
          {sites.data?.sites.map((site) => (
            <NavLink
              key={site.id}
              label={site.site}
              description={site.address}
              active={!sessionsOpen && site.id === selectedSiteId}
              {...linkTo(routeHash({ ...overview, selectedSiteId: site.id }), () => selectSite(site.id))}
              rightSection={<ConnectionBadge connection={site.connection} />}
            />
          ))}
          <NavLink label="Connect to a site…" onClick={() => setConnectWizardOpen(true)} c="indigo" />
        </ScrollArea>
      </AppShell.Navbar>
      <AppShell.Main>
        {link === 'lost' && (
          <Alert color="orange" mb="md" title="Console backend unreachable" data-testid="backend-lost">
            <Text size="sm">The connection to the console backend was lost; reconnecting. Is `npm start` still running?</Text>
          </Alert>
        )}
        {sessionsOpen ? (
          <SessionsPage />
        ) : selected ? (
          <VolumesPage site={selected} />
        ) : selectedSiteId && sites.data ? (
          <Alert color="yellow" title="No such site" data-testid="unknown-site">
            <Text size="sm">This console knows no site with the id {selectedSiteId} (it may have been removed). Choose a site on the left.</Text>
          </Alert>
        ) : (
          <SitesPage />
        )}
        <ConnectSiteWizard opened={connectWizardOpen} onClose={() => setConnectWizardOpen(false)} />
      </AppShell.Main>
    </AppShell>
  );
}
