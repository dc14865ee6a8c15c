import type { QueryKey } from '@tanstack/react-query';
import { siteKeys } from '../../sites/api/site-keys.ts';
import { volumeKeys } from './volume-keys.ts';

/** Agent event families that change a site's volumes, and the queries they make stale. */
export const volumeEventInvalidation = {
  families: ['volume', 'snapshot', 'pool'],
  keys: (siteId: string): QueryKey[] => [volumeKeys.site(siteId), siteKeys.pool(siteId)],
};
