import type { QueryKey } from '@tanstack/react-query';

/** Query keys of alerts: one site's under `site(siteId)`. */
export const alertKeys = {
  all: ['alerts'] as const,
  site: (siteId: string) => [...alertKeys.all, siteId] as const,
  list: (siteId: string) => [...alertKeys.site(siteId), 'list'] as const,
  thresholds: (siteId: string, session: string) => [...alertKeys.site(siteId), 'thresholds', session] as const,
  settings: (siteId: string) => [...alertKeys.site(siteId), 'settings'] as const,
};

/** `alert.raised` and `alert.cleared` refresh the site's alerts (the notification centre is always on screen). */
export const alertEventInvalidation = {
  families: ['alert'],
  keys: (siteId: string): QueryKey[] => [alertKeys.site(siteId)],
};
