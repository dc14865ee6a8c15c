import { useQueries, type QueryKey } from '@tanstack/react-query';
import { useMemo } from 'react';
import type { SiteSummary } from '../../../../../main/src/shared/console-api.ts';
import { siteReach, type SiteReach } from '../../../lib/site-reach.ts';
import { useSites } from './use-sites.ts';

/** One site's answer to a per-site list (sessions, clusters, flash copies), with how live it is. */
export interface SiteListEntry<T> {
  site: SiteSummary;
  /** The last answer read from the site (kept while it is unreachable). */
  data: T | undefined;
  /** When the console received it (console clock, ms); 0 before the first answer. */
  receivedAt: number;
  reach: SiteReach;
  error: unknown;
  isLoading: boolean;
}

/**
 * The same list read from every site the console knows, connected or not.
 * Only connected sites are asked; an unreachable site's last answer stays in
 * the query cache (its query is kept, just not run) and comes back marked
 * as not live, so nothing it reported vanishes or passes for current.
 */
export function useSiteLists<T>(options: {
  key: (siteId: string) => QueryKey;
  fetch: (siteId: string) => Promise<T>;
  /** Refresh rate of a connected site's list (by its data), or none. */
  refetchInterval?: (data: T | undefined) => number | false;
}): SiteListEntry<T>[] {
  const sites = useSites().data?.sites;
  const known = useMemo(() => sites ?? [], [sites]);
  const results = useQueries({
    queries: known.map((site) => {
      const connected = site.connection.state === 'connected';
      return {
        queryKey: options.key(site.id),
        queryFn: () => options.fetch(site.id),
        enabled: connected,
        refetchInterval: (query: { state: { data?: T } }) => (connected && options.refetchInterval ? options.refetchInterval(query.state.data) : false),
      };
    }),
  });
  const stamp = results.map((result) => `${result.dataUpdatedAt}/${result.errorUpdatedAt}`).join(',');
  return useMemo(
    () =>
      known.map((site, index) => {
        const result = results[index];
        return {
          site,
          data: result?.data,
          receivedAt: result?.dataUpdatedAt ?? 0,
          reach: siteReach(site, { dataUpdatedAt: result?.dataUpdatedAt ?? 0, errorUpdatedAt: result?.errorUpdatedAt ?? 0, error: result?.error ?? null }),
          error: result?.error ?? null,
          isLoading: result?.isLoading ?? false,
        };
      }),
    // eslint-disable-next-line react-hooks/exhaustive-deps -- `stamp` changes exactly when a result's data or error does
    [known, stamp],
  );
}
