import { Button, Checkbox, Group, Modal, NativeSelect, NumberInput, Stack, Text, TextInput } from '@mantine/core';
import { ClusterNameSchema } from '@tandem/contract';
import { useState } from 'react';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import type { MergedSession } from '../hooks/session-model.ts';
import { useConnectedSites, useCreateCluster, useJoinCluster } from '../hooks/use-sessions.ts';

/**
 * Create a cluster: its name, the site whose agent runs the processor and
 * keeps the master data set, how often it consolidates, and the sessions
 * that join it at once (each reported by the processor's site when it holds
 * the session, else by the session's H1 site over the peer link).
 */
export function CreateClusterModal({ sessions, onClose }: { sessions: MergedSession[]; onClose: () => void }) {
  const sites = useConnectedSites();
  const [name, setName] = useState('');
  const [chosenSite, setSite] = useState<string | null>(null);
  const siteId = chosenSite ?? sites[0]?.id ?? '';
  const processor = sites.find((site) => site.id === siteId);
  const [interval, setIntervalSeconds] = useState<number | string>(2);
  const [members, setMembers] = useState<string[]>([]);
  const create = useCreateCluster();
  const join = useJoinCluster();
  const [joinFailed, setJoinFailed] = useState<string | null>(null);
  const nameCheck = ClusterNameSchema.safeParse(name);
  const seconds = typeof interval === 'number' ? interval : Number(interval);
  const intervalOk = Number.isFinite(seconds) && seconds >= 0.05 && seconds <= 3600;
  const live = sessions.filter((entry) => entry.shown.reach.live);

  const submit = async () => {
    if (!processor) return;
    setJoinFailed(null);
    await create.mutateAsync({ siteId: processor.id, request: { name, intervalSeconds: seconds } });
    for (const sessionId of members) {
      const entry = live.find((each) => each.id === sessionId);
      if (!entry) continue;
      const { session } = entry;
      const site = processor.site === session.h1Site || processor.site === session.h2Site ? undefined : session.h1Site;
      try {
        await join.mutateAsync({ siteId: processor.id, cluster: name, request: { session: session.name, site } });
      } catch {
        setJoinFailed(session.name);
        return;
      }
    }
    onClose();
  };

  return (
    <Modal opened onClose={onClose} title="Create a cluster" size="lg">
      <Stack gap="sm">
        <TextInput
          label="Cluster name"
          value={name}
          onChange={(event) => setName(event.currentTarget.value)}
          error={name && !nameCheck.success ? nameCheck.error.issues[0]?.message : undefined}
          data-autofocus
        />
        <NativeSelect
          label="Processor site"
          description="Its agent gathers every member's state, consistency time and exposure and keeps the master data set."
          data={sites.map((site) => ({ value: site.id, label: `${site.site} (${site.address})` }))}
          value={siteId}
          onChange={(event) => setSite(event.currentTarget.value)}
        />
        <NumberInput label="Consolidate every (seconds)" min={0.05} max={3600} step={0.5} decimalScale={2} value={interval} onChange={setIntervalSeconds} error={intervalOk ? undefined : 'between 0.05 and 3600 s'} />
        {live.length > 0 && (
          <Checkbox.Group label="Members" description="Sessions that join at once (more can join later from their cards)." value={members} onChange={setMembers}>
            <Stack gap={4} mt={4}>
              {live.map((entry) => (
                <Checkbox key={entry.id} value={entry.id} label={`${entry.session.name} (${entry.session.h1Site} → ${entry.session.h2Site})`} />
              ))}
            </Stack>
          </Checkbox.Group>
        )}
        {create.error && <ProblemAlert error={create.error} title="The cluster was not created" />}
        {joinFailed && join.error && <ProblemAlert error={join.error} title={`The cluster was created, but ${joinFailed} did not join it`} />}
        {joinFailed && (
          <Text size="sm" c="dimmed">
            Add the remaining sessions from their cards (Cluster… on each session).
          </Text>
        )}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            {joinFailed ? 'Close' : 'Cancel'}
          </Button>
          {!joinFailed && (
            <Button disabled={!nameCheck.success || !processor || !intervalOk} loading={create.isPending || join.isPending} onClick={() => void submit().catch(() => undefined)}>
              Create cluster
            </Button>
          )}
        </Group>
      </Stack>
    </Modal>
  );
}
