import { Loader, ScrollArea, Table, Text } from '@mantine/core';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { formatTime } from '../../sessions/hooks/session-model.ts';
import { useFlashEvents } from '../hooks/use-flash.ts';

const severityColours = { info: 'blue', warning: 'orange', error: 'red' } as const;

/** A flash session's events, newest first; they arrive live (each flash event refreshes the list). */
export function FlashEventLog({ siteId, name }: { siteId: string; name: string }) {
  const events = useFlashEvents(siteId, name);
  if (events.isLoading) return <Loader size="sm" />;
  if (events.error) return <ProblemAlert error={events.error} title="The flash events could not be read" />;
  const list = [...(events.data?.events ?? [])].reverse();
  if (list.length === 0) return <Text size="sm" c="dimmed">No events yet.</Text>;
  return (
    <ScrollArea.Autosize mah={220}>
      <Table fz="xs" verticalSpacing={2} data-testid={`flash-events-${name}`}>
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
