import { Alert, Button, Group, Modal, Stack, Table, Text } from '@mantine/core';
import { formatSize } from '../../../lib/format.ts';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { sourceSite, targetSite, type MergedSession } from '../hooks/session-model.ts';
import { useVerify } from '../hooks/use-sessions.ts';

/**
 * Verify on request: the agents compare the segment codes of every track at
 * both sites while writes go on; a differing track is marked and copied
 * again. The result (also kept as the session's last verify) per copy set.
 */
export function VerifyModal({ entry, onClose }: { entry: MergedSession; onClose: () => void }) {
  const { session } = entry;
  const verify = useVerify();
  const report = verify.data;
  const trackSizeOf = (pairId: string) => session.pairs.find((pair) => pair.id === pairId)?.trackSize ?? 0;
  return (
    <Modal opened onClose={onClose} title={`Verify ${session.name}`} size="lg">
      <Stack gap="sm">
        <Text size="sm" data-testid="verify-consequence">
          Compares the segment codes of every track of the {session.pairs.length} copy set{session.pairs.length === 1 ? '' : 's'} at {sourceSite(session)} and {targetSite(session)}, while
          writes go on. Nothing is copied unless a track differs: then it is marked out of sync and copied again, and the session resyncs.
        </Text>
        {verify.error && <ProblemAlert error={verify.error} title="Verify did not run" />}
        {report && (
          <Alert color={report.differingTracks === 0 && report.unverifiedTracks === 0 ? 'green' : 'orange'} title={report.differingTracks === 0 ? 'Both sites hold the same data' : 'Differences found'}>
            <Text size="sm" data-testid="verify-summary">
              {report.comparedTracks.toLocaleString('en-US')} tracks compared, {report.differingTracks.toLocaleString('en-US')} differing, {report.unverifiedTracks.toLocaleString('en-US')} unverified (busy
              with writes){report.resyncStarted ? '; the differing tracks are being copied again.' : '.'}
            </Text>
          </Alert>
        )}
        {report && (
          <Table fz="xs" withTableBorder data-testid="verify-pairs">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Copy set</Table.Th>
                <Table.Th ta="right">Compared</Table.Th>
                <Table.Th ta="right">Differing</Table.Th>
                <Table.Th ta="right">Unverified</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {report.pairs.map((pair) => (
                <Table.Tr key={pair.pair}>
                  <Table.Td>
                    {pair.h1Volume} ⇄ {pair.h2Volume}
                    {pair.primarySite ? ` (primary at ${pair.primarySite})` : ''}
                  </Table.Td>
                  <Table.Td ta="right">{pair.comparedTracks.toLocaleString('en-US')}</Table.Td>
                  <Table.Td ta="right">
                    {pair.differingCount.toLocaleString('en-US')} ({formatSize(pair.differingCount * trackSizeOf(pair.pair))})
                  </Table.Td>
                  <Table.Td ta="right">{pair.unverifiedCount.toLocaleString('en-US')}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            {report ? 'Close' : 'Cancel'}
          </Button>
          {!report && (
            <Button loading={verify.isPending} onClick={() => verify.mutate({ siteId: entry.siteId, name: session.name })}>
              Verify now
            </Button>
          )}
        </Group>
      </Stack>
    </Modal>
  );
}
