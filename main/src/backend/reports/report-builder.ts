import { ProblemError, type FlashSessionInfo, type SessionHistory, type SessionInfo } from '@tandem/contract';
import type {
  ReportAuditEntry,
  ReportCopySet,
  ReportDocument,
  ReportEvent,
  ReportFlashSession,
  ReportMissingSession,
  ReportProtection,
  ReportSite,
  ReportVerify,
  SessionReport,
} from '../../shared/sessions-api.ts';
import type { FlashClient } from '../flash/flash-client.ts';
import type { ReplicationClient } from '../sessions/replication-client.ts';

/** The clients of a site the console is connected to. */
export interface ReachedSite {
  site: string;
  replication: ReplicationClient;
  flash: FlashClient;
}

/** A site the console does not reach now: since when, and why. */
export interface UnreachedSite {
  site: string;
  since: string;
  problem: string;
}

/** How a report reaches the sites it needs, by site name. */
export interface SiteAccess {
  reach(site: string): ReachedSite | UnreachedSite;
  /** Names of the sites the console is connected to (where else to find a session). */
  connected(): string[];
}

export interface ReportOptions {
  /** Newest events per site and session. */
  eventLimit: number;
  /** Exposure history range, seconds back from now. */
  historySeconds: number;
  /** Points per site's exposure history (the agents return the worst sample of each stretch beyond). */
  historyPoints: number;
  /** Newest audit entries per site and session (default 1000). */
  auditLimit?: number;
  now?: Date;
}

const isReached = (access: ReachedSite | UnreachedSite): access is ReachedSite => 'replication' in access;

function problemText(error: unknown): string {
  if (error instanceof ProblemError) return `${error.problem}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

/** The sites of a session: its H1 sites (multi-primary: every copy set's) and its H2 site. */
function sessionSites(session: SessionInfo): string[] {
  return [...new Set([session.h1Site, ...session.pairs.map((pair) => pair.primarySite ?? session.h1Site), session.h2Site])];
}

/** The site whose view is shown: the current source's, else the H1 site's, else any. */
function shownView(views: Map<string, SessionInfo>, any: SessionInfo): [string, SessionInfo] {
  const source = any.direction === 'h1-h2' ? any.h1Site : any.h2Site;
  for (const site of [source, any.h1Site]) {
    const view = views.get(site);
    if (view) return [site, view];
  }
  return [...views.entries()][0];
}

/** The newest last verify any site knows, as it concerns each copy set (by copy set id). */
function verifiesByPair(views: SessionInfo[]): Map<string, ReportVerify> {
  const newest = views
    .map((view) => view.lastVerify)
    .filter((verify) => verify != null)
    .sort((a, b) => b.finishedAt.localeCompare(a.finishedAt))[0];
  const byPair = new Map<string, ReportVerify>();
  for (const pair of newest?.pairs ?? []) {
    byPair.set(pair.pair, {
      finishedAt: newest!.finishedAt,
      trigger: newest!.trigger,
      comparedTracks: pair.comparedTracks,
      differingTracks: pair.differingTracks,
      unverifiedTracks: pair.unverifiedTracks,
      ok: pair.differingTracks === 0 && pair.unverifiedTracks === 0,
    });
  }
  return byPair;
}

function copySets(session: SessionInfo, views: SessionInfo[]): ReportCopySet[] {
  const verifies = verifiesByPair(views);
  return session.pairs.map((pair) => {
    const h1Site = pair.primarySite ?? session.h1Site;
    // Tracks written at the target after a failover are known there: the largest count any site reports.
    const targetChanged = Math.max(pair.targetChangedTracks, ...views.map((view) => view.pairs.find((each) => each.id === pair.id)?.targetChangedTracks ?? 0));
    return {
      name: `${h1Site}:${pair.h1Volume} -> ${session.h2Site}:${pair.h2Volume}`,
      id: pair.id,
      h1Site,
      h1Volume: pair.h1Volume,
      h2Site: session.h2Site,
      h2Volume: pair.h2Volume,
      state: pair.state,
      reason: pair.reason,
      outOfSyncTracks: pair.outOfSyncTracks,
      outOfSyncBytes: pair.outOfSyncTracks * pair.trackSize,
      targetChangedTracks: targetChanged,
      trackCount: pair.trackCount,
      trackSize: pair.trackSize,
      syncedPercent: pair.syncedPercent,
      lastVerify: verifies.get(pair.id) ?? null,
    };
  });
}

/** The flash sessions at `site` with a pair whose source or target is one of the session's volumes there. */
function touchingFlash(site: string, sessions: FlashSessionInfo[], volumes: Set<string>): ReportFlashSession[] {
  return sessions
    .filter((flash) => flash.pairs.some((pair) => volumes.has(pair.source) || volumes.has(pair.target)))
    .map((flash) => ({
      site,
      name: flash.name,
      state: flash.state,
      pointInTime: flash.pointInTime,
      withdrawnAt: flash.withdrawnAt ?? null,
      pairs: flash.pairs.map((pair) => ({ source: pair.source, target: pair.target, state: pair.state, percent: pair.percent, remoteTarget: pair.remoteTarget })),
    }));
}

/** Where the session's journal is kept: its secondary (H2) while it receives (H1 -> H2); none while H2 is the source. */
function journalSite(session: SessionInfo): string | null {
  return session.direction === 'h1-h2' ? session.h2Site : null;
}

/**
 * The session's journal at its secondary site (H2, while it receives), with every bookmark; null
 * when that site keeps none. A site not reached, or not answering, gives a
 * journal state unknown with the reason, never nothing.
 */
async function protectionAt(site: string, found: ReachedSite | undefined, reported: ReportSite | undefined, name: string): Promise<ReportProtection | null> {
  if (!found) return { site, journal: null, bookmarks: [], problem: reported?.problem ?? 'not reached' };
  try {
    const journal = await found.replication.journal(name);
    const bookmarks = await found.replication.bookmarks(name);
    return { site, journal, bookmarks: bookmarks.map((point) => ({ name: point.bookmark!, time: point.time, seq: point.seq })), problem: null };
  } catch (error) {
    if (error instanceof ProblemError && error.problem === 'not-found') return null;
    return { site, journal: null, bookmarks: [], problem: problemText(error) };
  }
}

/** What one site contributes to a session report. */
interface SiteShare {
  events: ReportEvent[];
  history: SessionHistory;
  flash: FlashSessionInfo[];
  audit: ReportAuditEntry[];
}

/**
 * Builds one session's part of a report. The session is read at `startSite`
 * (or, when that is unreachable, at any connected site that knows it), then
 * every site of the session is asked for its view, its events, its exposure
 * history and its flash copies. A site that does not answer is listed as
 * unreachable with the time and contributes nothing.
 */
async function sessionReport(access: SiteAccess, name: string, startSite: string, options: Required<ReportOptions>, range: { from: string; to: string }): Promise<SessionReport> {
  const checkedAt = options.now.toISOString();
  const sites = new Map<string, ReportSite>();
  const views = new Map<string, SessionInfo>();
  const reached = new Map<string, ReachedSite>();
  const unreachable = (site: string, since: string, problem: string) => {
    sites.set(site, { site, reachable: false, checkedAt, unreachableSince: since, problem });
    reached.delete(site);
    views.delete(site);
  };
  const ask = async (site: string): Promise<void> => {
    if (sites.has(site)) return;
    const found = access.reach(site);
    if (!isReached(found)) return unreachable(site, found.since, found.problem);
    try {
      views.set(site, await found.replication.session(name));
      reached.set(site, found);
      sites.set(site, { site, reachable: true, checkedAt, unreachableSince: null, problem: null });
    } catch (error) {
      // A site that answers but does not know the session (any more) is reached; it has nothing to add.
      if (error instanceof ProblemError && error.problem === 'not-found') {
        sites.set(site, { site, reachable: true, checkedAt, unreachableSince: null, problem: null });
        return;
      }
      unreachable(site, checkedAt, problemText(error));
    }
  };

  await ask(startSite);
  for (const site of access.connected()) {
    if (views.size > 0) break;
    await ask(site);
  }
  const any = [...views.values()][0];
  if (!any) {
    const start = sites.get(startSite);
    if (start && !start.reachable) throw new ProblemError('agent-unreachable', `site ${startSite} is not reachable (${start.problem}) and no other connected site knows session ${name}`);
    throw new ProblemError('not-found', `no connected site knows a session named ${name}`);
  }
  await Promise.all(sessionSites(any).map(ask));
  // Only the session's own sites belong in its report (a site asked only to find the session does not).
  const own = new Set(sessionSites(any));
  for (const site of [...sites.keys()]) if (!own.has(site)) sites.delete(site);

  const [viewSite, view] = shownView(views, any);
  const shares = new Map<string, SiteShare>();
  await Promise.all(
    [...reached.values()].filter((site) => own.has(site.site)).map(async (site) => {
      try {
        const [events, history, flash, audit] = await Promise.all([
          site.replication.sessionEvents(name, options.eventLimit),
          site.replication.sessionHistory(name, { from: range.from, to: range.to, maxPoints: options.historyPoints }),
          site.flash.sessions(),
          site.replication.sessionAudit(name, options.auditLimit),
        ]);
        shares.set(site.site, {
          events: events.map((event) => ({ ...event, site: site.site })),
          history,
          flash,
          audit: audit.map((entry) => ({ ...entry, site: site.site })),
        });
      } catch (error) {
        if (site.site !== viewSite) unreachable(site.site, checkedAt, problemText(error));
        else sites.set(site.site, { site: site.site, reachable: false, checkedAt, unreachableSince: checkedAt, problem: problemText(error) });
      }
    }),
  );

  const kept = journalSite(view);
  const protection = kept === null ? null : await protectionAt(kept, reached.get(kept), sites.get(kept), name);
  const sets = copySets(view, [...views.values()]);
  const volumesAt = (site: string) =>
    new Set(sets.flatMap((set) => [...(set.h1Site === site ? [set.h1Volume] : []), ...(set.h2Site === site ? [set.h2Volume] : [])]));
  const ordered = [...own].filter((site) => shares.has(site));
  return {
    site: viewSite,
    session: view,
    sites: [...own].map((site) => sites.get(site)!).filter(Boolean),
    copySets: sets,
    events: ordered
      .flatMap((site) => shares.get(site)!.events)
      .sort((a, b) => a.time.localeCompare(b.time) || a.site.localeCompare(b.site) || a.id - b.id),
    history: ordered.map((site) => shares.get(site)!.history),
    flashSessions: ordered.flatMap((site) => touchingFlash(site, shares.get(site)!.flash, volumesAt(site))),
    audit: ordered
      .flatMap((site) => shares.get(site)!.audit)
      .sort((a, b) => a.time.localeCompare(b.time) || a.site.localeCompare(b.site) || a.id - b.id),
    protection,
  };
}

/** Every site any part of the report needed, unreachable ones first as reported. */
function allSites(reports: SessionReport[], extra: ReportSite[]): ReportSite[] {
  const byName = new Map<string, ReportSite>();
  for (const site of [...extra, ...reports.flatMap((report) => report.sites)]) {
    const known = byName.get(site.site);
    if (!known || (known.reachable && !site.reachable)) byName.set(site.site, site);
  }
  return [...byName.values()].sort((a, b) => a.site.localeCompare(b.site));
}

function defaults(options: ReportOptions): Required<ReportOptions> {
  return { ...options, auditLimit: options.auditLimit ?? 1000, now: options.now ?? new Date() };
}

function historyRange(options: Required<ReportOptions>) {
  return { from: new Date(options.now.getTime() - options.historySeconds * 1000).toISOString(), to: options.now.toISOString() };
}

/** A session's report, read at `site` and at every other site of the session. */
export async function buildSessionReport(access: SiteAccess, site: string, name: string, reportOptions: ReportOptions): Promise<ReportDocument> {
  const options = defaults(reportOptions);
  const range = historyRange(options);
  const report = await sessionReport(access, name, site, options, range);
  return {
    kind: 'session',
    title: `Session ${name}`,
    generatedAt: options.now.toISOString(),
    historyFrom: range.from,
    historyTo: range.to,
    sites: allSites([report], []),
    cluster: null,
    clusterHistory: null,
    sessions: [report],
    missing: [],
  };
}

/**
 * A cluster (as its processor's site reports it, with its master data set
 * history) and every member session, each read at its own sites. A member
 * the console cannot read anywhere is listed as missing with the reason.
 */
export async function buildClusterReport(access: SiteAccess, site: string, name: string, reportOptions: ReportOptions, historyRecords = 200): Promise<ReportDocument> {
  const options = defaults(reportOptions);
  const range = historyRange(options);
  const processor = access.reach(site);
  if (!isReached(processor)) throw new ProblemError('agent-unreachable', `site ${site} (the cluster's processor) is not reachable: ${processor.problem}`);
  const [cluster, clusterHistory] = await Promise.all([processor.replication.cluster(name), processor.replication.clusterHistory(name, historyRecords)]);
  const sessions: SessionReport[] = [];
  const missing: ReportMissingSession[] = [];
  for (const member of cluster.members) {
    try {
      sessions.push(await sessionReport(access, member.session, member.local ? site : member.site, options, range));
    } catch (error) {
      if (!(error instanceof ProblemError)) throw error;
      missing.push({ session: member.session, site: member.site, reason: problemText(error) });
    }
  }
  const missingSites = missing.map((member): ReportSite => {
    const found = access.reach(member.site);
    return isReached(found)
      ? { site: member.site, reachable: true, checkedAt: options.now.toISOString(), unreachableSince: null, problem: null }
      : { site: member.site, reachable: false, checkedAt: options.now.toISOString(), unreachableSince: found.since, problem: found.problem };
  });
  const processorSite: ReportSite = { site, reachable: true, checkedAt: options.now.toISOString(), unreachableSince: null, problem: null };
  return {
    kind: 'cluster',
    title: `Cluster ${name}`,
    generatedAt: options.now.toISOString(),
    historyFrom: range.from,
    historyTo: range.to,
    sites: allSites(sessions, [processorSite, ...missingSites]),
    cluster,
    clusterHistory,
    sessions,
    missing,
  };
}
