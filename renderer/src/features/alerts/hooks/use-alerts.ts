import { useMutation, useQueries, useQuery, useQueryClient } from '@tanstack/react-query';
import type { Alert, SetAlertSettingsRequest, SetSessionAlertThresholdsRequest } from '@tandem/contract';
import type { SiteSummary } from '../../../../../main/src/shared/console-api.ts';
import { useApi } from '../../../app/api-context.tsx';
import { alertsApi } from '../api/alerts-api.ts';
import { alertKeys } from '../api/alerts-keys.ts';
import { alertRef } from './read-alerts-store.ts';

/** An alert of one site, as the notification centre lists it. */
export interface SiteAlert {
  /** `siteId:alertId`: unique across sites (read marks use it). */
  ref: string;
  siteId: string;
  siteName: string;
  alert: Alert;
}

/** A site whose alerts could not be read (shown as such, never as "no alerts"). */
export interface UnreadSite {
  siteId: string;
  siteName: string;
  problem: string;
}

const severityRank = { critical: 0, warning: 1 } as const;

/** Active alerts first (critical before warning, newest raise first), then cleared ones (cleared last first). */
export function sortAlerts(items: SiteAlert[]): SiteAlert[] {
  return [...items].sort((a, b) => {
    const activeA = a.alert.clearedAt === null;
    const activeB = b.alert.clearedAt === null;
    if (activeA !== activeB) return activeA ? -1 : 1;
    if (activeA) {
      const bySeverity = severityRank[a.alert.severity] - severityRank[b.alert.severity];
      return bySeverity !== 0 ? bySeverity : b.alert.raisedAt.localeCompare(a.alert.raisedAt);
    }
    return (b.alert.clearedAt ?? '').localeCompare(a.alert.clearedAt ?? '');
  });
}

/** Unread: active alerts not marked read (a cleared alert needs no attention). */
export function unreadCount(items: SiteAlert[], read: ReadonlySet<string>): number {
  return items.filter((item) => item.alert.clearedAt === null && !read.has(item.ref)).length;
}

/** The alerts of every connected site, merged and sorted; sites whose alerts could not be read are listed apart. */
export function useAllAlerts(sites: SiteSummary[]) {
  const api = useApi();
  const connected = sites.filter((site) => site.connection.state === 'connected');
  const results = useQueries({
    queries: connected.map((site) => ({
      queryKey: alertKeys.list(site.id),
      queryFn: () => alertsApi.list(api, site.id),
    })),
  });
  const items: SiteAlert[] = [];
  const unread: UnreadSite[] = [];
  /** Sites whose list has loaded at least once (new alerts there are news; the first load is not). */
  const loaded = new Set<string>();
  results.forEach((result, index) => {
    const site = connected[index];
    if (result.data) {
      loaded.add(site.id);
      for (const alert of [...result.data.active, ...result.data.recent]) items.push({ ref: alertRef(site.id, alert.id), siteId: site.id, siteName: site.site, alert });
    }
    if (result.error) unread.push({ siteId: site.id, siteName: site.site, problem: result.error.message });
  });
  for (const site of sites) {
    if (site.connection.state !== 'connected') unread.push({ siteId: site.id, siteName: site.site, problem: `${site.connection.state} since ${site.connection.since}` });
  }
  return { items: sortAlerts(items), unread, loaded };
}

export function useSessionAlertThresholds(siteId: string, session: string) {
  const api = useApi();
  return useQuery({ queryKey: alertKeys.thresholds(siteId, session), queryFn: () => alertsApi.thresholds(api, siteId, session) });
}

export function useSetSessionAlertThresholds(siteId: string, session: string) {
  const api = useApi();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (change: SetSessionAlertThresholdsRequest) => alertsApi.setThresholds(api, siteId, session, change),
    onSuccess: (view) => {
      queryClient.setQueryData(alertKeys.thresholds(siteId, session), view);
      void queryClient.invalidateQueries({ queryKey: alertKeys.list(siteId) });
    },
  });
}

export function useAlertSettings(siteId: string) {
  const api = useApi();
  return useQuery({ queryKey: alertKeys.settings(siteId), queryFn: () => alertsApi.settings(api, siteId) });
}

export function useSetAlertSettings(siteId: string) {
  const api = useApi();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (change: SetAlertSettingsRequest) => alertsApi.setSettings(api, siteId, change),
    onSuccess: (settings) => {
      queryClient.setQueryData(alertKeys.settings(siteId), settings);
      // Every session's effective thresholds and the alerts may follow the new defaults.
      void queryClient.invalidateQueries({ queryKey: alertKeys.site(siteId) });
    },
  });
}
