import type { QueryKey } from '@tanstack/react-query';
import { volumeKeys } from '../../volumes/api/volume-keys.ts';
import { sessionKeys } from './session-keys.ts';

/**
 * Agent event families that change sessions, peers or clusters. The agent
 * records an event on every transition (`session.state`, `session.resync`,
 * `session.synced`, `session.failback`, `pair.*`, `cluster.*`, `link.*`,
 * `peer.*`), so these refresh the Sessions screen without polling.
 */
export const sessionEventInvalidation = {
  families: ['session', 'pair', 'cluster', 'link', 'peer'],
  keys: (siteId: string): QueryKey[] => [sessionKeys.site(siteId), volumeKeys.site(siteId)],
};
