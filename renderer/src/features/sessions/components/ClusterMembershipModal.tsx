import { Button, Group, Modal, NativeSelect, Stack, Text } from '@mantine/core';
import { useState } from 'react';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import type { MergedSession, SiteCluster } from '../hooks/session-model.ts';
import { useJoinCluster, useLeaveCluster } from '../hooks/use-sessions.ts';

/**
 * The site whose agent reports a session to a cluster's processor: the
 * processor's own site when it holds the session (no `site` then), else the
 * session's H1 site (its agent must be paired with the processor's).
 */
export function reportingSite(entry: MergedSession, cluster: SiteCluster): string | undefined {
  const { session } = entry;
  const processor = cluster.cluster.processorSite;
  return processor === session.h1Site || processor === session.h2Site ? undefined : session.h1Site;
}

/** A session joins a cluster (chosen among the live ones it is not in). */
export function JoinClusterModal({ entry, clusters, onClose }: { entry: MergedSession; clusters: SiteCluster[]; onClose: () => void }) {
  const { session } = entry;
  const choices = clusters.filter((each) => each.reach.live);
  const [chosen, setChosen] = useState(choices[0] ? `${choices[0].siteId}/${choices[0].cluster.name}` : '');
  const cluster = choices.find((each) => `${each.siteId}/${each.cluster.name}` === chosen);
  const join = useJoinCluster();
  const site = cluster ? reportingSite(entry, cluster) : undefined;
  return (
    <Modal opened onClose={onClose} title={`Add ${session.name} to a cluster`}>
      <Stack gap="sm">
        {choices.length === 0 ? (
          <Text size="sm" c="dimmed">
            No cluster is defined at a site the console reaches. Create one first (Create cluster…).
          </Text>
        ) : (
          <NativeSelect
            label="Cluster"
            data={choices.map((each) => ({ value: `${each.siteId}/${each.cluster.name}`, label: `${each.cluster.name} (processor at ${each.cluster.processorSite})` }))}
            value={chosen}
            onChange={(event) => setChosen(event.currentTarget.value)}
          />
        )}
        {cluster && (
          <Text size="sm" data-testid="join-consequence">
            The processor at {cluster.cluster.processorSite} consolidates {session.name}'s state, consistency time and exposure into the master data set every{' '}
            {cluster.cluster.intervalSeconds} s{site ? `, asking ${site} over the peer link` : ''}. The session itself is not changed.
          </Text>
        )}
        {join.error && <ProblemAlert error={join.error} title={`${session.name} did not join the cluster`} />}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button
            disabled={!cluster}
            loading={join.isPending}
            onClick={() => cluster && join.mutate({ siteId: cluster.siteId, cluster: cluster.cluster.name, request: { session: session.name, site } }, { onSuccess: onClose })}
          >
            Add to {cluster?.cluster.name ?? 'cluster'}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}

/** A session leaves its cluster. */
export function LeaveClusterModal({ entry, cluster, onClose }: { entry: MergedSession; cluster: SiteCluster; onClose: () => void }) {
  const { session } = entry;
  const leave = useLeaveCluster();
  const member = cluster.cluster.members.find((each) => each.sessionId === session.id);
  return (
    <Modal opened onClose={onClose} title={`Remove ${session.name} from cluster ${cluster.cluster.name}?`}>
      <Stack gap="sm">
        <Text size="sm" data-testid="leave-consequence">
          The cluster's consistency time, health and exposure no longer include {session.name}; its master data set keeps the records written so far. The session itself goes on
          unchanged.
        </Text>
        {!cluster.reach.live && (
          <Text size="sm" c="orange">
            {cluster.siteName} (the processor's site) is not reachable now; the cluster can change only at its processor.
          </Text>
        )}
        {leave.error && <ProblemAlert error={leave.error} title={`${session.name} did not leave the cluster`} />}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button
            color="red"
            disabled={!cluster.reach.live}
            loading={leave.isPending}
            onClick={() =>
              leave.mutate(
                { siteId: cluster.siteId, cluster: cluster.cluster.name, session: session.name, memberSite: member && !member.local ? member.site : undefined },
                { onSuccess: onClose },
              )
            }
          >
            Remove from {cluster.cluster.name}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
