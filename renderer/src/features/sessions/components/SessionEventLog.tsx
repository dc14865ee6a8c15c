import { Loader, ScrollArea, Table, Text } from '@mantine/core';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { formatTime } from '../hooks/session-model.ts';
import { useSessionEvents } from '../hooks/use-sessions.ts';

const severityColours = { info: 'blue', warning: 'orange', error: 'red' } as const;

/** The session's events at one site, newest first (refreshed by the same agent events it lists). */
export function SessionEventLog({ siteId, siteName, name }: { siteId: string; siteName: string; name: string }) {
  const events = useSessionEvents(siteId, name);
  if (events.isLoading) return <Loader size="sm" />;
  if (events.error) return <ProblemAlert error={events.error} title={`Events at ${siteName} could not be read`} />;
  const list = [...(events.data?.events ?? [])].reverse();
  if (list.length === 0) return <Text size="sm" c="dimmed">No events at {siteName} yet.</Text>;
  return (
    <ScrollArea.Autosize mah={220}>
      <Table fz="xs" verticalSpacing={2} data-testid={`session-events-${siteName}`}>
        <Table.Tbody>
          {list.map((event) => (
            <Table.Tr key={event.id}>
              <Table.Td style={{ whiteSpace: 'nowrap' }}>{formatTime(event.time)}</Table.Td>
              <Table.Td>
                <Text size="xs" ff="monospace" c={severityColours[event.severity]} style={{ whiteSpace: 'nowrap' }}>
                  {event.type}
                </Text>
              </Table.Td>
              <Table.Td>{event.message}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </ScrollArea.Autosize>
  );
}
