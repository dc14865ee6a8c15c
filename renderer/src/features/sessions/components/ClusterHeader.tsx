import { Button, Group, Stack, Table, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import type { ClusterInfo } from '@tandem/contract';
import { useState } from 'react';
import { useApi } from '../../../app/api-context.tsx';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { sessionKeys } from '../api/session-keys.ts';
import { sessionsApi } from '../api/sessions-api.ts';
import { formatSeconds, formatTime } from '../hooks/session-model.ts';
import { StateBadge } from './HealthBadge.tsx';
import { ReportMenu } from './ReportMenu.tsx';

function ClusterHistory({ siteId, name }: { siteId: string; name: string }) {
  const api = useApi();
  const history = useQuery({ queryKey: [...sessionKeys.clusters(siteId), name, 'history'], queryFn: () => sessionsApi.clusterHistory(api, siteId, name) });
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

/** A cluster's consolidated view (from its master data set): health, minimum consistency time, worst exposure, members. */
export function ClusterHeader({ cluster, siteId }: { cluster: ClusterInfo; siteId: string | null }) {
  const [historyOpen, setHistoryOpen] = useState(false);
  const unknown = cluster.members.filter((member) => member.status === 'unknown');
  return (
    <Stack gap={4} data-testid={`cluster-${cluster.name}`}>
      <Group justify="space-between">
        <Group gap="sm">
          <Title order={3}>Cluster {cluster.name}</Title>
          <StateBadge state={`${cluster.members.length} member${cluster.members.length === 1 ? '' : 's'}`} health={cluster.health} />
        </Group>
        <Group gap="xs">
          {siteId && (
            <Button size="xs" variant="subtle" onClick={() => setHistoryOpen((open) => !open)}>
              {historyOpen ? 'Hide history' : 'Master data set history'}
            </Button>
          )}
          {siteId && <ReportMenu siteId={siteId} name={cluster.name} kind="cluster" />}
        </Group>
      </Group>
      <Text size="sm" c="dimmed">
        Processor at {cluster.processorSite} · consistency time {formatTime(cluster.consistencyTime)} · exposure {formatSeconds(cluster.exposureSeconds)} · master data
        set {cluster.masterDataSet.records} records
      </Text>
      {unknown.length > 0 && (
        <Text size="sm" c="orange">
          Not reporting: {unknown.map((member) => `${member.session} at ${member.site}${member.detail ? ` (${member.detail})` : ''}`).join(', ')}
        </Text>
      )}
      {siteId && historyOpen && <ClusterHistory siteId={siteId} name={cluster.name} />}
    </Stack>
  );
}
