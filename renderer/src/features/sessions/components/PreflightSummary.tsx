import { SimpleGrid, Table, Text } from '@mantine/core';
import type { FailbackPreflight, PairInfo } from '@tandem/contract';
import { formatSize } from '../../../lib/format.ts';
import { formatSeconds } from '../hooks/session-model.ts';

function Count({ label, value, bytes, testId }: { label: string; value: string; bytes?: string; testId: string }) {
  return (
    <div>
      <Text size="xs" c="dimmed">
        {label}
      </Text>
      <Text size="lg" fw={600} data-testid={testId}>
        {value}
      </Text>
      {bytes && (
        <Text size="xs" c="dimmed" data-testid={`${testId}-bytes`}>
          {bytes}
        </Text>
      )}
    </div>
  );
}

/** A track count with its bytes beneath (tracks x track size). */
function TracksCell({ tracks, bytes, testId }: { tracks: number | null | undefined; bytes: number | null; testId?: string }) {
  if (tracks === null || tracks === undefined) return <Table.Td ta="right">–</Table.Td>;
  return (
    <Table.Td ta="right" data-testid={testId} style={{ whiteSpace: 'nowrap' }}>
      {tracks.toLocaleString('en-US')}
      {bytes !== null && (
        <Text span size="xs" c="dimmed" display="block">
          {formatSize(bytes)}
        </Text>
      )}
    </Table.Td>
  );
}

type PreflightPair = FailbackPreflight['pairs'][number];

/**
 * What failback would copy, before anything moves: by bitmaps, by code
 * comparison, bytes and time, in total and per copy set. Every copy set names
 * the site holding its primary (H1) volume, the site it is copied back to;
 * `h1Site` is the session's H1 site (the control agent), which holds the copy sets
 * whose `primarySite` is absent.
 */
export function PreflightSummary({ preflight, pairs, h1Site }: { preflight: FailbackPreflight; pairs: PairInfo[]; h1Site?: string }) {
  const pairName = (pair: PreflightPair) => {
    const known = pairs.find((each) => each.id === pair.pair);
    return known ? `${known.h1Volume} ⇄ ${known.h2Volume}` : (pair.h1Volume ?? pair.pair);
  };
  const primaryOf = (pair: PreflightPair) => pair.primarySite ?? pairs.find((each) => each.id === pair.pair)?.primarySite ?? h1Site;
  // Bytes per track of a copy set: as its site reports it; else what the preflight's own figures imply.
  const fallbackTrackSize = pairs[0]?.trackSize ?? (preflight.tracksToCopy > 0 ? preflight.bytesToCopy / preflight.tracksToCopy : 65536);
  const trackSizeOf = (pair: PreflightPair) => pairs.find((each) => each.id === pair.pair)?.trackSize ?? fallbackTrackSize;
  const bytesOf = (pair: PreflightPair, tracks: number | null | undefined) => (tracks === null || tracks === undefined ? null : tracks * trackSizeOf(pair));
  const sum = (pick: (pair: PreflightPair) => number | null | undefined) => preflight.pairs.reduce((total, pair) => total + (pick(pair) ?? 0), 0);
  const byBitmap = sum((pair) => pair.candidateTracks);
  const byCodes = preflight.verifyCodes ? String(sum((pair) => pair.differingTracks)) : 'not compared';
  const bitmapBytes = sum((pair) => bytesOf(pair, pair.candidateTracks));
  const codeBytes = sum((pair) => bytesOf(pair, pair.differingTracks));
  const perSiteKnown = preflight.pairs.every((pair) => pair.tracksToCopy !== undefined);
  const sites = [...new Set(preflight.pairs.map(primaryOf).filter((site): site is string => Boolean(site)))];
  return (
    <>
      <SimpleGrid cols={4} mt="sm">
        <Count label="Tracks by bitmap" value={String(byBitmap)} bytes={`${formatSize(bitmapBytes)} at most`} testId="preflight-bitmap-tracks" />
        <Count
          label={preflight.fullCompare ? 'Differing (full compare)' : 'Differing by codes'}
          value={byCodes}
          bytes={preflight.verifyCodes ? formatSize(codeBytes) : undefined}
          testId="preflight-code-tracks"
        />
        <Count label="Bytes to copy" value={formatSize(preflight.bytesToCopy)} testId="preflight-bytes" />
        <Count label="Estimated time" value={formatSeconds(preflight.estimatedSeconds)} testId="preflight-eta" />
      </SimpleGrid>
      <Text size="sm" mt="xs" data-testid="preflight-tracks-to-copy">
        {preflight.tracksToCopy} track{preflight.tracksToCopy === 1 ? '' : 's'} to copy ({formatSize(preflight.bytesToCopy)})
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
                <TracksCell tracks={pair.targetChangedTracks} bytes={bytesOf(pair, pair.targetChangedTracks)} />
                <TracksCell tracks={pair.outOfSyncTracks} bytes={bytesOf(pair, pair.outOfSyncTracks)} />
                <TracksCell tracks={pair.candidateTracks} bytes={bytesOf(pair, pair.candidateTracks)} testId="preflight-pair-bitmap" />
                <TracksCell tracks={pair.differingTracks} bytes={bytesOf(pair, pair.differingTracks)} testId="preflight-pair-codes" />
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
              <TracksCell tracks={sum((pair) => pair.targetChangedTracks)} bytes={sum((pair) => bytesOf(pair, pair.targetChangedTracks))} />
              <TracksCell tracks={sum((pair) => pair.outOfSyncTracks)} bytes={sum((pair) => bytesOf(pair, pair.outOfSyncTracks))} />
              <TracksCell tracks={byBitmap} bytes={bitmapBytes} />
              <TracksCell tracks={preflight.verifyCodes ? sum((pair) => pair.differingTracks) : null} bytes={codeBytes} />
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
