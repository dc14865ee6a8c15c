import type { ClusterInfo, PairInfo, SessionHealth, SessionInfo } from '@tandem/contract';
import { liveReach, type SiteReach } from '../../../lib/site-reach.ts';

/** One site's view of a session: what its agent reported, when the console got it, and whether that site is still live. */
export interface SessionView {
  siteId: string;
  siteName: string;
  session: SessionInfo;
  /** When the console received this view (console clock, ms). */
  receivedAt: number;
  reach: SiteReach;
}

/** One session as the console shows it, merged from the views of every site that holds it (live or last known). */
export interface MergedSession {
  id: string;
  /** The view shown: a live one over a last-known one; of those, the current source's. */
  session: SessionInfo;
  /** The console site to send actions to (any site holding the session; the agent forwards). */
  siteId: string;
  siteName: string;
  /** Every site's view, for the event log of each side and for what is unknown. */
  views: SessionView[];
  /** The view `session` is (its receipt time and reach). */
  shown: SessionView;
}

/** One site's sessions as read by the console. */
export interface SiteSessions {
  siteId: string;
  siteName: string;
  sessions: SessionInfo[];
  /** Console clock, ms (default: now). */
  receivedAt?: number;
  /** Default: live. */
  reach?: SiteReach;
}

/** The site that currently sends data: H1 for h1-h2, H2 after a failback reversed it. */
export function sourceSite(session: SessionInfo): string {
  return session.direction === 'h1-h2' ? session.h1Site : session.h2Site;
}

export function targetSite(session: SessionInfo): string {
  return session.direction === 'h1-h2' ? session.h2Site : session.h1Site;
}

/**
 * The sites holding the session's H1 volumes: the H1 site (the control agent) and,
 * in a multi-primary async session, every other site named as a copy set's
 * primary, in the order the copy sets list them.
 */
/** The site holding a copy set's H1 volume (by pair id; names may repeat across sites): its own primary site, else H1. */
export function primarySiteOf(session: SessionInfo, pairId: string): string {
  return session.pairs.find((pair) => pair.id === pairId)?.primarySite ?? session.h1Site;
}

export function primarySites(session: SessionInfo): string[] {
  return [...new Set([session.h1Site, ...session.pairs.map((pair) => pair.primarySite ?? session.h1Site)])];
}

/** Copy sets' primaries are on more than one site. */
export function isMultiPrimary(session: SessionInfo): boolean {
  return primarySites(session).length > 1;
}

/** The sites that currently receive: the H2 site, or every H1 site after a failback reversed the direction. */
export function receivingSites(session: SessionInfo): string[] {
  return session.direction === 'h1-h2' ? [session.h2Site] : primarySites(session);
}

/** Where data flows now: `alpha, bravo → charlie`, or `charlie → alpha, bravo` after a failback. */
export function directionText(session: SessionInfo): string {
  const sending = session.direction === 'h1-h2' ? primarySites(session) : [session.h2Site];
  return `${sending.join(', ')} → ${receivingSites(session).join(', ')}`;
}

function isSourceView(session: SessionInfo): boolean {
  return (session.direction === 'h1-h2') === (session.role === 'h1');
}

/**
 * Which view to show: a live one over one only last known (an unreachable
 * site's); then a source's over a target's; of a multi-primary session's H1
 * agents, the control agent's (the H1 site, which knows every copy set) over a
 * member's.
 */
function viewRank(view: SessionView): number {
  const { session, siteName } = view;
  const live = view.reach.live ? 10 : 0;
  if (!isSourceView(session)) return live;
  return live + (session.role === 'h1' && siteName !== session.h1Site ? 1 : 2);
}

/**
 * Merges per-site session lists by session id. A live view is shown before
 * a last-known one, and the source's before the target's (it knows the
 * out-of-sync counts); target-changed counts are known at the target, so
 * each pair takes the largest any view reports.
 */
export function mergeSessions(perSite: SiteSessions[]): MergedSession[] {
  const byId = new Map<string, MergedSession>();
  const now = Date.now();
  for (const { siteId, siteName, sessions, receivedAt = now, reach = liveReach } of perSite) {
    for (const session of sessions) {
      const known = byId.get(session.id);
      const view: SessionView = { siteId, siteName, session, receivedAt, reach };
      if (!known) {
        byId.set(session.id, { id: session.id, session, siteId, siteName, views: [view], shown: view });
        continue;
      }
      known.views.push(view);
      if (viewRank(view) > viewRank(known.shown)) Object.assign(known, { session, siteId, siteName, shown: view });
    }
  }
  const merged = [...byId.values()].map((entry) => ({ ...entry, session: { ...entry.session, pairs: entry.session.pairs.map((pair) => mergePair(pair, entry.views)) } }));
  return merged.sort((a, b) => a.session.name.localeCompare(b.session.name));
}

function mergePair(pair: PairInfo, views: MergedSession['views']): PairInfo {
  let targetChanged = pair.targetChangedTracks;
  // Only the target (H2) knows a copy set whose initial copy never completed: its word wins over the source's silence.
  let inconsistent = pair.consistent === false ? pair : undefined;
  for (const view of views) {
    const other = view.session.pairs.find((each) => each.id === pair.id);
    if (!other) continue;
    targetChanged = Math.max(targetChanged, other.targetChangedTracks);
    if (!inconsistent && other.consistent === false) inconsistent = other;
  }
  const merged = { ...pair, targetChangedTracks: targetChanged };
  return inconsistent ? { ...merged, consistent: false, inconsistentReason: inconsistent.inconsistentReason } : merged;
}

/** The copy sets whose target volume is no consistent image (the initial copy had not completed). */
export function inconsistentPairs(session: SessionInfo): PairInfo[] {
  return session.pairs.filter((pair) => pair.consistent === false);
}

/** Why the copy set's target is no consistent image, as the agent says it. */
export function inconsistentReasonText(pair: PairInfo): string {
  return pair.inconsistentReason ?? 'initial copy not complete';
}

/** Copy sets still in their initial copy (joining) or otherwise copying: a failover now leaves their targets inconsistent. */
export function copyingPairs(session: SessionInfo): PairInfo[] {
  return session.pairs.filter((pair) => pair.consistent === false || pair.state === 'syncing');
}

/** A cluster as read from the site running its processor, with how live that read is. */
export interface SiteCluster {
  cluster: ClusterInfo;
  siteId: string;
  siteName: string;
  /** Console clock, ms. */
  receivedAt: number;
  reach: SiteReach;
}

export interface SessionGroup {
  key: string;
  /** null: the sessions in no cluster. */
  cluster: SiteCluster | null;
  sessions: MergedSession[];
}

/** Sessions grouped by the cluster (master data set) they belong to, clusters by name, then "no cluster". */
export function groupByCluster(sessions: MergedSession[], clusters: SiteCluster[]): SessionGroup[] {
  const seen = new Set<string>();
  const groups: SessionGroup[] = [];
  const byKey = new Map<string, SiteCluster>();
  for (const entry of clusters) {
    const key = `${entry.cluster.processorSite}/${entry.cluster.name}`;
    const known = byKey.get(key);
    if (!known || (entry.reach.live && !known.reach.live)) byKey.set(key, entry);
  }
  const unique = [...byKey.values()].sort((a, b) => a.cluster.name.localeCompare(b.cluster.name));
  for (const entry of unique) {
    const ids = new Set(entry.cluster.members.map((member) => member.sessionId));
    const members = sessions.filter((session) => ids.has(session.id));
    for (const member of members) seen.add(member.id);
    groups.push({ key: `${entry.cluster.processorSite}/${entry.cluster.name}`, cluster: entry, sessions: members });
  }
  const rest = sessions.filter((session) => !seen.has(session.id));
  if (rest.length > 0 || groups.length === 0) groups.push({ key: 'no-cluster', cluster: null, sessions: rest });
  return groups;
}

/** Mantine colours and words for the health overlay. */
export const healthLook: Record<SessionHealth | 'unknown', { color: string; label: string }> = {
  normal: { color: 'green', label: 'Normal' },
  warning: { color: 'yellow', label: 'Warning' },
  severe: { color: 'red', label: 'Severe' },
  inactive: { color: 'gray', label: 'Inactive' },
  unknown: { color: 'gray', label: 'Unknown' },
};

const stateLabels: Record<string, string> = {
  defined: 'Defined',
  preparing: 'Preparing',
  prepared: 'Prepared',
  suspending: 'Suspending',
  suspended: 'Suspended',
  recovering: 'Recovering',
  'target-available': 'Target available',
  unknown: 'Unknown',
};

export function stateLabel(state: string): string {
  return stateLabels[state] ?? state;
}

/** `12.3 s`, `4 min 5 s`, or a dash. */
export function formatSeconds(seconds: number | null): string {
  if (seconds === null) return '–';
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function formatTime(iso: string | null): string {
  if (!iso) return '–';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}
