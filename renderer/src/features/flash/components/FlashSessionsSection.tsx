import { Button, Group, Loader, NativeSelect, Stack, Text, TextInput, Title } from '@mantine/core';
import { useMemo, useState } from 'react';
import { RoleGated } from '../../../components/RoleGated.tsx';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { everySiteReason } from '../../sites/hooks/site-access.ts';
import { useSites } from '../../sites/hooks/use-sites.ts';
import { SiteGapNotice } from '../../sites/components/SiteGapNotice.tsx';
import { useFlashUi } from '../hooks/flash-ui-store.ts';
import { useAllFlashSessions, type SiteFlashSession } from '../hooks/use-flash.ts';
import { FlashSessionCard } from './FlashSessionCard.tsx';

/** At most this many flash cards are drawn at first; "Show more" adds as many again. */
export const FLASH_CARDS_PAGE = 20;

/** The flash sessions whose name, site, state or any source or target volume holds every word of `query` (any case). */
export function filterFlashSessions(entries: SiteFlashSession[], query: string): SiteFlashSession[] {
  const words = query.trim().toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return entries;
  return entries.filter(({ siteName, session }) => {
    const text = [session.name, siteName, session.state, ...session.pairs.flatMap((pair) => [pair.source, pair.target])].join(' ').toLowerCase();
    return words.every((word) => text.includes(word));
  });
}

/** How the flash cards are ordered: by name, needing attention first, least copied first, or newest point in time first. */
export type FlashSort = 'name' | 'attention' | 'progress' | 'newest';

/** Suspended, preparing or stopping sessions (and any pair not as its session is) before the rest. */
function flashNeedsAttention({ session }: SiteFlashSession): boolean {
  return ['suspended', 'preparing', 'prepared', 'stopping'].includes(session.state) || session.pairs.some((pair) => pair.reason !== null);
}

/** The share of all target tracks copied, 0..1 (a session without pairs counts as copied). */
function copiedShare({ session }: SiteFlashSession): number {
  const total = session.pairs.reduce((sum, pair) => sum + pair.totalTracks, 0);
  return total === 0 ? 1 : session.pairs.reduce((sum, pair) => sum + pair.copiedTracks, 0) / total;
}

export function sortFlashSessions(entries: SiteFlashSession[], sort: FlashSort): SiteFlashSession[] {
  const byName = (a: SiteFlashSession, b: SiteFlashSession) => a.session.name.localeCompare(b.session.name) || a.siteName.localeCompare(b.siteName);
  // A session never established (no point in time) comes after every dated one.
  const time = (entry: SiteFlashSession) => (entry.session.pointInTime ? Date.parse(entry.session.pointInTime) : -Infinity);
  const order: Record<FlashSort, (a: SiteFlashSession, b: SiteFlashSession) => number> = {
    name: byName,
    attention: (a, b) => Number(flashNeedsAttention(b)) - Number(flashNeedsAttention(a)) || byName(a, b),
    progress: (a, b) => copiedShare(a) - copiedShare(b) || byName(a, b),
    newest: (a, b) => time(b) - time(a) || byName(a, b),
  };
  return [...entries].sort(order[sort]);
}

/** Flash copy sessions of every site, beside the mirror sessions; an unreachable site's are kept as last known, and the section says so. */
export function FlashSessionsSection() {
  const { sessions, sites, isLoading, error } = useAllFlashSessions({ live: true });
  const openWizard = useFlashUi((state) => state.openWizard);
  const allSites = useSites().data?.sites ?? [];
  const [query, setQuery] = useState('');
  const [sort, setSort] = useState<FlashSort>('name');
  const [limit, setLimit] = useState(FLASH_CARDS_PAGE);
  const matching = useMemo(() => sortFlashSessions(filterFlashSessions(sessions, query), sort), [sessions, query, sort]);
  const shown = matching.slice(0, limit);
  return (
    <Stack gap="sm" data-testid="flash-sessions">
      <Group justify="space-between">
        <Title order={3}>Flash copy</Title>
        <RoleGated reason={everySiteReason(allSites, 'POST /v1/flash-sessions')}>
          <Button variant="light" onClick={() => openWizard()}>
            Flash copy…
          </Button>
        </RoleGated>
      </Group>
      {error && <ProblemAlert error={error} title="Some flash sessions could not be read" />}
      {sites.map(({ site, reach, receivedAt, count }) => (
        <SiteGapNotice key={site.id} site={site} reach={reach} count={count} receivedAt={receivedAt} noun="flash copies" testId={`flash-gap-${site.site}`} brief />
      ))}
      {isLoading && <Loader size="sm" />}
      {!isLoading && sessions.length === 0 && (
        <Text c="dimmed" size="sm" data-testid="flash-empty">
          No flash copies yet. Flash copy… makes a point-in-time copy of volumes onto other volumes of the same site, usable at once.
        </Text>
      )}
      {sessions.length > 0 && (
        <Group gap="sm">
          <TextInput
            size="xs"
            placeholder="name, site or volume"
            aria-label="Search flash copies"
            value={query}
            onChange={(event) => {
              setQuery(event.currentTarget.value);
              setLimit(FLASH_CARDS_PAGE);
            }}
            w={240}
          />
          <NativeSelect
            size="xs"
            aria-label="Order flash copies"
            value={sort}
            onChange={(event) => setSort(event.currentTarget.value as FlashSort)}
            data={[
              { value: 'name', label: 'By name' },
              { value: 'attention', label: 'Needing attention first' },
              { value: 'progress', label: 'Least copied first' },
              { value: 'newest', label: 'Newest point in time first' },
            ]}
          />
          <Text size="xs" c="dimmed" data-testid="flash-shown">
            {shown.length} of {sessions.length} shown
          </Text>
        </Group>
      )}
      {sessions.length > 0 && matching.length === 0 && (
        <Text c="dimmed" size="sm">
          No flash copy matches the search.
        </Text>
      )}
      {shown.map((entry) => (
        <FlashSessionCard key={`${entry.siteId}/${entry.session.name}`} entry={entry} />
      ))}
      {matching.length > shown.length && (
        <Group>
          <Button variant="default" size="xs" onClick={() => setLimit((current) => current + FLASH_CARDS_PAGE)}>
            Show {Math.min(FLASH_CARDS_PAGE, matching.length - shown.length)} more
          </Button>
        </Group>
      )}
    </Stack>
  );
}
