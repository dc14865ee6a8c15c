import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { AddClusterMemberRequest, AddPairRequest, CreateClusterRequest, CreateSessionRequest, FailbackOptions, SessionAction, SessionActionOptions } from '@tandem/contract';
import { useEffect, useMemo } from 'react';
import type { SiteSummary } from '../../../../../main/src/shared/console-api.ts';
import { useApi } from '../../../app/api-context.tsx';
import { useSiteLists } from '../../sites/hooks/use-site-lists.ts';
import { useSites } from '../../sites/hooks/use-sites.ts';
import { sessionKeys } from '../api/session-keys.ts';
import { sessionsApi } from '../api/sessions-api.ts';
import { mergeSessions, type MergedSession, type SiteCluster } from './session-model.ts';

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

/**
 * An agent turns a session's health to warning once another agent of the
 * session has been silent this long (agents' PEER_SILENCE_WARNING_MS); a
 * view that shows a peer lost for less is read again just after that.
 */
const peerSilenceWarningMs = 5000;

/**
 * Every session at every site the console knows, merged by id, and the
 * clusters they belong to. Connected sites are read (and re-read on their
 * events, and every few seconds while `live`); a site the console cannot
 * reach keeps its last answer, marked not live, so its sessions and
 * clusters never vanish and never pass for current.
 */
export function useAllSessions(options: { live?: boolean } = {}) {
  const api = useApi();
  const queryClient = useQueryClient();
  const lists = useSiteLists({
    key: sessionKeys.list,
    fetch: (siteId) => sessionsApi.list(api, siteId),
    refetchInterval: () => (options.live ? exposureRefreshMs : false),
  });
  // A cluster's consistency time and exposure move with every consolidation, without an event: refreshed like the sessions.
  const clusterLists = useSiteLists({
    key: sessionKeys.clusters,
    fetch: (siteId) => sessionsApi.clusters(api, siteId),
    refetchInterval: () => (options.live ? exposureRefreshMs : false),
  });
  const sessions: MergedSession[] = useMemo(
    () =>
      mergeSessions(
        lists.flatMap(({ site, data, receivedAt, reach }) => (data ? [{ siteId: site.id, siteName: site.site, sessions: data, receivedAt, reach }] : [])),
      ),
    [lists],
  );
  const clusters: SiteCluster[] = useMemo(
    () =>
      clusterLists.flatMap(({ site, data, receivedAt, reach }) => (data ?? []).map((cluster) => ({ cluster, siteId: site.id, siteName: site.site, receivedAt, reach }))),
    [clusterLists],
  );
  // A peer just lost: the agent says so in its health a few seconds later, without an event; read that site again right then.
  useEffect(() => {
    if (!options.live) return;
    const timers: ReturnType<typeof setTimeout>[] = [];
    for (const { site, data, reach } of lists) {
      if (!data || !reach.live) continue;
      const waits = data.flatMap((session) =>
        session.health === 'normal'
          ? session.peers.flatMap((peer) => {
              const silentFor = peer.unreachableSince ? Date.parse(session.observedAt) - Date.parse(peer.unreachableSince) : NaN;
              return silentFor >= 0 && silentFor < peerSilenceWarningMs ? [peerSilenceWarningMs - silentFor + 500] : [];
            })
          : [],
      );
      if (waits.length > 0) timers.push(setTimeout(() => void queryClient.invalidateQueries({ queryKey: sessionKeys.list(site.id) }), Math.min(...waits)));
    }
    return () => timers.forEach(clearTimeout);
  }, [lists, options.live, queryClient]);
  return {
    sessions,
    clusters,
    /** Every known site with how live its sessions and clusters are (for "unknown since" notices). */
    sites: lists.map(({ site, data, receivedAt, reach }, index) => ({
      site,
      reach,
      receivedAt,
      sessions: data?.length ?? null,
      clusters: clusterLists[index]?.data?.length ?? null,
    })),
    isLoading: lists.some((list) => list.isLoading),
    error: lists.find((list) => list.error && !list.data)?.error ?? clusterLists.find((list) => list.error && !list.data)?.error ?? null,
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
    mutationFn: ({ siteId, name, action, options }: { siteId: string; name: string; action: SessionAction; options?: SessionActionOptions }) =>
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

/** One session as one site reports it, polled every `intervalMs` while `enabled` (a wizard waiting for a state). */
export function useSessionAt(siteId: string, name: string, enabled: boolean, intervalMs: number | false) {
  const api = useApi();
  return useQuery({
    queryKey: [...sessionKeys.site(siteId), 'one', name],
    queryFn: () => sessionsApi.session(api, siteId, name),
    enabled,
    refetchInterval: intervalMs,
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

/** Defines a cluster at a site: its agent runs the processor and keeps the master data set. */
export function useCreateCluster() {
  const api = useApi();
  const invalidate = useInvalidateAll();
  return useMutation({
    mutationFn: ({ siteId, request }: { siteId: string; request: CreateClusterRequest }) => sessionsApi.createCluster(api, siteId, request),
    onSettled: invalidate,
  });
}

/** A session joins a cluster: asked at the processor's site (`request.site`: the site reporting the session, when another). */
export function useJoinCluster() {
  const api = useApi();
  const invalidate = useInvalidateAll();
  return useMutation({
    mutationFn: ({ siteId, cluster, request }: { siteId: string; cluster: string; request: AddClusterMemberRequest }) => sessionsApi.addClusterMember(api, siteId, cluster, request),
    onSettled: invalidate,
  });
}

/** A session leaves its cluster (at the processor's site). */
export function useLeaveCluster() {
  const api = useApi();
  const invalidate = useInvalidateAll();
  return useMutation({
    mutationFn: ({ siteId, cluster, session, memberSite }: { siteId: string; cluster: string; session: string; memberSite?: string }) =>
      sessionsApi.removeClusterMember(api, siteId, cluster, session, memberSite),
    onSettled: invalidate,
  });
}

/** Deletes a cluster and its master data set (the sessions go on). */
export function useDeleteCluster() {
  const api = useApi();
  const invalidate = useInvalidateAll();
  return useMutation({ mutationFn: ({ siteId, cluster }: { siteId: string; cluster: string }) => sessionsApi.deleteCluster(api, siteId, cluster), onSettled: invalidate });
}
