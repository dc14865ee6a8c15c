import { SimpleGrid, Table, Text } from '@mantine/core';
import type { FailbackPreflight, PairInfo } from '@tandem/contract';
import { formatSize } from '../../../lib/format.ts';
import { formatSeconds } from '../hooks/session-model.ts';

function Count({ label, value, testId }: { label: string; value: string; testId: string }) {
  return (
    <div>
      <Text size="xs" c="dimmed">
        {label}
      </Text>
      <Text size="lg" fw={600} data-testid={testId}>
        {value}
      </Text>
    </div>
  );
}

/** What failback would copy, before anything moves: by bitmaps, by code comparison, bytes and time. */
export function PreflightSummary({ preflight, pairs }: { preflight: FailbackPreflight; pairs: PairInfo[] }) {
  const pairName = (id: string) => {
    const pair = pairs.find((each) => each.id === id);
    return pair ? `${pair.h1Volume} ⇄ ${pair.h2Volume}` : id;
  };
  // Multi-primary sessions: the site holding the copy set's H1 volume, when it is not the session's H1 site.
  const primaryOf = (pair: FailbackPreflight['pairs'][number]) => pair.primarySite ?? pairs.find((each) => each.id === pair.pair)?.primarySite;
  const sum = (pick: (pair: FailbackPreflight['pairs'][number]) => number | null) => preflight.pairs.reduce((total, pair) => total + (pick(pair) ?? 0), 0);
  const byBitmap = sum((pair) => pair.candidateTracks);
  return (
    <>
      <SimpleGrid cols={4} mt="sm">
        <Count label="Tracks by bitmap" value={String(byBitmap)} testId="preflight-bitmap-tracks" />
        <Count
          label={preflight.fullCompare ? 'Differing (full compare)' : 'Differing by codes'}
          value={preflight.verifyCodes ? String(sum((pair) => pair.differingTracks)) : 'not compared'}
          testId="preflight-code-tracks"
        />
        <Count label="Bytes to copy" value={formatSize(preflight.bytesToCopy)} testId="preflight-bytes" />
        <Count label="Estimated time" value={formatSeconds(preflight.estimatedSeconds)} testId="preflight-eta" />
      </SimpleGrid>
      <Text size="sm" mt="xs" data-testid="preflight-tracks-to-copy">
        {preflight.tracksToCopy} track{preflight.tracksToCopy === 1 ? '' : 's'} to copy
      </Text>
      <Table fz="xs" mt="xs" withTableBorder>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Copy set</Table.Th>
            <Table.Th ta="right">Changed since failover</Table.Th>
            <Table.Th ta="right">Never sent</Table.Th>
            <Table.Th ta="right">Union</Table.Th>
            <Table.Th ta="right">Codes differ</Table.Th>
            <Table.Th ta="right">Codes computed</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {preflight.pairs.map((pair) => (
            <Table.Tr key={pair.pair} data-testid={`preflight-pair-${pair.pair}`}>
              <Table.Td>
                {pairName(pair.pair)}
                {primaryOf(pair) && (
                  <Text span size="xs" c="dimmed" data-testid="preflight-primary-site">
                    {' '}
                    (primary at {primaryOf(pair)})
                  </Text>
                )}
              </Table.Td>
              <Table.Td ta="right">{pair.targetChangedTracks}</Table.Td>
              <Table.Td ta="right">{pair.outOfSyncTracks}</Table.Td>
              <Table.Td ta="right">{pair.candidateTracks}</Table.Td>
              <Table.Td ta="right">{pair.differingTracks ?? '–'}</Table.Td>
              <Table.Td ta="right">{pair.codesComputed}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </>
  );
}
