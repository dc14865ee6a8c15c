import { Checkbox, Group, Loader, NativeSelect, ScrollArea, Table, Text, TextInput } from '@mantine/core';
import type { UseQueryResult } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
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

/** The events whose type and message hold every word of `query` (any case), warnings and errors only with `problemsOnly`. */
export function filterEvents<E extends LoggedEvent>(events: E[], query: string, problemsOnly: boolean): E[] {
  const words = query.trim().toLowerCase().split(/\s+/).filter(Boolean);
  return events.filter((event) => {
    if (problemsOnly && event.severity === 'info') return false;
    const text = `${event.type} ${event.message}`.toLowerCase();
    return words.every((word) => text.includes(word));
  });
}

/** How the log is ordered: newest first (the default), oldest first, or errors, then warnings, then the rest (newest first in each). */
export type EventOrder = 'newest' | 'oldest' | 'severity';

const severityRank = { error: 0, warning: 1, info: 2 } as const;

/** `events` in the agent's order (oldest first), put in `order`. */
export function orderEvents<E extends LoggedEvent>(events: E[], order: EventOrder): E[] {
  const newest = [...events].reverse();
  if (order === 'oldest') return [...events];
  if (order === 'newest') return newest;
  // Array.prototype.sort is stable: newest first within each severity.
  return newest.sort((a, b) => severityRank[a.severity] - severityRank[b.severity]);
}

/**
 * A list of agent events read by `events`, newest first unless the administrator orders it otherwise: a loader while it loads, the problem when it fails,
 * `empty` when there are none; a search over type and message and a warnings-and-errors filter above it. Shared by
 * the session and flash cards (each passes its own query and wording).
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
  const [query, setQuery] = useState('');
  const [problemsOnly, setProblemsOnly] = useState(false);
  const [order, setOrder] = useState<EventOrder>('newest');
  if (events.isLoading) return <Loader size="sm" />;
  if (events.error) return <ProblemAlert error={events.error} title={errorTitle} />;
  const all = events.data?.events ?? [];
  if (all.length === 0) return <Text size="sm" c="dimmed">{empty}</Text>;
  const list = filterEvents(orderEvents(all, order), query, problemsOnly);
  return (
    <>
      <Group gap="sm" mb={4}>
        <TextInput size="xs" placeholder="Search events" aria-label="Search events" value={query} onChange={(event) => setQuery(event.currentTarget.value)} w={220} />
        <NativeSelect
          size="xs"
          aria-label="Order events"
          value={order}
          onChange={(event) => setOrder(event.currentTarget.value as EventOrder)}
          data={[
            { value: 'newest', label: 'Newest first' },
            { value: 'oldest', label: 'Oldest first' },
            { value: 'severity', label: 'Errors and warnings first' },
          ]}
        />
        <Checkbox size="xs" label="Warnings and errors only" checked={problemsOnly} onChange={(event) => setProblemsOnly(event.currentTarget.checked)} />
        <Text size="xs" c="dimmed" data-testid={`${testId}-shown`}>
          {list.length} of {all.length}
        </Text>
      </Group>
      {list.length === 0 && (
        <Text size="sm" c="dimmed">
          No event matches.
        </Text>
      )}
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
    </>
  );
}
