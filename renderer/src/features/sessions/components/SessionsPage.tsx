import { Alert, Button, Divider, Group, Loader, NativeSelect, SegmentedControl, Stack, Text, TextInput, Title } from '@mantine/core';
import { useMemo, useState } from 'react';
import { useUiStore } from '../../../app/ui-store.ts';
import { RoleGated } from '../../../components/RoleGated.tsx';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { everySiteReason } from '../../sites/hooks/site-access.ts';
import { formatClock } from '../../../lib/site-reach.ts';
import { FlashSessionsSection } from '../../flash/components/FlashSessionsSection.tsx';
import { FlashWizardHost } from '../../flash/components/FlashWizardHost.tsx';
import { SiteGapNotice } from '../../sites/components/SiteGapNotice.tsx';
import { filterSessions, limitGroups, SESSION_CARDS_PAGE, sortSessions, type SessionShow, type SessionSort } from '../hooks/session-filter.ts';
import { groupByCluster } from '../hooks/session-model.ts';
import { useSessionsUi } from '../hooks/sessions-ui-store.ts';
import { useAllSessions, useConnectedSites } from '../hooks/use-sessions.ts';
import { ClusterHeader } from './ClusterHeader.tsx';
import { CreateClusterModal } from './CreateClusterModal.tsx';
import { CreateSessionWizard } from './CreateSessionWizard.tsx';
import { FailbackWizard } from './FailbackWizard.tsx';
import { SessionCard } from './SessionCard.tsx';

/**
 * Every mirroring session the console knows, grouped by cluster (master data
 * set), then those in no cluster. A site the console cannot reach keeps what
 * it reported last, marked unknown since then, and every section says what
 * it lacks from that site and why.
 */
export function SessionsPage() {
  const sites = useConnectedSites();
  const { sessions, clusters, sites: known, isLoading, error } = useAllSessions({ live: true });
  const { createWizardOpen, setCreateWizardOpen, failbackOpen, openFailback } = useSessionsUi();
  const focusedSession = useUiStore((state) => state.focusedSession);
  const [creatingCluster, setCreatingCluster] = useState(false);
  const [query, setQuery] = useState('');
  const [show, setShow] = useState<SessionShow>('all');
  const [limit, setLimit] = useState(SESSION_CARDS_PAGE);
  const [sort, setSort] = useState<SessionSort>('name');
  // A thousand cards at once would stall the console: search, the attention filter and pages of cards keep it quick.
  const filtering = query.trim() !== '' || show !== 'all';
  const filtered = useMemo(() => sortSessions(filterSessions(sessions, { query, show }), sort), [sessions, query, show, sort]);
  const { groups, hidden } = useMemo(() => {
    // While filtering, a cluster none of whose members matches is left out (unfiltered, an empty cluster says so).
    const all = groupByCluster(filtered, clusters).filter((group) => !filtering || group.sessions.length > 0);
    return limitGroups(all, limit);
  }, [filtered, clusters, limit, filtering]);
  const anyFailback = sessions.some((entry) => entry.shown.reach.live && entry.session.state === 'target-available');
  const unreachable = known.filter((each) => !each.reach.live);

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Sessions</Title>
        <Group gap="xs">
          <RoleGated reason={everySiteReason(sites, 'POST /v1/sessions/:name/actions/:action')}>
            <Button variant="default" disabled={!anyFailback} onClick={() => openFailback(null)}>
              Failback…
            </Button>
          </RoleGated>
          <RoleGated reason={everySiteReason(sites, 'POST /v1/clusters')}>
            <Button variant="default" onClick={() => setCreatingCluster(true)} disabled={sites.length === 0}>
              Create cluster…
            </Button>
          </RoleGated>
          <RoleGated reason={everySiteReason(sites, 'POST /v1/sessions')}>
            <Button onClick={() => setCreateWizardOpen(true)} disabled={sites.length < 2}>
              Create session…
            </Button>
          </RoleGated>
        </Group>
      </Group>
      {unreachable.map(({ site, reach, receivedAt, sessions: count }) => (
        <Alert key={site.id} color="orange" p="xs" title={`${site.site} does not answer the console since ${formatClock(reach.unknownSince)}`} data-testid={`site-unreachable-${site.site}`}>
          <SiteGapNotice site={site} reach={reach} count={count} receivedAt={receivedAt} noun="sessions" testId={`session-gap-${site.site}`} />
        </Alert>
      ))}
      {known.length < 2 && !isLoading && (
        <Alert color="blue" title="Two sites are needed">
          <Text size="sm">Mirroring runs between two connected sites. Connect another site to create a session.</Text>
        </Alert>
      )}
      {error && <ProblemAlert error={error} title="Some sessions could not be read" />}
      {sessions.length > 0 && (
        <Group gap="sm" align="flex-end" data-testid="sessions-filter">
          <TextInput
            label="Search sessions"
            placeholder="name, site or volume"
            value={query}
            onChange={(event) => {
              setQuery(event.currentTarget.value);
              setLimit(SESSION_CARDS_PAGE);
            }}
            w={260}
          />
          <SegmentedControl
            aria-label="Which sessions"
            value={show}
            onChange={(value) => {
              setShow(value as SessionShow);
              setLimit(SESSION_CARDS_PAGE);
            }}
            data={[
              { value: 'all', label: 'All' },
              { value: 'attention', label: 'Needs attention' },
            ]}
          />
          <NativeSelect
            label="Order in each cluster"
            value={sort}
            onChange={(event) => setSort(event.currentTarget.value as SessionSort)}
            data={[
              { value: 'name', label: 'By name' },
              { value: 'attention', label: 'Needing attention first' },
              { value: 'exposure', label: 'Most exposed first' },
            ]}
          />
          <Text size="sm" c="dimmed" data-testid="sessions-shown">
            {filtered.length - hidden} of {sessions.length} shown
          </Text>
        </Group>
      )}
      {isLoading && <Loader />}
      {!isLoading && sessions.length > 0 && filtered.length === 0 && (
        <Text c="dimmed" data-testid="sessions-none-match">
          {show === 'attention' && query.trim() === '' ? 'Every session is Prepared and normal.' : 'No session matches the search.'}
        </Text>
      )}
      {!isLoading && sessions.length === 0 && (
        <Text c="dimmed" data-testid="sessions-empty">
          No sessions yet. Create session… mirrors volumes of one site to another.
        </Text>
      )}
      {unreachable.length > 0 && (
        <Stack gap={2} data-testid="cluster-gaps">
          {unreachable.map(({ site, reach, receivedAt, clusters: count }) => (
            <SiteGapNotice key={site.id} site={site} reach={reach} count={count} receivedAt={receivedAt} noun="clusters" testId={`cluster-gap-${site.site}`} brief />
          ))}
        </Stack>
      )}
      {groups.map((group) => (
        <Stack key={group.key} gap="sm">
          {group.cluster ? <ClusterHeader entry={group.cluster} /> : groups.length > 1 && <Title order={3}>No cluster</Title>}
          {group.sessions.map((entry) => (
            <SessionCard key={entry.id} entry={entry} cluster={group.cluster} clusters={clusters} focused={entry.session.name === focusedSession} />
          ))}
          {group.cluster && group.sessions.length === 0 && (
            <Text size="sm" c="dimmed">
              None of this cluster's members is at a site this console knows.
            </Text>
          )}
          <Divider />
        </Stack>
      ))}
      {hidden > 0 && (
        <Group gap="sm">
          <Button variant="default" onClick={() => setLimit((current) => current + SESSION_CARDS_PAGE)}>
            Show {Math.min(hidden, SESSION_CARDS_PAGE)} more
          </Button>
          <Text size="sm" c="dimmed">
            {hidden} more session{hidden === 1 ? '' : 's'}{filtering ? ' match' : ''}: search narrows the list.
          </Text>
        </Group>
      )}
      <FlashSessionsSection />
      {createWizardOpen && <CreateSessionWizard onClose={() => setCreateWizardOpen(false)} />}
      {creatingCluster && <CreateClusterModal sessions={sessions} onClose={() => setCreatingCluster(false)} />}
      <FlashWizardHost />
      {failbackOpen && <FailbackWizard sessions={sessions} />}
    </Stack>
  );
}
