import { useMutation, useQueries, useQuery, useQueryClient } from '@tanstack/react-query';
import type { AddPairRequest, ClusterInfo, CreateSessionRequest, FailbackOptions, SessionAction } from '@tandem/contract';
import { useMemo } from 'react';
import type { SiteSummary } from '../../../../../main/src/shared/console-api.ts';
import { useApi } from '../../../app/api-context.tsx';
import { useSites } from '../../sites/hooks/use-sites.ts';
import { sessionKeys } from '../api/session-keys.ts';
import { sessionsApi } from '../api/sessions-api.ts';
import { mergeSessions, type MergedSession } from './session-model.ts';

/**
 * Exposure grows between transitions without any event (an async session's
 * lag moves with every consistency group), so while the Sessions screen is
 * mounted and the window visible the lists refresh at this low rate.
 * TanStack Query pauses the interval while the document is hidden.
 * State changes themselves arrive as agent events and refresh at once.
 */
const exposureRefreshMs = 5000;

export function useConnectedSites(): SiteSummary[] {
  const sites = useSites();
  return useMemo(() => (sites.data?.sites ?? []).filter((site) => site.connection.state === 'connected'), [sites.data]);
}

/** Every session at every connected site, merged by id, and the clusters they belong to. */
export function useAllSessions(options: { live?: boolean } = {}) {
  const api = useApi();
  const sites = useConnectedSites();
  const lists = useQueries({
    queries: sites.map((site) => ({
      queryKey: sessionKeys.list(site.id),
      queryFn: () => sessionsApi.list(api, site.id),
      refetchInterval: options.live ? exposureRefreshMs : false,
    })),
  });
  const clusterLists = useQueries({
    queries: sites.map((site) => ({ queryKey: sessionKeys.clusters(site.id), queryFn: () => sessionsApi.clusters(api, site.id) })),
  });
  const stamp = lists.map((list) => list.dataUpdatedAt).join(',');
  const sessions: MergedSession[] = useMemo(
    () =>
      mergeSessions(
        sites.flatMap((site, index) => {
          const data = lists[index]?.data;
          return data ? [{ siteId: site.id, siteName: site.site, sessions: data }] : [];
        }),
      ),
    // eslint-disable-next-line react-hooks/exhaustive-deps -- `stamp` changes exactly when a list's data does
    [sites, stamp],
  );
  const clusters: ClusterInfo[] = clusterLists.flatMap((list) => list.data ?? []);
  return {
    sessions,
    clusters,
    isLoading: lists.some((list) => list.isLoading),
    error: lists.find((list) => list.error)?.error ?? clusterLists.find((list) => list.error)?.error ?? null,
  };
}

export function useSessionEvents(siteId: string, name: string) {
  const api = useApi();
  return useQuery({ queryKey: sessionKeys.events(siteId, name), queryFn: () => sessionsApi.events(api, siteId, name) });
}

export function usePeers(siteId: string | null) {
  const api = useApi();
  return useQuery({ queryKey: sessionKeys.peers(siteId ?? '-'), queryFn: () => sessionsApi.peers(api, siteId!), enabled: siteId !== null });
}

/** After a change we made: both sites' sessions, peers and volumes may have moved. */
function useInvalidateAll() {
  const queryClient = useQueryClient();
  return () => queryClient.invalidateQueries({ queryKey: sessionKeys.all });
}

export function usePairSites() {
  const api = useApi();
  const invalidate = useInvalidateAll();
  return useMutation({
    mutationFn: ({ siteId, otherSiteId }: { siteId: string; otherSiteId: string }) => sessionsApi.pairSites(api, siteId, otherSiteId),
    onSuccess: invalidate,
  });
}

export function useSessionAction() {
  const api = useApi();
  const invalidate = useInvalidateAll();
  return useMutation({
    mutationFn: ({ siteId, name, action, options }: { siteId: string; name: string; action: SessionAction; options?: FailbackOptions }) =>
      sessionsApi.act(api, siteId, name, action, options),
    onSettled: invalidate,
  });
}

/** Creates the session at its H1 site, then adds the copy sets one by one (the agent checks each pair's sizes). */
export function useCreateSession() {
  const api = useApi();
  const invalidate = useInvalidateAll();
  return useMutation({
    mutationFn: async ({ siteId, request, pairs }: { siteId: string; request: CreateSessionRequest; pairs: AddPairRequest[] }) => {
      let session = await sessionsApi.create(api, siteId, request);
      for (const pair of pairs) session = await sessionsApi.addPair(api, siteId, request.name, pair);
      return session;
    },
    onSettled: invalidate,
  });
}

export function usePreflight(siteId: string, name: string, options: FailbackOptions, enabled: boolean) {
  const api = useApi();
  return useQuery({
    queryKey: sessionKeys.preflight(siteId, name, options.verifyCodes, options.fullCompare),
    queryFn: () => sessionsApi.preflight(api, siteId, name, options),
    enabled,
    staleTime: Infinity,
  });
}

export function useVerify() {
  const api = useApi();
  const invalidate = useInvalidateAll();
  return useMutation({ mutationFn: ({ siteId, name }: { siteId: string; name: string }) => sessionsApi.verify(api, siteId, name), onSettled: invalidate });
}

/** Adds copy sets one by one at the session's H1 site (defined or running sessions; the agent checks each pair's sizes). */
export function useAddPairs() {
  const api = useApi();
  const invalidate = useInvalidateAll();
  return useMutation({
    mutationFn: async ({ siteId, name, pairs }: { siteId: string; name: string; pairs: AddPairRequest[] }) => {
      for (const pair of pairs) await sessionsApi.addPair(api, siteId, name, pair);
    },
    onSettled: invalidate,
  });
}

/** Removes one copy set (by its H1 volume) at the session's H1 site; the others keep mirroring. */
export function useRemovePair() {
  const api = useApi();
  const invalidate = useInvalidateAll();
  return useMutation({
    mutationFn: ({ siteId, name, h1Volume }: { siteId: string; name: string; h1Volume: string }) => sessionsApi.removePair(api, siteId, name, h1Volume),
    onSettled: invalidate,
  });
}

/** Snapshot shipping: a new interval, in effect at once at both sites. */
export function useSetShipInterval() {
  const api = useApi();
  const invalidate = useInvalidateAll();
  return useMutation({
    mutationFn: ({ siteId, name, seconds }: { siteId: string; name: string; seconds: number }) => sessionsApi.update(api, siteId, name, { shipIntervalSeconds: seconds }),
    onSettled: invalidate,
  });
}

/** Snapshot shipping: one cycle now, answered once the target committed it. */
export function useShipNow() {
  const api = useApi();
  const invalidate = useInvalidateAll();
  return useMutation({ mutationFn: ({ siteId, name }: { siteId: string; name: string }) => sessionsApi.shipNow(api, siteId, name), onSettled: invalidate });
}
