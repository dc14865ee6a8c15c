import type { QueryKey } from '@tanstack/react-query';
import { trackMapKeys } from '../../track-map/api/track-map-keys.ts';
import { volumeKeys } from '../../volumes/api/volume-keys.ts';
import { flashKeys } from './flash-keys.ts';

/**
 * Flash copy events (`flash.state`, `flash.established`, `flash.refreshed`,
 * `flash.reversed`, `flash.withdrawn`, `flash.hold-timeout`,
 * `flash.copy-progress`; contract flashEventTypes) refresh the site's flash
 * sessions and copied-track maps, and its volumes, whose allocation the copy
 * changes.
 */
export const flashEventInvalidation = {
  families: ['flash'],
  keys: (siteId: string): QueryKey[] => [flashKeys.site(siteId), volumeKeys.site(siteId), trackMapKeys.site(siteId)],
};
