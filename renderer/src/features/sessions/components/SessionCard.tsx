import { Alert, Badge, Button, Card, Group, SimpleGrid, Stack, Text, Title } from '@mantine/core';
import type { PairInfo } from '@tandem/contract';
import { useEffect, useRef, useState } from 'react';
import { RoleGated, RoleNote } from '../../../components/RoleGated.tsx';
import { formatAge, withClockTimes } from '../../../lib/site-reach.ts';
import { useSiteAccess } from '../../sites/hooks/site-access.ts';
import { useNow } from '../../../lib/use-now.ts';
import { copySetsEditable } from '../hooks/copy-sets.ts';
import { availableActions, isAllowed, type ActionPlan } from '../hooks/session-actions.ts';
import {
  directionText,
  formatSeconds,
  formatTime,
  inconsistentPairs,
  inconsistentReasonText,
  primarySites,
  receivingSites,
  type MergedSession,
  type SiteCluster,
} from '../hooks/session-model.ts';
import { recoverableText, sessionTrust } from '../hooks/session-trust.ts';
import { useSessionsUi } from '../hooks/sessions-ui-store.ts';
import { AddCopySetModal } from './AddCopySetModal.tsx';
import { JoinClusterModal, LeaveClusterModal } from './ClusterMembershipModal.tsx';
import { ExposureChart } from './ExposureChart.tsx';
import { StateBadge } from './HealthBadge.tsx';
import { LastVerifySummary } from './LastVerifySummary.tsx';
import { PairTable } from './PairTable.tsx';
import { RemovePairModal } from './RemovePairModal.tsx';
import { ReportMenu } from './ReportMenu.tsx';
import { SessionActionModal } from './SessionActionModal.tsx';
import { SessionEventLog } from './SessionEventLog.tsx';
import { SessionProvenance } from './SessionProvenance.tsx';
import { AlertThresholdsModal } from '../../alerts/components/AlertThresholdsModal.tsx';
import { ProtectionSection } from '../../protection/components/ProtectionSection.tsx';
import { ShippingControls } from './ShippingControls.tsx';
import { VerifyModal } from './VerifyModal.tsx';

function Fact({ label, value, testId, note }: { label: string; value: string; testId?: string; note?: string | null }) {
  return (
    <div>
      <Text size="xs" c="dimmed">
        {label}
      </Text>
      <Text size="sm" fw={500} data-testid={testId}>
        {value}
      </Text>
      {note && (
        <Text size="xs" c="dimmed" data-testid={testId ? `${testId}-note` : undefined}>
          {note}
        </Text>
      )}
    </div>
  );
}

/**
 * One session: state with health (and where it comes from, how old it is),
 * consistency time and exposure, per-pair detail, actions, cluster
 * membership, reports and the event log. A session whose every view is only
 * last known keeps its data, marked unknown, with its actions off.
 */
export function SessionCard({
  entry,
  cluster = null,
  clusters = [],
  focused = false,
}: {
  entry: MergedSession;
  /** The cluster the session is in, if any. */
  cluster?: SiteCluster | null;
  /** Every cluster known, to join one. */
  clusters?: SiteCluster[];
  /** Reached by its URL: scrolled into view and marked. */
  focused?: boolean;
}) {
  const { session } = entry;
  const [pending, setPending] = useState<ActionPlan | null>(null);
  const [eventsOpen, setEventsOpen] = useState(false);
  const [protectionOpen, setProtectionOpen] = useState(false);
  const [adding, setAdding] = useState(false);
  const [verifying, setVerifying] = useState(false);
  const [thresholdsOpen, setThresholdsOpen] = useState(false);
  const [membership, setMembership] = useState<'join' | 'leave' | null>(null);
  const [removing, setRemoving] = useState<PairInfo | null>(null);
  const trust = sessionTrust(entry);
  const now = useNow();
  // Actions go to entry.siteId (the agent forwards them): the console's role there decides what it may do.
  const access = useSiteAccess(entry.siteId);
  const actionsReason = access.reason('POST /v1/sessions/:name/actions/:action');
  const editable = trust.live && copySetsEditable(session);
  const openFailback = useSessionsUi((state) => state.openFailback);
  const actions = trust.live ? availableActions(session) : [];
  const recoverable = recoverableText(session);
  const card = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (focused) card.current?.scrollIntoView?.({ block: 'start' });
  }, [focused]);
  // A last-known view's exposure only grows: at least what it was plus the time since.
  const exposure = trust.live || session.exposureSeconds === null ? formatSeconds(session.exposureSeconds) : `at least ${formatSeconds(session.exposureSeconds + Math.max(0, now - trust.receivedAt) / 1000)}`;

  const choose = (plan: ActionPlan) => (plan.action === 'failback' ? openFailback(session.id) : setPending(plan));

  return (
    <Card withBorder padding="md" data-testid={`session-card-${session.name}`} ref={card} style={focused ? { outline: '2px solid var(--mantine-color-blue-5)' } : undefined}>
      <Stack gap="sm">
        <Group justify="space-between" align="flex-start" wrap="nowrap">
          <Stack gap={4} style={{ minWidth: 0 }}>
            <Group gap="xs">
              <Title order={4}>{session.name}</Title>
              <Badge variant="light">{session.type}</Badge>
              <Badge variant="outline" color="gray" data-testid="session-direction" tt="none">
                {directionText(session)}
              </Badge>
              {cluster && (
                <Badge variant="outline" color="indigo" tt="none" data-testid="session-cluster">
                  cluster {cluster.cluster.name}
                </Badge>
              )}
            </Group>
            <StateBadge state={trust.live ? session.state : 'unknown'} health={trust.health} testId="session-state" />
            <SessionProvenance entry={entry} trust={trust} />
            {session.direction === 'h2-h1' && (
              <Text size="sm" data-testid="production-site">
                Production runs at <b>{session.h2Site}</b> (the old secondary) since the failback; {receivingSites(session).join(', ')}{' '}
                {receivingSites(session).length === 1 ? 'receives' : 'receive'} its writes.
              </Text>
            )}
            {session.detail && (
              // What went wrong and what to do: in the health's colour while it is not normal, not dimmed away.
              <Text size="sm" c={trust.health === 'severe' ? 'red' : trust.health === 'warning' ? 'orange' : 'dimmed'} data-testid="session-detail">
                {withClockTimes(session.detail)}
              </Text>
            )}
          </Stack>
          <ReportMenu siteId={entry.siteId} name={session.name} kind="session" />
        </Group>
        <SimpleGrid cols={{ base: 1, lg: 2 }} spacing="md">
          <SimpleGrid cols={2} spacing="xs" verticalSpacing="xs">
            <Fact label="Consistency time" value={formatTime(session.consistencyTime)} testId="consistency-time" note={trust.live ? null : 'last known'} />
            <Fact label="Exposure" value={exposure} testId="exposure" note={trust.live ? null : `last reported ${formatAge(now - trust.receivedAt)}`} />
            <Fact label="Sites" value={`H1 ${primarySites(session).join(', ')} · H2 ${session.h2Site}`} testId="session-sites" />
            <Fact label="Recoverable" value={trust.live ? recoverable.value : `${recoverable.value} (last known)`} testId="recoverable" note={recoverable.why} />
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
        <PairTable
          pairs={session.pairs}
          h1Site={session.h1Site}
          h2Site={session.h2Site}
          direction={session.direction}
          onRemove={editable ? setRemoving : undefined}
          removeReason={access.reason('DELETE /v1/sessions/:name/pairs/:volume')}
        />
        <Group justify="space-between">
          {/* A role that may take none of the session's actions (monitor) sees why instead of a row of dead buttons. */}
          {actionsReason && trust.live ? (
            <RoleNote>{`Session actions (start, suspend, failover, failback, verify, clusters) are not offered. ${actionsReason}`}</RoleNote>
          ) : (
            <Group gap="xs">
              {trust.live && session.state === 'prepared' && (
                <Button size="xs" variant="light" onClick={() => setVerifying(true)}>
                  Verify…
                </Button>
              )}
              {editable && (
                <RoleGated reason={access.reason('POST /v1/sessions/:name/pairs')}>
                  <Button size="xs" variant="light" onClick={() => setAdding(true)}>
                    Add copy set…
                  </Button>
                </RoleGated>
              )}
              {actions.map((plan) => (
                <Button key={plan.action} size="xs" color={plan.color} variant={plan.confirm === 'button' ? 'light' : 'outline'} onClick={() => choose(plan)}>
                  {plan.label}
                </Button>
              ))}
            </Group>
          )}
          <Group gap="xs">
            {actionsReason ? null : cluster ? (
              <Button size="xs" variant="subtle" onClick={() => setMembership('leave')}>
                Leave cluster {cluster.cluster.name}…
              </Button>
            ) : (
              trust.live &&
              clusters.length > 0 && (
                <Button size="xs" variant="subtle" onClick={() => setMembership('join')}>
                  Add to cluster…
                </Button>
              )
            )}
            {trust.live && (
              <RoleGated reason={access.reason('PUT /v1/sessions/:name/alert-thresholds')}>
                <Button size="xs" variant="subtle" onClick={() => setThresholdsOpen(true)}>
                  Alert thresholds…
                </Button>
              </RoleGated>
            )}
            <Button size="xs" variant="subtle" onClick={() => setProtectionOpen((open) => !open)} aria-expanded={protectionOpen}>
              {protectionOpen ? 'Hide protection' : 'Protection'}
            </Button>
            <Button size="xs" variant="subtle" onClick={() => setEventsOpen((open) => !open)} aria-expanded={eventsOpen}>
              {eventsOpen ? 'Hide events' : 'Show events'}
            </Button>
          </Group>
        </Group>
        {!trust.live && (
          <Text size="xs" c="dimmed">
            Actions come back when a site of this session answers again.
          </Text>
        )}
        {protectionOpen && (
          // Mounted only while open: a page of cards fetches no journals.
          <ProtectionSection
            session={session.name}
            h2Site={session.h2Site}
            viewSiteIds={entry.views.map((view) => view.siteId)}
            recover={{ allowed: trust.live && isAllowed(session, 'recover'), primarySites: primarySites(session).join(', '), onFailback: () => openFailback(session.id) }}
          />
        )}
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
      {verifying && <VerifyModal entry={entry} onClose={() => setVerifying(false)} />}
      {thresholdsOpen && (
        <AlertThresholdsModal
          session={session.name}
          sites={[entry.shown, ...entry.views.filter((view) => view !== entry.shown)].map((view) => ({ siteId: view.siteId, siteName: view.siteName }))}
          onClose={() => setThresholdsOpen(false)}
        />
      )}
      {membership === 'join' && <JoinClusterModal entry={entry} clusters={clusters} onClose={() => setMembership(null)} />}
      {membership === 'leave' && cluster && <LeaveClusterModal entry={entry} cluster={cluster} onClose={() => setMembership(null)} />}
    </Card>
  );
}
