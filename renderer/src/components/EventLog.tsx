import { Loader, ScrollArea, Table, Text } from '@mantine/core';
import type { UseQueryResult } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { ProblemAlert } from '../lib/ProblemAlert.tsx';
import { formatTime } from '../features/sessions/hooks/session-model.ts';

const severityColours = { info: 'blue', warning: 'orange', error: 'red' } as const;

interface LoggedEvent {
  id: string | number;
  time: string;
  severity: keyof typeof severityColours;
  type: string;
  message: string;
}

/**
 * A list of agent events read by `events`, newest first: a loader while it loads, the problem when it fails,
 * `empty` when there are none. Shared by the session and flash cards (each passes its own query and wording).
 */
export function EventLog({
  events,
  errorTitle,
  empty,
  testId,
}: {
  events: UseQueryResult<{ events: LoggedEvent[] }>;
  errorTitle: string;
  empty: ReactNode;
  testId: string;
}) {
  if (events.isLoading) return <Loader size="sm" />;
  if (events.error) return <ProblemAlert error={events.error} title={errorTitle} />;
  const list = [...(events.data?.events ?? [])].reverse();
  if (list.length === 0) return <Text size="sm" c="dimmed">{empty}</Text>;
  return (
    <ScrollArea.Autosize mah={220}>
      <Table fz="xs" verticalSpacing={2} data-testid={testId}>
        <Table.Tbody>
          {list.map((event) => (
            <Table.Tr key={event.id}>
              <Table.Td style={{ whiteSpace: 'nowrap' }}>{formatTime(event.time)}</Table.Td>
              <Table.Td>
                <Text size="xs" ff="monospace" c={severityColours[event.severity]} style={{ whiteSpace: 'nowrap' }}>
                  {event.type}
                </Text>
              </Table.Td>
              <Table.Td style={{ minWidth: '12rem' }}>{event.message}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </ScrollArea.Autosize>
  );
}
