/** Query keys for flash copy: everything of one site sits under `site(siteId)` so one event invalidation covers it. */
export const flashKeys = {
  all: ['flash'] as const,
  site: (siteId: string) => [...flashKeys.all, siteId] as const,
  list: (siteId: string) => [...flashKeys.site(siteId), 'list'] as const,
  events: (siteId: string, session: string) => [...flashKeys.site(siteId), 'events', session] as const,
  trackMap: (siteId: string, session: string, pair: string, start: number, count: number, buckets: number) =>
    [...flashKeys.site(siteId), 'track-map', session, pair, start, count, buckets] as const,
};
