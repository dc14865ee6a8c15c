import type { QueryKey } from '@tanstack/react-query';
import { alertEventInvalidation } from '../features/alerts/api/alerts-keys.ts';
import { auditEventInvalidation } from '../features/audit/api/audit-keys.ts';
import { flashEventInvalidation } from '../features/flash/api/flash-events.ts';
import { journalEventInvalidation } from '../features/protection/api/journal-keys.ts';
import { trackMapEventInvalidation } from '../features/track-map/api/track-map-events.ts';
import { sessionEventInvalidation } from '../features/sessions/api/session-events.ts';
import { volumeEventInvalidation } from '../features/volumes/api/volume-events.ts';

/** What one feature refreshes when an agent event of one of its families arrives. */
export interface FeatureEventInvalidation {
  /** The part of the event type before the first dot: `volume` for `volume.created`. */
  families: string[];
  keys: (siteId: string) => QueryKey[];
}

/** Every feature's rule; a new feature folder adds its own here. */
export const featureEventInvalidations: FeatureEventInvalidation[] = [
  volumeEventInvalidation,
  trackMapEventInvalidation,
  sessionEventInvalidation,
  flashEventInvalidation,
  auditEventInvalidation,
  alertEventInvalidation,
  journalEventInvalidation,
];

/** Query keys made stale by an event of `type` at a site. */
export function keysForEvent(type: string, siteId: string): QueryKey[] {
  const family = type.split('.')[0];
  return featureEventInvalidations.filter((rule) => rule.families.includes(family)).flatMap((rule) => rule.keys(siteId));
}

/** Everything a site shows, for when the console was away from it. */
export function keysForSite(siteId: string): QueryKey[] {
  return featureEventInvalidations.flatMap((rule) => rule.keys(siteId));
}
