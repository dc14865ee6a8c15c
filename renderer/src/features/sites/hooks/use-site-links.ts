import { useMemo } from 'react';
import { useApi } from '../../../app/api-context.tsx';
import { sessionKeys } from '../../sessions/api/session-keys.ts';
import { sessionsApi } from '../../sessions/api/sessions-api.ts';
import { useAllSessions } from '../../sessions/hooks/use-sessions.ts';
import { buildSiteLinks } from './site-links-model.ts';
import { useSiteLists } from './use-site-lists.ts';

/**
 * A link's state changes without an event the console hears at once (an
 * agent notices a silent peer after its heartbeats stop), so the peers
 * lists are read again at this rate while the overview is shown.
 */
const linkRefreshMs = 5000;

/** The links between sites with the sessions on each (from every known site's peers list and sessions; see buildSiteLinks). */
export function useSiteLinks() {
  const api = useApi();
  const peerLists = useSiteLists({ key: sessionKeys.peers, fetch: (siteId) => sessionsApi.peers(api, siteId), refetchInterval: () => linkRefreshMs });
  const all = useAllSessions({ live: true });
  const links = useMemo(
    () => buildSiteLinks(peerLists.map(({ site, data, reach, receivedAt }) => ({ siteName: site.site, peers: data, reach, receivedAt })), all.sessions),
    [peerLists, all.sessions],
  );
  return { links, isLoading: peerLists.some((list) => list.isLoading) || all.isLoading, error: peerLists.find((list) => list.error && !list.data)?.error ?? all.error };
}
