import { hashKey, type QueryClient, type QueryKey } from '@tanstack/react-query';

/** A burst of events refetches once this long after its last event… */
export const REFETCH_QUIET_MS = 150;
/** …or this long after its first, so a long burst still shows its progress. */
export const REFETCH_MAX_WAIT_MS = 1000;

interface Pending {
  keys: Map<string, QueryKey>;
  quiet: ReturnType<typeof setTimeout> | undefined;
  deadline: ReturnType<typeof setTimeout> | undefined;
}

const pending = new WeakMap<QueryClient, Pending>();

/**
 * Makes `queryKey` stale at once (a screen opened now fetches it) and
 * refetches what is on screen once per burst of events: 100 volumes created
 * while a console watches are one volume-list download, not 100.
 */
export function invalidateSoon(queryClient: QueryClient, queryKey: QueryKey): void {
  void queryClient.invalidateQueries({ queryKey, refetchType: 'none' });
  let batch = pending.get(queryClient);
  if (!batch) {
    batch = { keys: new Map(), quiet: undefined, deadline: undefined };
    pending.set(queryClient, batch);
  }
  batch.keys.set(hashKey(queryKey), queryKey);
  const flush = () => refetchPending(queryClient);
  clearTimeout(batch.quiet);
  batch.quiet = setTimeout(flush, REFETCH_QUIET_MS);
  batch.deadline ??= setTimeout(flush, REFETCH_MAX_WAIT_MS);
}

function refetchPending(queryClient: QueryClient): void {
  const batch = pending.get(queryClient);
  if (!batch) return;
  pending.delete(queryClient);
  clearTimeout(batch.quiet);
  clearTimeout(batch.deadline);
  // Also a query fetched meanwhile: that fetch may have started before the burst's last event.
  for (const queryKey of batch.keys.values()) void queryClient.refetchQueries({ queryKey, type: 'active' });
}
