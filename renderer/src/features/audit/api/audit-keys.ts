import type { QueryKey } from '@tanstack/react-query';

/** Query keys of the audit trail: one site's under `site(siteId)`. */
export const auditKeys = {
  all: ['audit'] as const,
  site: (siteId: string) => [...auditKeys.all, siteId] as const,
  list: (siteId: string, session: string, limit: number) => [...auditKeys.site(siteId), 'list', session, limit] as const,
};

/** A call that changed something is followed by an event of its kind: the trail has grown then (refused calls show on Refresh). */
export const auditEventInvalidation = {
  families: ['volume', 'snapshot', 'session', 'pair', 'flash', 'cluster', 'client', 'peer'],
  keys: (siteId: string): QueryKey[] => [auditKeys.site(siteId)],
};
