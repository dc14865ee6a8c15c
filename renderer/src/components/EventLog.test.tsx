import { fireEvent, render, screen, within } from '@testing-library/react';
import { MantineProvider } from '@mantine/core';
import type { UseQueryResult } from '@tanstack/react-query';
import { describe, expect, it } from 'vitest';
import { EventLog, filterEvents, orderEvents } from './EventLog.tsx';

const events = [
  { id: 1, time: '2026-12-07T10:00:00.000Z', severity: 'info' as const, type: 'session.state', message: 'session gold: defined -> preparing' },
  { id: 2, time: '2026-12-07T10:00:05.000Z', severity: 'warning' as const, type: 'session.state', message: 'session gold: prepared -> suspended (link down)' },
  { id: 3, time: '2026-12-07T10:00:09.000Z', severity: 'error' as const, type: 'alert.raised', message: 'link to beta down for 30 s' },
  { id: 4, time: '2026-12-07T10:01:00.000Z', severity: 'info' as const, type: 'session.synced', message: 'session gold copied 12 track(s)' },
];

describe('event log search and filter', () => {
  it('orders newest first, oldest first, or errors then warnings then the rest (newest first within each)', () => {
    const more = [...events, { id: 5, time: '2026-12-07T10:02:00.000Z', severity: 'warning' as const, type: 'pair.suspended', message: 'copy set 2 suspended' }];
    expect(orderEvents(more, 'newest').map((e) => e.id)).toEqual([5, 4, 3, 2, 1]);
    expect(orderEvents(more, 'oldest').map((e) => e.id)).toEqual([1, 2, 3, 4, 5]);
    expect(orderEvents(more, 'severity').map((e) => e.id)).toEqual([3, 5, 2, 4, 1]);
    expect(more.map((e) => e.id)).toEqual([1, 2, 3, 4, 5]);
  });

  it('matches every word against type and message, and keeps warnings and errors only when asked', () => {
    expect(filterEvents(events, 'gold suspended', false).map((e) => e.id)).toEqual([2]);
    expect(filterEvents(events, 'ALERT', false).map((e) => e.id)).toEqual([3]);
    expect(filterEvents(events, '', true).map((e) => e.id)).toEqual([2, 3]);
    expect(filterEvents(events, 'gold', true).map((e) => e.id)).toEqual([2]);
    expect(filterEvents(events, '  ', false)).toHaveLength(4);
  });

  it('narrows the list as the administrator types, newest first, and says how many are shown', () => {
    const query = { isLoading: false, error: null, data: { events } } as unknown as UseQueryResult<{ events: typeof events }>;
    render(
      <MantineProvider>
        <EventLog events={query} errorTitle="failed" empty="none" testId="log" />
      </MantineProvider>,
    );
    const rows = () => within(screen.getByTestId('log')).getAllByRole('row').map((row) => row.textContent ?? '');
    expect(rows()).toHaveLength(4);
    expect(rows()[0]).toContain('copied 12 track(s)');
    fireEvent.change(screen.getByLabelText('Order events'), { target: { value: 'oldest' } });
    expect(rows()[0]).toContain('defined -> preparing');
    fireEvent.change(screen.getByLabelText('Order events'), { target: { value: 'severity' } });
    expect(rows()[0]).toContain('alert.raised');
    fireEvent.change(screen.getByLabelText('Order events'), { target: { value: 'newest' } });
    fireEvent.change(screen.getByLabelText('Search events'), { target: { value: 'suspended' } });
    expect(rows()).toHaveLength(1);
    expect(screen.getByTestId('log-shown')).toHaveTextContent('1 of 4');
    fireEvent.change(screen.getByLabelText('Search events'), { target: { value: '' } });
    fireEvent.click(screen.getByLabelText('Warnings and errors only'));
    expect(rows().map((row) => row.includes('alert.raised') || row.includes('suspended'))).toEqual([true, true]);
    fireEvent.change(screen.getByLabelText('Search events'), { target: { value: 'synced' } });
    expect(screen.getByText('No event matches.')).toBeInTheDocument();
  });
});
