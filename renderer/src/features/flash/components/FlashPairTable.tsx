import { Progress, Table, Text, Tooltip } from '@mantine/core';
import type { FlashPairInfo, FlashSessionInfo } from '@tandem/contract';
import { formatSize } from '../../../lib/format.ts';
import { FlashStateBadge } from './FlashStateBadge.tsx';

const mirrorWords: Record<FlashPairInfo['mirror'], string> = {
  none: '',
  preserved: 'mirror preserved (the secondary flashed too)',
  shipped: 'changed tracks shipped to the mirror',
};

/** Per pair: source → target, state, copied tracks as a bar with percent, changed tracks (incremental). */
export function FlashPairTable({ session }: { session: FlashSessionInfo }) {
  const incremental = session.options.incremental;
  return (
    <Table striped withTableBorder fz="sm" verticalSpacing={4}>
      <Table.Thead>
        <Table.Tr>
          <Table.Th>Source → target</Table.Th>
          <Table.Th>State</Table.Th>
          <Table.Th w="32%">Copied to the target</Table.Th>
          {incremental && <Table.Th ta="right">Changed (source / target)</Table.Th>}
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {session.pairs.map((pair) => {
          const percent = Math.min(100, Math.max(0, pair.percent));
          return (
            <Table.Tr key={pair.id} data-testid={`flash-pair-${pair.target}`}>
              <Table.Td>
                <Text size="sm" fw={500}>
                  {pair.source} → {pair.target}
                </Text>
                {(pair.mirror !== 'none' || pair.remoteTarget) && (
                  <Text size="xs" c="dimmed">
                    {[mirrorWords[pair.mirror], pair.remoteTarget ? `also at the mirror site: ${pair.remoteTarget}` : ''].filter(Boolean).join(' · ')}
                  </Text>
                )}
              </Table.Td>
              <Table.Td>
                <FlashStateBadge state={pair.state} size="sm" />
                {pair.reason && (
                  <Text size="xs" c="orange">
                    {pair.reason}
                  </Text>
                )}
              </Table.Td>
              <Table.Td>
                <Tooltip label={`${pair.copiedTracks.toLocaleString()} of ${pair.totalTracks.toLocaleString()} tracks (${formatSize(pair.copiedTracks * pair.trackSize)} of ${formatSize(pair.totalTracks * pair.trackSize)})`}>
                  <div>
                    <Progress
                      value={percent}
                      size="lg"
                      color={percent >= 100 ? 'green' : 'blue'}
                      animated={session.options.backgroundCopy && pair.state === 'copying' && percent < 100}
                      aria-label={`${pair.target} copied`}
                    />
                    <Text size="xs" mt={2} data-testid="flash-pair-percent" data-percent={percent}>
                      {Math.floor(percent)} % · {pair.copiedTracks.toLocaleString()} / {pair.totalTracks.toLocaleString()} tracks
                    </Text>
                  </div>
                </Tooltip>
              </Table.Td>
              {incremental && (
                <Table.Td ta="right" data-testid="flash-pair-changed">
                  {pair.changedTracks ? `${pair.changedTracks.source} / ${pair.changedTracks.target}` : '–'}
                </Table.Td>
              )}
            </Table.Tr>
          );
        })}
      </Table.Tbody>
    </Table>
  );
}
