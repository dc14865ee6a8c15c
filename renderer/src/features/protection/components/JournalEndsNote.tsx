import { Alert, Text } from '@mantine/core';
import { useSites } from '../../sites/hooks/use-sites.ts';
import { plural } from './JournalModals.tsx';
import { secondarySite, useJournal } from '../hooks/use-journal.ts';

/**
 * In a plain failover's confirmation: a session whose target keeps a journal
 * loses it with the failover (the replica takes host writes from then on), so
 * the administrator is told what goes, and where to fail over to an earlier
 * point instead. Fetched only while the confirmation is open; nothing is
 * shown when the target has no journal or cannot be asked.
 */
export function JournalEndsNote({ session, targetSite, viewSiteIds }: { session: string; targetSite: string; viewSiteIds: string[] }) {
  const sites = useSites();
  const site = secondarySite(targetSite, sites.data?.sites ?? [], viewSiteIds);
  const journal = useJournal(site?.id ?? null, session, site?.connection.state === 'connected');
  const view = journal.data;
  if (!view) return null;
  return (
    <Alert color="orange" title={`The journal at ${targetSite} ends with this failover`} data-testid="journal-ends">
      <Text size="sm">
        {`Its ${plural(view.status.pointCount, 'point')} and ${plural(view.status.bookmarkCount, 'bookmark')} go, and the volumes at ${targetSite} keep their newest image. ` +
          'To fail over to an earlier point in time instead, use Recover production under Protection.'}
      </Text>
    </Alert>
  );
}
