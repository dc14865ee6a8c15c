import { Alert, Button, Group, Modal, Stack, Table, Text, Title } from '@mantine/core';
import { RoleGated } from '../../../components/RoleGated.tsx';
import { useSiteAccess } from '../../sites/hooks/site-access.ts';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { useApi } from '../../../app/api-context.tsx';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { formatAge, formatClock } from '../../../lib/site-reach.ts';
import { useNow } from '../../../lib/use-now.ts';
import { sessionKeys } from '../api/session-keys.ts';
import { sessionsApi } from '../api/sessions-api.ts';
import { formatSeconds, formatTime, type SiteCluster } from '../hooks/session-model.ts';
import { atLeastWarning } from '../hooks/session-trust.ts';
import { useDeleteCluster } from '../hooks/use-sessions.ts';
import { StateBadge } from './HealthBadge.tsx';
import { ReportMenu } from './ReportMenu.tsx';

/** The master data set grows with every consolidation (no event says so): read again at this rate while it is open. */
const historyRefreshMs = 5000;

function ClusterHistory({ siteId, name }: { siteId: string; name: string }) {
  const api = useApi();
  const history = useQuery({
    queryKey: [...sessionKeys.clusters(siteId), name, 'history'],
    queryFn: () => sessionsApi.clusterHistory(api, siteId, name),
    refetchInterval: historyRefreshMs,
  });
  if (history.error) return <ProblemAlert error={history.error} title="The master data set could not be read" />;
  const records = [...(history.data?.records ?? [])].reverse().slice(0, 20);
  return (
    <Table fz="xs" verticalSpacing={2}>
      <Table.Thead>
        <Table.Tr>
          <Table.Th>#</Table.Th>
          <Table.Th>Time</Table.Th>
          <Table.Th>Health</Table.Th>
          <Table.Th>Consistency time</Table.Th>
          <Table.Th>Exposure</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {records.map((record) => (
          <Table.Tr key={record.sequence}>
            <Table.Td>{record.sequence}</Table.Td>
            <Table.Td>{formatTime(record.time)}</Table.Td>
            <Table.Td>{record.health}</Table.Td>
            <Table.Td>{formatTime(record.consistencyTime)}</Table.Td>
            <Table.Td>{formatSeconds(record.exposureSeconds)}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

function DeleteClusterModal({ entry, onClose }: { entry: SiteCluster; onClose: () => void }) {
  const remove = useDeleteCluster();
  const { cluster } = entry;
  return (
    <Modal opened onClose={onClose} title={`Delete cluster ${cluster.name}?`}>
      <Stack gap="sm">
        <Text size="sm">
          The processor at {cluster.processorSite} stops and its master data set ({cluster.masterDataSet.records} records) is deleted. The {cluster.members.length} member session
          {cluster.members.length === 1 ? '' : 's'} go on unchanged.
        </Text>
        {remove.error && <ProblemAlert error={remove.error} title="The cluster was not deleted" />}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button color="red" loading={remove.isPending} onClick={() => remove.mutate({ siteId: entry.siteId, cluster: cluster.name }, { onSuccess: onClose })}>
            Delete {cluster.name}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}

/**
 * A cluster's consolidated view (from its master data set): health, minimum
 * consistency time, worst exposure, members. Read from the processor's
 * site; when that site is unreachable the last known view stays, marked
 * unknown since then, its health at least warning.
 */
export function ClusterHeader({ entry }: { entry: SiteCluster }) {
  const { cluster, reach } = entry;
  const now = useNow();
  const [historyOpen, setHistoryOpen] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const unknown = cluster.members.filter((member) => member.status === 'unknown');
  const access = useSiteAccess(entry.siteId);
  return (
    <Stack gap={4} data-testid={`cluster-${cluster.name}`}>
      <Group justify="space-between">
        <Group gap="sm">
          <Title order={3}>Cluster {cluster.name}</Title>
          <StateBadge
            state={reach.live ? `${cluster.members.length} member${cluster.members.length === 1 ? '' : 's'}` : 'unknown'}
            health={reach.live ? cluster.health : atLeastWarning(cluster.health)}
            testId="cluster-state"
          />
        </Group>
        <Group gap="xs">
          {reach.live && (
            <Button size="xs" variant="subtle" onClick={() => setHistoryOpen((open) => !open)} aria-expanded={historyOpen}>
              {historyOpen ? 'Hide history' : 'Master data set history'}
            </Button>
          )}
          {reach.live && <ReportMenu siteId={entry.siteId} name={cluster.name} kind="cluster" />}
          {reach.live && (
            <RoleGated reason={access.reason('DELETE /v1/clusters/:name')}>
              <Button size="xs" variant="subtle" color="red" onClick={() => setDeleting(true)}>
                Delete cluster…
              </Button>
            </RoleGated>
          )}
        </Group>
      </Group>
      {!reach.live && (
        <Alert color="yellow" p="xs" data-testid="cluster-unknown">
          <Text size="sm">
            Unknown since {formatClock(reach.unknownSince)}: {cluster.processorSite} ({reach.reason ?? 'unreachable'}) runs this cluster's processor. Last known, as of{' '}
            {formatClock(cluster.consolidatedAt)} ({formatAge(now - entry.receivedAt)}): {cluster.health}, {cluster.members.length} member{cluster.members.length === 1 ? '' : 's'}.
          </Text>
        </Alert>
      )}
      <Text size="sm" c="dimmed" data-testid="cluster-summary">
        Processor at {cluster.processorSite} · consistency time {formatTime(cluster.consistencyTime)} · exposure {formatSeconds(cluster.exposureSeconds)} · master data set{' '}
        {cluster.masterDataSet.records} records{reach.live && cluster.consolidatedAt ? ` · consolidated ${formatClock(cluster.consolidatedAt)}` : ''}
      </Text>
      {unknown.length > 0 && (
        <Text size="sm" c="orange">
          Not reporting: {unknown.map((member) => `${member.session} at ${member.site}${member.detail ? ` (${member.detail})` : ''}`).join(', ')}
        </Text>
      )}
      {reach.live && historyOpen && <ClusterHistory siteId={entry.siteId} name={cluster.name} />}
      {deleting && <DeleteClusterModal entry={entry} onClose={() => setDeleting(false)} />}
    </Stack>
  );
}
