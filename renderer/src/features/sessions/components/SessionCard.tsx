import { Alert, Badge, Button, Card, Group, SimpleGrid, Stack, Text, Title } from '@mantine/core';
import type { PairInfo } from '@tandem/contract';
import { useState } from 'react';
import { copySetsEditable } from '../hooks/copy-sets.ts';
import { availableActions, type ActionPlan } from '../hooks/session-actions.ts';
import { directionText, formatSeconds, formatTime, inconsistentPairs, inconsistentReasonText, primarySites, receivingSites, type MergedSession } from '../hooks/session-model.ts';
import { useSessionsUi } from '../hooks/sessions-ui-store.ts';
import { AddCopySetModal } from './AddCopySetModal.tsx';
import { ExposureChart } from './ExposureChart.tsx';
import { StateBadge } from './HealthBadge.tsx';
import { LastVerifySummary } from './LastVerifySummary.tsx';
import { PairTable } from './PairTable.tsx';
import { RemovePairModal } from './RemovePairModal.tsx';
import { ReportMenu } from './ReportMenu.tsx';
import { SessionActionModal } from './SessionActionModal.tsx';
import { SessionEventLog } from './SessionEventLog.tsx';
import { ShippingControls } from './ShippingControls.tsx';

function Fact({ label, value, testId }: { label: string; value: string; testId?: string }) {
  return (
    <div>
      <Text size="xs" c="dimmed">
        {label}
      </Text>
      <Text size="sm" fw={500} data-testid={testId}>
        {value}
      </Text>
    </div>
  );
}

/** One session: state with health, consistency time and exposure, per-pair detail, actions, reports and the event log. */
export function SessionCard({ entry }: { entry: MergedSession }) {
  const { session } = entry;
  const [pending, setPending] = useState<ActionPlan | null>(null);
  const [eventsOpen, setEventsOpen] = useState(false);
  const [adding, setAdding] = useState(false);
  const [removing, setRemoving] = useState<PairInfo | null>(null);
  const editable = copySetsEditable(session);
  const openFailback = useSessionsUi((state) => state.openFailback);
  const actions = availableActions(session);

  const choose = (plan: ActionPlan) => (plan.action === 'failback' ? openFailback(session.id) : setPending(plan));

  return (
    <Card withBorder padding="md" data-testid={`session-card-${session.name}`}>
      <Stack gap="sm">
        <Group justify="space-between" align="flex-start">
          <Stack gap={4}>
            <Group gap="xs">
              <Title order={4}>{session.name}</Title>
              <Badge variant="light">{session.type}</Badge>
              <Badge variant="outline" color="gray" data-testid="session-direction">
                {directionText(session)}
              </Badge>
            </Group>
            <StateBadge state={session.state} health={session.health} testId="session-state" />
            {session.direction === 'h2-h1' && (
              <Text size="sm" data-testid="production-site">
                Production runs at <b>{session.h2Site}</b> (the old secondary) since the failback; {receivingSites(session).join(', ')}{' '}
                {receivingSites(session).length === 1 ? 'receives' : 'receive'} its writes.
              </Text>
            )}
            {session.detail && (
              <Text size="xs" c="dimmed">
                {session.detail}
              </Text>
            )}
          </Stack>
          <ReportMenu siteId={entry.siteId} name={session.name} kind="session" />
        </Group>
        <SimpleGrid cols={{ base: 1, md: 2 }} spacing="md">
          <SimpleGrid cols={2} spacing="xs" verticalSpacing="xs">
            <Fact label="Consistency time" value={formatTime(session.consistencyTime)} testId="consistency-time" />
            <Fact label="Exposure" value={formatSeconds(session.exposureSeconds)} testId="exposure" />
            <Fact label="Sites" value={`H1 ${primarySites(session).join(', ')} · H2 ${session.h2Site}`} testId="session-sites" />
            <Fact label="Recoverable" value={session.recoverable ? 'yes' : 'no'} />
          </SimpleGrid>
          <ExposureChart entry={entry} />
        </SimpleGrid>
        {session.state === 'target-available' && inconsistentPairs(session).length > 0 && (
          <Alert color="red" p="xs" title="Not every copy is usable" data-testid="inconsistent-warning">
            {inconsistentPairs(session).map((pair) => (
              <Text key={pair.id} size="sm">
                {`Copy set ${pair.h1Volume} → ${pair.h2Volume} at ${session.h2Site}${pair.primarySite ? ` (primary at ${pair.primarySite})` : ''} was still in its initial copy when you failed over: ` +
                  `its target ${session.h2Site}:${pair.h2Volume} is not a consistent image (${inconsistentReasonText(pair)}). Do not rely on its data; a failback copies every track it may lack, without comparing codes.`}
              </Text>
            ))}
          </Alert>
        )}
        <ShippingControls entry={entry} />
        <LastVerifySummary session={session} />
        <PairTable pairs={session.pairs} h1Site={session.h1Site} h2Site={session.h2Site} direction={session.direction} onRemove={editable ? setRemoving : undefined} />
        <Group justify="space-between">
          <Group gap="xs">
            {editable && (
              <Button size="xs" variant="light" onClick={() => setAdding(true)}>
                Add copy set…
              </Button>
            )}
            {actions.map((plan) => (
              <Button key={plan.action} size="xs" color={plan.color} variant={plan.confirm === 'button' ? 'light' : 'outline'} onClick={() => choose(plan)}>
                {plan.label}
              </Button>
            ))}
          </Group>
          <Button size="xs" variant="subtle" onClick={() => setEventsOpen((open) => !open)} aria-expanded={eventsOpen}>
            {eventsOpen ? 'Hide events' : 'Show events'}
          </Button>
        </Group>
        {eventsOpen && (
            <SimpleGrid cols={{ base: 1, lg: entry.views.length }}>
              {entry.views.map((view) => (
                <Stack key={view.siteId} gap={4}>
                  <Text size="xs" fw={600}>
                    at {view.siteName}
                  </Text>
                  <SessionEventLog siteId={view.siteId} siteName={view.siteName} name={session.name} />
                </Stack>
              ))}
            </SimpleGrid>
        )}
      </Stack>
      {pending && <SessionActionModal entry={entry} plan={pending} onClose={() => setPending(null)} />}
      {adding && <AddCopySetModal entry={entry} onClose={() => setAdding(false)} />}
      {removing && <RemovePairModal entry={entry} pair={removing} onClose={() => setRemoving(null)} />}
    </Card>
  );
}
