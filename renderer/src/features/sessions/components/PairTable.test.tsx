import { fireEvent, render, screen } from '@testing-library/react';
import { MantineProvider } from '@mantine/core';
import { describe, expect, it } from 'vitest';
import { pairFixture } from '../hooks/session-fixtures.test-helpers.ts';
import { arrangePairs, PairTable } from './PairTable.tsx';

const pairs = Array.from({ length: 12 }, (_, i) =>
  pairFixture({
    id: `p${i}`,
    h1Volume: `db-${String(11 - i).padStart(2, '0')}`,
    h2Volume: `copy-${String(11 - i).padStart(2, '0')}`,
    state: i === 4 ? 'suspended' : 'duplex',
    reason: i === 4 ? 'link down' : null,
    outOfSyncTracks: i === 7 ? 90 : i === 4 ? 5 : 0,
  }),
);

describe('copy sets table', () => {
  it('searches volumes, sites and states, and sorts by name, attention or out-of-sync', () => {
    expect(arrangePairs(pairs, 'copy-03', 'name').map((p) => p.h1Volume)).toEqual(['db-03']);
    expect(arrangePairs(pairs, 'link down', 'name').map((p) => p.h1Volume)).toEqual(['db-07']);
    expect(arrangePairs(pairs, '', 'name')[0].h1Volume).toBe('db-00');
    expect(arrangePairs(pairs, '', 'attention')[0].h1Volume).toBe('db-07');
    expect(arrangePairs(pairs, '', 'out-of-sync').slice(0, 2).map((p) => p.h1Volume)).toEqual(['db-04', 'db-07']);
  });

  it('shows the search and sort above many copy sets and narrows the rows', () => {
    render(
      <MantineProvider>
        <PairTable pairs={pairs} h1Site="alpha" h2Site="beta" />
      </MantineProvider>,
    );
    const rows = () => screen.queryAllByTestId(/^pair-row-/).map((row) => row.dataset.testid);
    expect(rows()).toHaveLength(12);
    expect(rows()[0]).toBe('pair-row-db-00');
    fireEvent.change(screen.getByLabelText('Search copy sets'), { target: { value: 'suspended' } });
    expect(rows()).toEqual(['pair-row-db-07']);
    expect(screen.getByTestId('pairs-shown')).toHaveTextContent('1 of 12 copy sets');
    fireEvent.change(screen.getByLabelText('Search copy sets'), { target: { value: '' } });
    fireEvent.change(screen.getByLabelText('Sort copy sets'), { target: { value: 'out-of-sync' } });
    expect(rows().slice(0, 2)).toEqual(['pair-row-db-04', 'pair-row-db-07']);
  });

  it('keeps a few copy sets in the agent\'s order, without the tools', () => {
    render(
      <MantineProvider>
        <PairTable pairs={pairs.slice(0, 3)} h1Site="alpha" h2Site="beta" />
      </MantineProvider>,
    );
    expect(screen.queryByLabelText('Search copy sets')).toBeNull();
    expect(screen.queryAllByTestId(/^pair-row-/).map((row) => row.dataset.testid)).toEqual(['pair-row-db-11', 'pair-row-db-10', 'pair-row-db-09']);
  });
});
