import { Button, Group, Loader, Stack, Text, TextInput, Title } from '@mantine/core';
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

/** Flash copy sessions of every site, beside the mirror sessions; an unreachable site's are kept as last known, and the section says so. */
export function FlashSessionsSection() {
  const { sessions, sites, isLoading, error } = useAllFlashSessions({ live: true });
  const openWizard = useFlashUi((state) => state.openWizard);
  const allSites = useSites().data?.sites ?? [];
  const [query, setQuery] = useState('');
  const [limit, setLimit] = useState(FLASH_CARDS_PAGE);
  const matching = useMemo(() => filterFlashSessions(sessions, query), [sessions, query]);
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
