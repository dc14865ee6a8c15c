import type { SiteSummary } from '../../../main/src/shared/console-api.ts';
import { describeError } from './api-client.ts';

/**
 * Whether what the console shows of a site is live: read from its agent
 * over the current connection. A site the console cannot reach, or whose
 * last read failed, is not: what it reported before is kept, marked
 * "unknown since" the moment it stopped answering, never shown as current.
 */
export interface SiteReach {
  live: boolean;
  /** When it stopped being confirmed (ISO, console clock); null while live. */
  unknownSince: string | null;
  /** Why, in words (the connection's last problem, or the failed read). */
  reason: string | null;
}

export const liveReach: SiteReach = { live: true, unknownSince: null, reason: null };

/** The parts of a TanStack query result the reach depends on. */
export interface QueryFreshness {
  dataUpdatedAt: number;
  errorUpdatedAt: number;
  error: unknown;
}

const connectionWords: Record<SiteSummary['connection']['state'], string> = {
  connecting: 'connecting',
  connected: 'connected',
  reconnecting: 'unreachable, reconnecting',
  offline: 'offline',
};

export function siteReach(site: SiteSummary, query: QueryFreshness): SiteReach {
  const { connection } = site;
  if (connection.state !== 'connected') {
    const why = connection.lastProblem?.message;
    return { live: false, unknownSince: connection.since, reason: why ? `${connectionWords[connection.state]}: ${why}` : connectionWords[connection.state] };
  }
  // Read before the current connection began: whatever happened while away is not in it (a refresh is on its way).
  const connectedAt = Date.parse(connection.since);
  if (query.dataUpdatedAt > 0 && query.dataUpdatedAt < connectedAt) {
    return { live: false, unknownSince: new Date(query.dataUpdatedAt).toISOString(), reason: 'reconnected; reading it again' };
  }
  if (query.error && query.errorUpdatedAt >= query.dataUpdatedAt && query.dataUpdatedAt > 0) {
    return { live: false, unknownSince: new Date(query.dataUpdatedAt).toISOString(), reason: `the last read failed: ${describeError(query.error).message}` };
  }
  return liveReach;
}

/** `14:02:03`, with the date when it is not today. */
export function formatClock(iso: string | null, now = Date.now()): string {
  if (!iso) return '–';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const sameDay = new Date(now).toDateString() === date.toDateString();
  return sameDay ? date.toLocaleTimeString() : date.toLocaleString();
}

/** `just now`, `3 s ago`, `4 min ago`, `2 h ago`. */
export function formatAge(milliseconds: number): string {
  const seconds = Math.max(0, Math.round(milliseconds / 1000));
  if (seconds < 1) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} days ago`;
}

/** An agent's words with its ISO instants shown as clock times (`… unreachable since 14:02:03 …`). */
export function withClockTimes(text: string, now = Date.now()): string {
  return text.replace(/\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z\b/g, (iso) => formatClock(iso, now));
}
