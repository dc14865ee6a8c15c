import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { EstablishFlashRequest, FlashSessionInfo, FlashUpdateRequest } from '@tandem/contract';
import { useMemo } from 'react';
import { useApi } from '../../../app/api-context.tsx';
import { sessionKeys } from '../../sessions/api/session-keys.ts';
import { sessionsApi } from '../../sessions/api/sessions-api.ts';
import type { SiteReach } from '../../../lib/site-reach.ts';
import { useSiteLists } from '../../sites/hooks/use-site-lists.ts';
import { trackMapKeys } from '../../track-map/api/track-map-keys.ts';
import type { TrackMapView } from '../../track-map/hooks/track-map-model.ts';
import { volumeKeys } from '../../volumes/api/volume-keys.ts';
import { flashApi } from '../api/flash-api.ts';
import { flashKeys } from '../api/flash-keys.ts';
import { holdsRelationships, mirrorUse, volumeFlashRoles, type FlashAction, type MirrorUse, type VolumeFlashRole } from './flash-model.ts';

/** One site's flash sessions. */
export function useFlashSessions(siteId: string | null, enabled = true) {
  const api = useApi();
  return useQuery({ queryKey: flashKeys.list(siteId ?? '-'), queryFn: () => flashApi.list(api, siteId!), enabled: enabled && siteId !== null });
}

/** Which volumes of a site are flash sources or targets (empty while loading). */
export function useVolumeFlashRoles(siteId: string, enabled = true): Map<string, VolumeFlashRole[]> {
  const sessions = useFlashSessions(siteId, enabled);
  return useMemo(() => volumeFlashRoles(sessions.data ?? []), [sessions.data]);
}

/** What the site's mirror sessions do with its volumes (shared cache with the Sessions screen). */
export function useMirrorUse(siteId: string | null): MirrorUse {
  const api = useApi();
  const sessions = useQuery({ queryKey: sessionKeys.list(siteId ?? '-'), queryFn: () => sessionsApi.list(api, siteId!), enabled: siteId !== null });
  return useMemo(() => mirrorUse(sessions.data ?? []), [sessions.data]);
}

export interface SiteFlashSession {
  siteId: string;
  siteName: string;
  session: FlashSessionInfo;
  /** Whether the site is live; a last-known session of an unreachable site stays, marked. */
  reach: SiteReach;
  /** When the console received it (console clock, ms). */
  receivedAt: number;
}

/**
 * Host writes change an incremental session's changed-track counts without
 * any event, so while the Sessions screen is mounted (and the window
 * visible) a site's list refreshes at this low rate as long as it holds an
 * incremental session, like the mirror sessions' exposure. State changes
 * and copy progress arrive as events at once.
 */
const changedTracksRefreshMs = 5000;

/**
 * Flash sessions of every site the console knows, by site then name. An
 * unreachable site's last answer stays, marked not live; `sites` says per
 * site how live its list is (for the section's "unknown since" notices).
 */
export function useAllFlashSessions(options: { live?: boolean } = {}) {
  const api = useApi();
  const lists = useSiteLists({
    key: flashKeys.list,
    fetch: (siteId) => flashApi.list(api, siteId),
    refetchInterval: (data) => (options.live && data?.some((session) => session.options.incremental && holdsRelationships(session)) ? changedTracksRefreshMs : false),
  });
  const sessions: SiteFlashSession[] = useMemo(
    () =>
      lists.flatMap(({ site, data, reach, receivedAt }) =>
        (data ?? []).map((session) => ({ siteId: site.id, siteName: site.site, session, reach, receivedAt })).sort((a, b) => a.session.name.localeCompare(b.session.name)),
      ),
    [lists],
  );
  return {
    sessions,
    sites: lists.map(({ site, data, reach, receivedAt }) => ({ site, reach, receivedAt, count: data?.length ?? null })),
    isLoading: lists.some((list) => list.isLoading),
    error: lists.find((list) => list.error && !list.data)?.error ?? null,
  };
}

/** After a change we made: the site's flash sessions, volumes and maps moved (the agent's events do the same for other consoles). */
function useFlashInvalidation() {
  const queryClient = useQueryClient();
  return (siteId: string) =>
    Promise.all([
      queryClient.invalidateQueries({ queryKey: flashKeys.site(siteId) }),
      queryClient.invalidateQueries({ queryKey: volumeKeys.site(siteId) }),
      queryClient.invalidateQueries({ queryKey: trackMapKeys.site(siteId) }),
    ]);
}

export function useEstablishFlash() {
  const api = useApi();
  const invalidate = useFlashInvalidation();
  return useMutation({
    mutationFn: ({ siteId, request }: { siteId: string; request: EstablishFlashRequest }) => flashApi.establish(api, siteId, request),
    onSettled: (_data, _error, { siteId }) => invalidate(siteId),
  });
}

export interface FlashActionInput {
  siteId: string;
  name: string;
  action: FlashAction;
  /** withdraw only: finish the background copy first. */
  finishCopy?: boolean;
}

export function useFlashAction() {
  const api = useApi();
  const invalidate = useFlashInvalidation();
  return useMutation({
    mutationFn: ({ siteId, name, action, finishCopy }: FlashActionInput): Promise<FlashSessionInfo | void> => {
      switch (action) {
        case 'refresh':
          return flashApi.refresh(api, siteId, name);
        case 'reverse':
          return flashApi.reverse(api, siteId, name);
        case 'withdraw':
          return flashApi.withdraw(api, siteId, name, { finishCopy: finishCopy ?? false });
        case 'pause':
          return flashApi.update(api, siteId, name, { paused: true });
        case 'resume':
          return flashApi.update(api, siteId, name, { paused: false });
        case 'start-copy':
          return flashApi.update(api, siteId, name, { backgroundCopy: true });
        case 'forget':
          return flashApi.remove(api, siteId, name);
      }
    },
    onSettled: (_data, _error, { siteId }) => invalidate(siteId),
  });
}

export function useUpdateFlash() {
  const api = useApi();
  const invalidate = useFlashInvalidation();
  return useMutation({
    mutationFn: ({ siteId, name, request }: { siteId: string; name: string; request: FlashUpdateRequest }) => flashApi.update(api, siteId, name, request),
    onSettled: (_data, _error, { siteId }) => invalidate(siteId),
  });
}

/** A session's recent flash events (refreshed by the same events through the flash invalidation). */
export function useFlashEvents(siteId: string, name: string) {
  const api = useApi();
  return useQuery({ queryKey: flashKeys.events(siteId, name), queryFn: () => flashApi.events(api, siteId, name) });
}

/** A pair's copied-track map for the view on screen; the previous picture stays while the next loads. */
export function useFlashTrackMap(siteId: string, session: string, pair: string, view: TrackMapView, buckets: number) {
  const api = useApi();
  return useQuery({
    queryKey: flashKeys.trackMap(siteId, session, pair, view.start, view.count, buckets),
    queryFn: () => flashApi.trackMap(api, siteId, session, pair, view.start, view.count, buckets),
    placeholderData: keepPreviousData,
  });
}
