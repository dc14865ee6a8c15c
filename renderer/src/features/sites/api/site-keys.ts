/** Query keys for sites (one factory, so invalidation and event patches agree). */
export const siteKeys = {
  all: ['sites'] as const,
  list: () => [...siteKeys.all, 'list'] as const,
  pool: (siteId: string) => [...siteKeys.all, siteId, 'pool'] as const,
  clients: (siteId: string) => [...siteKeys.all, siteId, 'clients'] as const,
};
