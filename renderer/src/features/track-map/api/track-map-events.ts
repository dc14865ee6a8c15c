import type { QueryKey } from '@tanstack/react-query';
import { trackMapKeys } from './track-map-keys.ts';

/** Track maps go stale whenever volumes or snapshots change. */
export const trackMapEventInvalidation = {
  families: ['volume', 'snapshot'],
  keys: (siteId: string): QueryKey[] => [trackMapKeys.site(siteId)],
};
