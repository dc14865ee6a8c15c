import { Badge, Button, Card, Group, Modal, Progress, Stack, Text, Tooltip } from '@mantine/core';
import { useState } from 'react';
import type { Role } from '@tandem/contract';
import type { SiteSummary } from '../../../../../main/src/shared/console-api.ts';
import { useUiStore } from '../../../app/ui-store.ts';
import { formatPercent, formatSize } from '../../../lib/format.ts';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { formatClock } from '../../../lib/site-reach.ts';
import { useRemoveSite, useSitePool } from '../hooks/use-sites.ts';
import { RoleGated } from '../../../components/RoleGated.tsx';
import { siteAccess } from '../hooks/site-access.ts';
import { ConnectionBadge } from './ConnectionBadge.tsx';
import { SiteClientsModal } from './SiteClientsModal.tsx';

/** What each role lets this console do at a site, in words. */
export const roleWords: Record<Role, string> = {
  monitor: 'This console is paired as monitor: it sees everything at this site and changes nothing.',
  operator: 'This console is paired as operator: it runs session actions (failover, failback…), verify and flash copies; volumes, session definitions and pairing need an administrator.',
  administrator: 'This console is paired as administrator: it may do everything at this site.',
};

/** One site: connection state, role, agent version, pool usage; open or remove it. */
export function SiteCard({ site }: { site: SiteSummary }) {
  const connected = site.connection.state === 'connected';
  const pool = useSitePool(site.id, connected);
  const remove = useRemoveSite();
  const selectSite = useUiStore((state) => state.selectSite);
  const [confirming, setConfirming] = useState(false);
  const [clientsOpen, setClientsOpen] = useState(false);
  const used = pool.data ? pool.data.usedBytes : 0;
  const capacity = pool.data ? pool.data.usedBytes + pool.data.filesystemFreeBytes : 0;

  return (
    <Card withBorder padding="md" data-testid={`site-card-${site.site}`}>
      <Group justify="space-between" mb="xs">
        <Text fw={600} size="lg">
          {site.site}
        </Text>
        <Group gap="xs">
          {site.role && (
            <Tooltip label={roleWords[site.role]} withArrow multiline maw={320}>
              <Badge variant="outline" color={site.role === 'administrator' ? 'blue' : site.role === 'operator' ? 'teal' : 'gray'} tt="none" data-testid="site-role">
                {site.role}
              </Badge>
            </Tooltip>
          )}
          <ConnectionBadge connection={site.connection} />
        </Group>
      </Group>
      <Stack gap={4}>
        <Text size="sm" c="dimmed">
          {site.address} · agent {site.agent?.version ?? 'unknown version'}
        </Text>
        {pool.data && (
          <>
            <Text size="sm">
              Pool: {formatSize(pool.data.usedBytes)} used of {formatSize(pool.data.provisionedBytes)} provisioned · {pool.data.volumes} volumes,{' '}
              {pool.data.snapshots} snapshots
            </Text>
            {!connected && (
              <Text size="xs" c="orange" data-testid="pool-last-known">
                Last known, as of {formatClock(new Date(pool.dataUpdatedAt).toISOString())}: the site does not answer since {formatClock(site.connection.since)}.
              </Text>
            )}
            <Progress value={capacity > 0 ? (used / capacity) * 100 : 0} aria-label={`pool ${formatPercent(used, capacity)} full`} />
          </>
        )}
        {pool.error && <ProblemAlert error={pool.error} title="Pool usage unavailable" />}
      </Stack>
      <Group mt="md" justify="flex-end">
        {connected && (
          <RoleGated reason={siteAccess(site).reason('GET /v1/clients')}>
            <Button variant="subtle" onClick={() => setClientsOpen(true)}>
              Clients…
            </Button>
          </RoleGated>
        )}
        <Button variant="subtle" color="red" onClick={() => setConfirming(true)}>
          Remove
        </Button>
        <Button onClick={() => selectSite(site.id)}>Open volumes</Button>
      </Group>
      {clientsOpen && <SiteClientsModal site={site} onClose={() => setClientsOpen(false)} />}
      <Modal opened={confirming} onClose={() => setConfirming(false)} title={`Remove site ${site.site}?`}>
        <Text size="sm">The console forgets this site and its credentials. The agent and its volumes are not touched; you can pair again with a new token.</Text>
        {remove.error && <ProblemAlert error={remove.error} />}
        <Group justify="flex-end" mt="md">
          <Button variant="default" onClick={() => setConfirming(false)}>
            Keep
          </Button>
          <Button color="red" loading={remove.isPending} onClick={() => remove.mutate(site.id, { onSuccess: () => setConfirming(false) })}>
            Remove {site.site}
          </Button>
        </Group>
      </Modal>
    </Card>
  );
}
