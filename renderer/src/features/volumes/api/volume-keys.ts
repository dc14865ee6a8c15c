/** Query keys for volumes: everything of one site sits under `site(siteId)` so one invalidation covers it. */
export const volumeKeys = {
  all: ['volumes'] as const,
  site: (siteId: string) => [...volumeKeys.all, siteId] as const,
  list: (siteId: string) => [...volumeKeys.site(siteId), 'list'] as const,
};
