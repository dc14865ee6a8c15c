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

type PreflightPair = FailbackPreflight['pairs'][number];

/**
 * What failback would copy, before anything moves: by bitmaps, by code
 * comparison, bytes and time, in total and per copy set. Every copy set names
 * the site holding its primary (H1) volume, the site it is copied back to;
 * `h1Site` is the session's H1 site (the master), which holds the copy sets
 * whose `primarySite` is absent.
 */
export function PreflightSummary({ preflight, pairs, h1Site }: { preflight: FailbackPreflight; pairs: PairInfo[]; h1Site?: string }) {
  const pairName = (pair: PreflightPair) => {
    const known = pairs.find((each) => each.id === pair.pair);
    return known ? `${known.h1Volume} ⇄ ${known.h2Volume}` : (pair.h1Volume ?? pair.pair);
  };
  const primaryOf = (pair: PreflightPair) => pair.primarySite ?? pairs.find((each) => each.id === pair.pair)?.primarySite ?? h1Site;
  const sum = (pick: (pair: PreflightPair) => number | null | undefined) => preflight.pairs.reduce((total, pair) => total + (pick(pair) ?? 0), 0);
  const byBitmap = sum((pair) => pair.candidateTracks);
  const byCodes = preflight.verifyCodes ? String(sum((pair) => pair.differingTracks)) : 'not compared';
  const perSiteKnown = preflight.pairs.every((pair) => pair.tracksToCopy !== undefined);
  const sites = [...new Set(preflight.pairs.map(primaryOf).filter((site): site is string => Boolean(site)))];
  return (
    <>
      <SimpleGrid cols={4} mt="sm">
        <Count label="Tracks by bitmap" value={String(byBitmap)} testId="preflight-bitmap-tracks" />
        <Count label={preflight.fullCompare ? 'Differing (full compare)' : 'Differing by codes'} value={byCodes} testId="preflight-code-tracks" />
        <Count label="Bytes to copy" value={formatSize(preflight.bytesToCopy)} testId="preflight-bytes" />
        <Count label="Estimated time" value={formatSeconds(preflight.estimatedSeconds)} testId="preflight-eta" />
      </SimpleGrid>
      <Text size="sm" mt="xs" data-testid="preflight-tracks-to-copy">
        {preflight.tracksToCopy} track{preflight.tracksToCopy === 1 ? '' : 's'} to copy
        {sites.length > 1 ? `, to ${sites.length} sites (${sites.join(', ')})` : ''}
      </Text>
      <Table.ScrollContainer minWidth={640} type="native">
        <Table fz="xs" mt="xs" withTableBorder striped>
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Copy set</Table.Th>
              <Table.Th>Primary site</Table.Th>
              <Table.Th ta="right">Changed since failover</Table.Th>
              <Table.Th ta="right">Never sent</Table.Th>
              <Table.Th ta="right">By bitmap</Table.Th>
              <Table.Th ta="right">By codes</Table.Th>
              <Table.Th ta="right">To copy</Table.Th>
              <Table.Th ta="right">Bytes</Table.Th>
              <Table.Th ta="right">Estimate</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {preflight.pairs.map((pair) => (
              <Table.Tr key={pair.pair} data-testid={`preflight-pair-${pair.pair}`}>
                <Table.Td style={{ whiteSpace: 'nowrap' }}>{pairName(pair)}</Table.Td>
                <Table.Td data-testid="preflight-primary-site">{primaryOf(pair) ?? '–'}</Table.Td>
                <Table.Td ta="right">{pair.targetChangedTracks}</Table.Td>
                <Table.Td ta="right">{pair.outOfSyncTracks}</Table.Td>
                <Table.Td ta="right" data-testid="preflight-pair-bitmap">
                  {pair.candidateTracks}
                </Table.Td>
                <Table.Td ta="right" data-testid="preflight-pair-codes">
                  {pair.differingTracks ?? '–'}
                </Table.Td>
                <Table.Td ta="right" data-testid="preflight-pair-to-copy">
                  {pair.tracksToCopy ?? '–'}
                </Table.Td>
                <Table.Td ta="right" style={{ whiteSpace: 'nowrap' }} data-testid="preflight-pair-bytes">
                  {pair.bytesToCopy === undefined ? '–' : formatSize(pair.bytesToCopy)}
                </Table.Td>
                <Table.Td ta="right" style={{ whiteSpace: 'nowrap' }}>
                  {pair.estimatedSeconds === undefined ? '–' : formatSeconds(pair.estimatedSeconds)}
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
          <Table.Tfoot>
            <Table.Tr data-testid="preflight-total" fw={600}>
              <Table.Td colSpan={2}>Total ({preflight.pairs.length} copy set{preflight.pairs.length === 1 ? '' : 's'})</Table.Td>
              <Table.Td ta="right">{sum((pair) => pair.targetChangedTracks)}</Table.Td>
              <Table.Td ta="right">{sum((pair) => pair.outOfSyncTracks)}</Table.Td>
              <Table.Td ta="right">{byBitmap}</Table.Td>
              <Table.Td ta="right">{preflight.verifyCodes ? byCodes : '–'}</Table.Td>
              <Table.Td ta="right" data-testid="preflight-total-to-copy">
                {preflight.tracksToCopy}
              </Table.Td>
              <Table.Td ta="right" style={{ whiteSpace: 'nowrap' }}>
                {formatSize(preflight.bytesToCopy)}
              </Table.Td>
              <Table.Td ta="right" style={{ whiteSpace: 'nowrap' }}>
                {formatSeconds(preflight.estimatedSeconds)}
              </Table.Td>
            </Table.Tr>
          </Table.Tfoot>
        </Table>
      </Table.ScrollContainer>
      {!perSiteKnown && (
        <Text size="xs" c="dimmed">
          This agent does not report what each copy set copies; only the totals are known.
        </Text>
      )}
    </>
  );
}
