import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { Role } from '@tandem/contract';
import type { ConnectSiteRequest, SiteList } from '../../../../../main/src/shared/console-api.ts';
import { useApi } from '../../../app/api-context.tsx';
import { siteKeys } from '../api/site-keys.ts';
import { sitesApi } from '../api/sites-api.ts';

/** Every connected site with its live connection state (patched by backend events). */
export function useSites() {
  const api = useApi();
  return useQuery({ queryKey: siteKeys.list(), queryFn: () => sitesApi.list(api) });
}

/** Pool usage of one site; refreshed when the site's agent reports a change. */
export function useSitePool(siteId: string, enabled: boolean) {
  const api = useApi();
  return useQuery({ queryKey: siteKeys.pool(siteId), queryFn: () => sitesApi.pool(api, siteId), enabled });
}

/** The clients (consoles, the local admin) of a site's agent with their roles: administrators only. */
export function useSiteClients(siteId: string, enabled: boolean) {
  const api = useApi();
  return useQuery({ queryKey: siteKeys.clients(siteId), queryFn: () => sitesApi.clients(api, siteId), enabled });
}

export function useSetClientRole(siteId: string) {
  const api = useApi();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ serial, role }: { serial: string; role: Role }) => sitesApi.setClientRole(api, siteId, serial, role),
    onSettled: () => queryClient.invalidateQueries({ queryKey: siteKeys.clients(siteId) }),
  });
}

export function useRevokeClient(siteId: string) {
  const api = useApi();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (serial: string) => sitesApi.revokeClient(api, siteId, serial),
    onSettled: () => queryClient.invalidateQueries({ queryKey: siteKeys.clients(siteId) }),
  });
}

export function useProbeSite() {
  const api = useApi();
  return useMutation({ mutationFn: (address: string) => sitesApi.probe(api, address) });
}

export function useConnectSite() {
  const api = useApi();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (request: ConnectSiteRequest) => sitesApi.connect(api, request),
    onSuccess: (site) => {
      // The backend's events may already have brought this site, in a newer state than this answer: keep theirs.
      queryClient.setQueryData<SiteList>(siteKeys.list(), (current) => {
        const sites = current?.sites ?? [];
        return sites.some((existing) => existing.id === site.id) ? { sites } : { sites: [...sites, site] };
      });
    },
  });
}

export function useRemoveSite() {
  const api = useApi();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (siteId: string) => sitesApi.remove(api, siteId),
    onSuccess: (_result, siteId) => {
      queryClient.setQueryData<SiteList>(siteKeys.list(), (current) => ({
        sites: (current?.sites ?? []).filter((site) => site.id !== siteId),
      }));
    },
  });
}
