import { Badge, Button, Group, NativeSelect, Progress, Table, Text, TextInput, Tooltip } from '@mantine/core';
import { useState } from 'react';
import type { Direction, PairInfo } from '@tandem/contract';
import { RoleGated } from '../../../components/RoleGated.tsx';
import { formatSize } from '../../../lib/format.ts';
import { formatSeconds, inconsistentReasonText } from '../hooks/session-model.ts';

const pairColours: Record<PairInfo['state'], string> = {
  defined: 'gray',
  connecting: 'yellow',
  syncing: 'blue',
  duplex: 'green',
  suspended: 'orange',
  failed: 'red',
  'target-available': 'grape',
};

/**
 * A copy's progress by the data it moves: bytes copied of the bytes to copy
 * (an unallocated track moves nothing and counts for nothing), as the agent
 * reports it; its own percentage when it reports no bytes. Null when nothing
 * is being copied.
 */
export function copyShare(pair: PairInfo): { percent: number; label: string } | null {
  if (pair.state !== 'syncing') return null;
  if (pair.copyBytes) {
    const { done, total } = pair.copyBytes;
    const percent = total > 0 ? Math.min(100, (done / total) * 100) : 100;
    return { percent, label: `${formatSize(done)} of ${formatSize(total)} copied` };
  }
  if (pair.syncedPercent !== null) return { percent: pair.syncedPercent, label: `${pair.syncedPercent.toFixed(1)} % of the data to copy` };
  return null;
}

function pairStateText(pair: PairInfo): string {
  const share = copyShare(pair);
  if (share) return `syncing ${Math.floor(share.percent)} %`;
  return pair.reason ? `${pair.state}: ${pair.reason}` : pair.state;
}

/** Tracks with their bytes: `12 (768 KiB)`. */
function tracksText(tracks: number, trackSize: number): string {
  return tracks === 0 ? '0' : `${tracks.toLocaleString('en-US')} (${formatSize(tracks * trackSize)})`;
}

/** What the in-sync column says outside a copy: in sync, or how much is marked to copy. */
function syncText(pair: PairInfo): string {
  if (pair.state === 'duplex') return 'in sync';
  if (pair.outOfSyncTracks > 0) return `${formatSize(pair.outOfSyncTracks * pair.trackSize)} at most to copy`;
  return pair.state === 'target-available' ? 'failed over' : '–';
}

/** Above this many copy sets the table gets a search and a sort. */
export const PAIR_TOOLS_FROM = 8;

export type PairSort = 'name' | 'attention' | 'out-of-sync';

/**
 * The copy sets whose volumes, primary site or state hold every word of
 * `query`, sorted: by H1 volume name; by attention (anything not duplex first,
 * then by name); or by out-of-sync tracks, most first.
 */
export function arrangePairs(pairs: PairInfo[], query: string, sort: PairSort): PairInfo[] {
  const words = query.trim().toLowerCase().split(/\s+/).filter(Boolean);
  const matching = pairs.filter((pair) => {
    const text = [pair.h1Volume, pair.h2Volume, pair.primarySite ?? '', pair.state, pair.reason ?? ''].join(' ').toLowerCase();
    return words.every((word) => text.includes(word));
  });
  const byName = (a: PairInfo, b: PairInfo) => a.h1Volume.localeCompare(b.h1Volume);
  const order: Record<PairSort, (a: PairInfo, b: PairInfo) => number> = {
    name: byName,
    attention: (a, b) => Number(a.state === 'duplex') - Number(b.state === 'duplex') || byName(a, b),
    'out-of-sync': (a, b) => b.outOfSyncTracks - a.outOfSyncTracks || byName(a, b),
  };
  return [...matching].sort(order[sort]);
}

/**
 * Per-pair detail: state, a copy progress bar by the data moved (while
 * copying), out-of-sync and target-changed tracks with their bytes, ETA; the primary's site for copy sets whose primary is another
 * agent (multi-primary async); a "not consistent" badge with the agent's
 * reason for a copy set whose target holds no consistent image (its initial
 * copy had not completed); a Remove action when `onRemove` is given.
 */
export function PairTable({
  pairs,
  h1Site,
  h2Site,
  direction = 'h1-h2',
  onRemove,
  removeReason = null,
}: {
  pairs: PairInfo[];
  h1Site: string;
  h2Site: string;
  /** After a failback (`h2-h1`) data flows from the H2 volumes to the H1 volumes: the arrows say so. */
  direction?: Direction;
  onRemove?: (pair: PairInfo) => void;
  /** Why this console's role may not remove a copy set (the Remove action shows disabled with it), else null. */
  removeReason?: string | null;
}) {
  const [query, setQuery] = useState('');
  const [sort, setSort] = useState<PairSort>('name');
  if (pairs.length === 0) return <Text size="sm" c="dimmed">No copy sets yet.</Text>;
  const tools = pairs.length > PAIR_TOOLS_FROM;
  // A few copy sets keep the agent's order; many get a search and a sort.
  const rows = tools ? arrangePairs(pairs, query, sort) : pairs;
  // Multi-primary: every copy set names its primary's site, the H1 site's own too.
  const primaries = [...new Set([h1Site, ...pairs.map((pair) => pair.primarySite ?? h1Site)])];
  const multiPrimary = primaries.length > 1;
  return (
    <>
      {tools && (
        <Group gap="sm" mb={4}>
          <TextInput size="xs" placeholder="volume, site or state" aria-label="Search copy sets" value={query} onChange={(event) => setQuery(event.currentTarget.value)} w={220} />
          <NativeSelect
            size="xs"
            aria-label="Sort copy sets"
            value={sort}
            onChange={(event) => setSort(event.currentTarget.value as PairSort)}
            data={[
              { value: 'name', label: 'By name' },
              { value: 'attention', label: 'Not duplex first' },
              { value: 'out-of-sync', label: 'Most out of sync first' },
            ]}
          />
          <Text size="xs" c="dimmed" data-testid="pairs-shown">
            {rows.length} of {pairs.length} copy sets
          </Text>
        </Group>
      )}
    {/* A narrow window scrolls the table sideways rather than squeezing the volume names into a letter-wide column. */}
    <Table.ScrollContainer minWidth={540} type="native">
      <Table striped withTableBorder fz="sm" verticalSpacing={4}>
        <Table.Thead>
          <Table.Tr>
            <Table.Th style={{ minWidth: '9rem' }}>
              Copy set
              <Text size="xs" c="dimmed" fw={400}>
                {direction === 'h1-h2' ? `H1 ${primaries.join(', ')} → H2 ${h2Site}` : `H2 ${h2Site} → H1 ${primaries.join(', ')}`}
              </Text>
            </Table.Th>
            <Table.Th>State</Table.Th>
            <Table.Th w="24%">Copy</Table.Th>
            <Table.Th ta="right" style={{ whiteSpace: 'nowrap' }}>
              Out of sync
            </Table.Th>
            <Table.Th ta="right" style={{ whiteSpace: 'nowrap' }}>
              Changed at target
            </Table.Th>
            <Table.Th ta="right">ETA</Table.Th>
            {onRemove && <Table.Th w={1} />}
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.map((pair) => {
            const share = copyShare(pair);
            return (
              <Table.Tr key={pair.id} data-testid={`pair-row-${pair.h1Volume}`}>
                <Table.Td>
                  {direction === 'h1-h2' ? `${pair.h1Volume} → ${pair.h2Volume}` : `${pair.h2Volume} → ${pair.h1Volume}`}
                  {multiPrimary && (
                    <Text size="xs" c="dimmed" data-testid="primary-site">
                      primary at {pair.primarySite ?? h1Site}
                    </Text>
                  )}
                </Table.Td>
                <Table.Td>
                  {/* A long reason (a full pool, a failed link) is the session's detail too: two lines here, all of it on hover. */}
                  <Text size="sm" c={pairColours[pair.state]} fw={500} lineClamp={2} title={pairStateText(pair)}>
                    {pairStateText(pair)}
                  </Text>
                  {pair.consistent === false && (
                    // The target volume is no usable image: said in words, not only on hover.
                    <div data-testid="pair-inconsistent">
                      <Badge color="red" variant="filled" size="sm">
                        not consistent
                      </Badge>
                      <Text size="xs" c="red">
                        {inconsistentReasonText(pair)}
                      </Text>
                    </div>
                  )}
                </Table.Td>
                <Table.Td>
                  {pair.state === 'defined' ? (
                    <Text size="sm" c="dimmed">
                      not started
                    </Text>
                  ) : share ? (
                    <Tooltip label={share.label}>
                      <div data-testid="copy-progress">
                        <Progress value={share.percent} color={pairColours[pair.state]} size="lg" animated aria-label={`${pair.h1Volume} copy progress`} />
                        <Text size="xs" c="dimmed">
                          {share.label}
                        </Text>
                      </div>
                    </Tooltip>
                  ) : (
                    <Text size="sm" c={pair.state === 'duplex' ? 'green' : 'dimmed'} data-testid="copy-status">
                      {syncText(pair)}
                    </Text>
                  )}
                </Table.Td>
                <Table.Td ta="right" data-testid="out-of-sync" data-tracks={pair.outOfSyncTracks} style={{ whiteSpace: 'nowrap' }}>
                  {tracksText(pair.outOfSyncTracks, pair.trackSize)}
                </Table.Td>
                <Table.Td ta="right" data-testid="target-changed" data-tracks={pair.targetChangedTracks} style={{ whiteSpace: 'nowrap' }}>
                  {tracksText(pair.targetChangedTracks, pair.trackSize)}
                </Table.Td>
                <Table.Td ta="right" style={{ whiteSpace: 'nowrap' }}>
                  {pair.state === 'syncing' ? formatSeconds(pair.etaSeconds) : '–'}
                </Table.Td>
                {onRemove && (
                  <Table.Td ta="right">
                    <RoleGated reason={removeReason}>
                      <Button size="compact-xs" variant="subtle" color="red" aria-label={`Remove copy set ${pair.h1Volume}`} onClick={() => onRemove(pair)}>
                        Remove
                      </Button>
                    </RoleGated>
                  </Table.Td>
                )}
              </Table.Tr>
            );
          })}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
    </>
  );
}
