import type { QueryKey } from '@tanstack/react-query';

/** Query keys of CDP journals: one site's under `site(siteId)`. */
export const journalKeys = {
  all: ['journal'] as const,
  site: (siteId: string) => [...journalKeys.all, siteId] as const,
  view: (siteId: string, session: string) => [...journalKeys.site(siteId), session, 'view'] as const,
  points: (siteId: string, session: string) => [...journalKeys.site(siteId), session, 'points'] as const,
};

/**
 * `session.journal-*`, `session.bookmark` and `session.image-*` (and every
 * other session event) make the site's journals stale; only the sections
 * open on screen refetch.
 */
export const journalEventInvalidation = {
  families: ['session'],
  keys: (siteId: string): QueryKey[] => [journalKeys.site(siteId)],
};
