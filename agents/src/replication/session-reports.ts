import { ProblemError, type PairBitmap, type PairInfo, type SessionHealth, type SessionInfo, type SessionPeer } from '@tandem/contract';
import { copySetState } from './copy-set-state.ts';
import { localVolumeName } from './copy-set-volumes.ts';
import { clockSkewInfo, describeSkew, skewWorthWarning } from './link/clock-offset.ts';
import type { ReplicationHooks } from './hooks.ts';
import type { HeldCopySet, SessionRecord } from './session-store.ts';

/** What session-reports uses of the service and the other parts (hooks.ts). */
export type SessionReportsHooks = Pick<
  ReplicationHooks,
  'agentId' | 'copySetVolumes' | 'engine' | 'joining' | 'logger' | 'mirroring' | 'multiPrimary' | 'pairLink' | 'pairsOf' | 'peers' | 'role' | 'rounds' | 'session' | 'sessions' | 'shipping' | 'site' | 'sourceOf' | 'stateOrigins'
>;

/**
 * The site holding a copy set's H1 volume, for a multi-primary session (the
 * control agent's own copy sets included); undefined for a single-primary session.
 */
export function primarySiteFor(service: Pick<ReplicationHooks, 'multiPrimary' | 'role' | 'agentId'>, session: SessionRecord, pair: HeldCopySet): string | undefined {
  const multi = service.multiPrimary;
  if (!service.role(session).multiPrimary) return undefined;
  return multi.primarySiteOf(pair) ?? multi.siteOf(service.role(session).member ? service.agentId : session.controlAgentId);
}

/** How long another agent of a started session may be unreachable before the session's health says so. */
const PEER_SILENCE_WARNING_MS = Number(process.env.TANDEM_PEER_SILENCE_MS) || 5000;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** What the API and the CLI show of sessions: state, health, consistency time and per-pair detail. */
export class SessionReports {
  /** Async sessions this site is the target of: the applied groups' cut times. */
  readonly appliedTimes = new Map<string, number>();

  constructor(private readonly service: SessionReportsHooks) {}

  /**
   * The other agents of the session as this one sees them over its own peer
   * links: reachable or not, since when. Their part follows the current
   * direction (the agents holding H1 volumes send H1->H2).
   */
  peers(session: SessionRecord): SessionPeer[] {
    const service = this.service;
    if (session.state === 'defined') return [];
    const h1Sends = session.direction === 'h1-h2';
    return service.multiPrimary.otherAgents(session).map((agent) => {
      const link = service.peers.link(agent);
      const holdsH1 = agent !== session.peerAgentId;
      return {
        site: service.multiPrimary.siteOf(agent),
        role: holdsH1 === h1Sends ? 'source' : 'target',
        link: link.state,
        since: iso(link.stateSince),
        unreachableSince: iso(link.unreachableSince),
        clock: clockSkewInfo(link.clock.estimate),
      };
    });
  }

  info(session: SessionRecord): SessionInfo {
    const service = this.service;
    const now = Date.now();
    const role = service.role(session);
    const local = role.site;
    const otherSite = service.peers.get(role.otherAgent).site;
    const pairs = service.pairsOf(session).map((pair) => this.pairInfo(session, pair));
    // Copy sets whose volume is gone (here or at the other site): the session mirrors nothing until they are removed.
    const broken = pairs.filter((pair) => pair.state === 'failed');
    // Multi-primary control agent: the copy sets on the other primary agents, as they last reported.
    if (role.controlsMembers) pairs.push(...service.multiPrimary.memberPairInfos(session));
    const peers = this.peers(session);
    // Another agent silent for a while: what this agent knows of the session is as of then (health at least warning).
    const silent = peers.filter((peer) => peer.unreachableSince !== null && now - Date.parse(peer.unreachableSince) >= PEER_SILENCE_WARNING_MS);
    let health: SessionHealth =
      session.state === 'defined'
        ? 'inactive'
        : session.state === 'suspended' && session.detail
          ? 'severe'
          : session.state === 'prepared'
            ? 'normal'
            : 'warning';
    // Another agent's clock far off this one's: what it stamps is read in this agent's clock, but the hosts need NTP.
    const skewed = peers.filter((peer) => skewWorthWarning(peer.clock));
    if ((silent.length > 0 || skewed.length > 0) && health === 'normal') health = 'warning';
    if (broken.length > 0) health = 'severe';
    const unreachable = silent.map((peer) => `${peer.role === 'source' ? 'primary' : 'secondary'} site ${peer.site} unreachable since ${peer.unreachableSince}`);
    // Broken copy sets first (they need the administrator), then unreachable agents, then the state's own detail.
    const said = session.detail ?? '';
    const mentioned = (pair: PairInfo) => said.includes(`copy set ${pair.h1Volume} -> ${pair.h2Volume} `);
    const lead: string[] = broken.some(mentioned) ? [said] : [];
    for (const pair of broken) if (!mentioned(pair)) lead.push(`copy set ${pair.h1Volume} -> ${pair.h2Volume} broken: ${pair.reason}`);
    const own = lead.includes(said) ? null : session.detail;
    const rest = unreachable.length > 0 ? `${unreachable.join('; ')} (last known: ${session.state}${own ? `, ${own}` : ''})` : own;
    const clocks = skewed.map((peer) => `${describeSkew(peer.site, peer.clock!)}: times are shown in ${service.site}'s clock; set the hosts' clocks right (NTP)`);
    const detail = [...lead, ...(rest ? [rest] : []), ...clocks].join('; ') || null;
    const consistencyTime = this.consistencyTime(session, peers);
    const origin = service.stateOrigins.get(session.id) ?? { site: service.site, at: session.updatedAt };
    return {
      id: session.id,
      name: session.name,
      type: session.type,
      state: session.state,
      health,
      direction: session.direction,
      recoverable: session.recoverable,
      role: local,
      h1Site: local === 'h1' ? service.site : otherSite,
      h2Site: local === 'h1' ? otherSite : service.site,
      consistencyTime,
      exposureSeconds: consistencyTime ? Math.max(0, (now - Date.parse(consistencyTime)) / 1000) : null,
      detail,
      pairs,
      shipIntervalSeconds: session.type === 'snapshot-shipping' ? service.shipping.intervalOf(session) / 1000 : null,
      lastVerify: session.lastVerify ?? null,
      createdAt: session.createdAt,
      updatedAt: session.updatedAt,
      observedAt: new Date(now).toISOString(),
      stateFrom: origin,
      peers,
    };
  }

  /**
   * The instant the targets hold a consistent image of: now for a prepared
   * sync session (no later than the moment the other side of the mirror
   * became unreachable: nothing after it is known to be there), the last
   * applied group's cut for an async one, the suspension time otherwise.
   */
  consistencyTime(session: SessionRecord, peers: SessionPeer[] = this.peers(session)): string | null {
    if (session.type === 'snapshot-shipping') return session.consistencyTime;
    if (session.type === 'async' && (session.state === 'prepared' || session.state === 'preparing')) {
      const role = this.service.role(session);
      const time = role.drivesRounds
        ? this.service.rounds.committedTime(session)
        : role.source
        ? this.service.mirroring.shippers.get(session.id)?.lastApplied?.time
        : this.appliedTimes.get(session.id);
      // Copy sets still joining are not members yet: the time covers the members (see running-copy-sets.ts).
      const members = session.state === 'prepared' || this.service.joining.onlyJoining(session);
      if (time !== undefined && members) return new Date(time).toISOString();
      return session.consistencyTime;
    }
    if (!(session.state === 'prepared' || this.service.joining.onlyJoining(session))) return session.consistencyTime;
    const lost = peers.map((peer) => peer.unreachableSince).filter((since): since is string => since !== null).sort()[0];
    return lost ?? new Date().toISOString();
  }

  private pairInfo(session: SessionRecord, pair: HeldCopySet): PairInfo {
    const service = this.service;
    const engine = service.engine;
    const brokenReason = service.copySetVolumes.reasonOf(pair);
    if (brokenReason !== null) return this.brokenPairInfo(session, pair, brokenReason);
    const source = service.sourceOf(pair);
    const trackCount = engine.getVolume(pair.localVolume).trackCount;
    let copyBytes: PairInfo['copyBytes'] = null;
    const outOfSync = source ? source.outOfSyncTracks : pair.outOfSyncBitmap !== null ? engine.bitmaps.view(pair.outOfSyncBitmap).setCount : 0;
    const targetChanged = pair.targetChangedBitmap !== null ? engine.bitmaps.view(pair.targetChangedBitmap).setCount : 0;
    let syncedPercent: number | null = null;
    let etaSeconds: number | null = null;
    const state = copySetState(session.state, () => {
      if (!service.role(session).source) return 'target';
      if (!source || source.reason) return 'stopped';
      if (service.pairLink(session, pair).state !== 'connected') return 'unreached';
      // A shipping session is preparing until its first cycle (the initial copy) is committed.
      return source.isResyncing || (session.type === 'snapshot-shipping' && session.state === 'preparing') ? 'copying' : 'mirroring';
    });
    if (state === 'syncing' && source && service.role(session).source) {
      // By the data that moves (an unallocated track is a trim); by tracks when none is allocated.
      const { total, copied, bytesTotal, bytesSent, startedAt } = source.progress;
      const [done, whole] = bytesTotal > 0 ? [Math.min(bytesSent, bytesTotal), bytesTotal] : [Math.min(copied, total), total];
      syncedPercent = whole === 0 ? 100 : Math.min(100, Math.round((done / whole) * 1000) / 10);
      copyBytes = { total: bytesTotal, done: bytesSent };
      const elapsed = (Date.now() - startedAt) / 1000;
      etaSeconds = done > 0 ? Math.round(((whole - done) * elapsed) / done) : null;
    }
    const primarySite = service.multiPrimary.primarySiteOf(pair);
    const pending = service.joining.initialCopyPending(pair);
    return {
      ...(primarySite ? { primarySite } : {}),
      ...(pending ? { consistent: false, inconsistentReason: 'initial copy not complete: recovered (or still copying) before it joined the consistency group' } : {}),
      id: pair.id,
      h1Volume: pair.h1Volume,
      h2Volume: pair.h2Volume,
      localVolumeId: pair.localVolumeId,
      state,
      reason: source?.reason ?? (state === 'suspended' ? session.detail : null),
      outOfSyncTracks: outOfSync,
      targetChangedTracks: targetChanged,
      trackCount,
      trackSize: engine.trackSize,
      syncedPercent,
      copyBytes,
      etaSeconds,
    };
  }

  /** A broken copy set (its volume gone, or another one under its name): failed, with why; nothing of its volume here is read. */
  private brokenPairInfo(session: SessionRecord, pair: HeldCopySet, reason: string): PairInfo {
    const service = this.service;
    const primarySite = service.multiPrimary.primarySiteOf(pair);
    // Its bitmap here may have gone with its volume.
    let outOfSync: { setCount: number; trackCount: number } | null = null;
    try {
      if (pair.outOfSyncBitmap !== null) {
        const view = service.engine.bitmaps.view(pair.outOfSyncBitmap);
        outOfSync = { setCount: view.setCount, trackCount: view.trackCount };
      }
    } catch {
      outOfSync = null;
    }
    return {
      ...(primarySite ? { primarySite } : {}),
      id: pair.id,
      h1Volume: pair.h1Volume,
      h2Volume: pair.h2Volume,
      state: 'failed',
      reason,
      brokenSince: pair.broken?.since ?? null,
      localVolumeId: pair.localVolumeId,
      outOfSyncTracks: outOfSync?.setCount ?? 0,
      targetChangedTracks: 0,
      trackCount: outOfSync?.trackCount ?? 0,
      trackSize: service.engine.trackSize,
      syncedPercent: null,
      copyBytes: null,
      etaSeconds: null,
      consistent: false,
      inconsistentReason: `the copy set is broken: ${reason}`,
    };
  }

  /** Every session here; one that cannot be reported (a bug) is listed as such rather than failing the whole list. */
  list(): SessionInfo[] {
    return [...this.service.sessions.values()].map((session) => {
      try {
        return this.info(session);
      } catch (error) {
        this.service.logger.error({ session: session.name, error: error instanceof Error ? error.stack : String(error) }, 'session could not be reported');
        return this.unreportable(session, error);
      }
    });
  }

  private unreportable(session: SessionRecord, error: unknown): SessionInfo {
    const service = this.service;
    const local = service.role(session).site;
    let otherSite = service.role(session).otherAgent;
    try {
      otherSite = service.peers.get(otherSite).site;
    } catch {
      // Not paired any more: the agent id stands in.
    }
    const now = new Date().toISOString();
    return {
      id: session.id,
      name: session.name,
      type: session.type,
      state: session.state,
      health: 'severe',
      direction: session.direction,
      recoverable: session.recoverable,
      role: local,
      h1Site: local === 'h1' ? service.site : otherSite,
      h2Site: local === 'h1' ? otherSite : service.site,
      consistencyTime: session.consistencyTime,
      exposureSeconds: null,
      detail: `this agent could not report the session (${error instanceof Error ? error.message : String(error)}); see its log`,
      pairs: [],
      createdAt: session.createdAt,
      updatedAt: session.updatedAt,
      observedAt: now,
      stateFrom: service.stateOrigins.get(session.id) ?? { site: service.site, at: session.updatedAt },
      peers: [],
    };
  }

  /** A copy set's raw bitmap here (`pair`: its id, or its volume here or at the other site), as runs of set tracks. */
  pairBitmap(sessionName: string, pairRef: string, which: PairBitmap['which']): PairBitmap {
    const service = this.service;
    const session = service.session(sessionName);
    const pair = service
      .pairsOf(session)
      .find((p) => p.id === pairRef || p.localVolume === pairRef || p.h1Volume === pairRef || p.h2Volume === pairRef);
    if (!pair) throw new ProblemError('not-found', `session ${session.name} has no copy set ${pairRef} at this site`);
    const id = which === 'target-changed' ? pair.targetChangedBitmap : pair.outOfSyncBitmap;
    const trackCount = service.engine.getVolume(localVolumeName(service.engine, pair)).trackCount;
    const answer: PairBitmap = {
      session: session.name,
      pair: pair.id,
      h1Volume: pair.h1Volume,
      h2Volume: pair.h2Volume,
      which,
      kept: id !== null,
      trackCount,
      markedTracks: 0,
      runs: [],
    };
    if (id === null) return answer;
    const view = service.engine.bitmaps.view(id);
    for (let track = view.nextSet(0); track >= 0; ) {
      let end = track + 1;
      while (end < trackCount && view.isSet(end)) end++;
      answer.runs.push([track, end - track]);
      answer.markedTracks += end - track;
      track = end < trackCount ? view.nextSet(end) : -1;
    }
    return answer;
  }
}
