/** Query keys for mirroring: everything of one site sits under `site(siteId)` so one event invalidation covers it. */
export const sessionKeys = {
  all: ['sessions'] as const,
  site: (siteId: string) => [...sessionKeys.all, siteId] as const,
  list: (siteId: string) => [...sessionKeys.site(siteId), 'list'] as const,
  events: (siteId: string, name: string) => [...sessionKeys.site(siteId), 'events', name] as const,
  /** A session's exposure history as one site sampled it, over a named range (`1h`, `24h`, `7d`) ending at the time of the fetch. */
  history: (siteId: string, name: string, range: string) => [...sessionKeys.site(siteId), 'history', name, range] as const,
  peers: (siteId: string) => [...sessionKeys.site(siteId), 'peers'] as const,
  clusters: (siteId: string) => [...sessionKeys.site(siteId), 'clusters'] as const,
  preflight: (siteId: string, name: string, verifyCodes: boolean, fullCompare: boolean) =>
    [...sessionKeys.site(siteId), 'preflight', name, verifyCodes, fullCompare] as const,
};
