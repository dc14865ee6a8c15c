import { Badge, Button, Progress, Table, Text, Tooltip } from '@mantine/core';
import type { Direction, PairInfo } from '@tandem/contract';
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

/** Share of the volume in sync: the copy's own progress while syncing, else from the out-of-sync count. */
function syncedShare(pair: PairInfo): number {
  if (pair.syncedPercent !== null) return pair.syncedPercent;
  if (pair.trackCount === 0) return 100;
  return Math.max(0, 100 - (pair.outOfSyncTracks / pair.trackCount) * 100);
}

function pairStateText(pair: PairInfo): string {
  if (pair.state === 'syncing' && pair.syncedPercent !== null) return `syncing ${Math.floor(pair.syncedPercent)} %`;
  return pair.reason ? `${pair.state}: ${pair.reason}` : pair.state;
}

/**
 * Per-pair detail: state, a sync progress bar, out-of-sync and target-changed
 * counts, ETA; the primary's site for copy sets whose primary is another
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
}: {
  pairs: PairInfo[];
  h1Site: string;
  h2Site: string;
  /** After a failback (`h2-h1`) data flows from the H2 volumes to the H1 volumes: the arrows say so. */
  direction?: Direction;
  onRemove?: (pair: PairInfo) => void;
}) {
  if (pairs.length === 0) return <Text size="sm" c="dimmed">No copy sets yet.</Text>;
  // Multi-primary: every copy set names its primary's site, the H1 site's own too.
  const primaries = [...new Set([h1Site, ...pairs.map((pair) => pair.primarySite ?? h1Site)])];
  const multiPrimary = primaries.length > 1;
  return (
    // A narrow window scrolls the table sideways rather than squeezing the volume names into a letter-wide column.
    <Table.ScrollContainer minWidth={600} type="native">
      <Table striped withTableBorder fz="sm" verticalSpacing={4}>
        <Table.Thead>
          <Table.Tr>
            <Table.Th style={{ minWidth: '10rem' }}>
              {direction === 'h1-h2' ? `Copy set (H1 ${primaries.join(', ')} → H2 ${h2Site})` : `Copy set (H2 ${h2Site} → H1 ${primaries.join(', ')})`}
            </Table.Th>
            <Table.Th>State</Table.Th>
            <Table.Th w="28%">In sync</Table.Th>
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
          {pairs.map((pair) => {
            const share = syncedShare(pair);
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
                  <Text size="sm" c={pairColours[pair.state]} fw={500}>
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
                  ) : (
                    <Tooltip label={`${share.toFixed(1)} % of ${pair.trackCount} tracks in sync`}>
                      <Progress value={share} color={pairColours[pair.state]} size="lg" animated={pair.state === 'syncing'} aria-label={`${pair.h1Volume} in sync`} />
                    </Tooltip>
                  )}
                </Table.Td>
                <Table.Td ta="right" data-testid="out-of-sync">
                  {pair.outOfSyncTracks}
                </Table.Td>
                <Table.Td ta="right" data-testid="target-changed">
                  {pair.targetChangedTracks}
                </Table.Td>
                <Table.Td ta="right">{pair.state === 'syncing' ? formatSeconds(pair.etaSeconds) : '–'}</Table.Td>
                {onRemove && (
                  <Table.Td ta="right">
                    <Button size="compact-xs" variant="subtle" color="red" aria-label={`Remove copy set ${pair.h1Volume}`} onClick={() => onRemove(pair)}>
                      Remove
                    </Button>
                  </Table.Td>
                )}
              </Table.Tr>
            );
          })}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}
