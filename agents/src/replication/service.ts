import type { Logger } from 'pino';
import {
  ProblemError,
  type FailbackOptions,
  type FailbackPreflight,
  type SessionAction,
  type SessionInfo,
  type SessionState,
  type SessionType,
  type VerifyReport,
  type SessionActionOptions,
} from '@tandem/contract';
import type { StorageEngine } from '../storage/engine.ts';
import { CopySets } from './copy-sets.ts';
import { CopySetVolumes } from './broken-copy-sets.ts';
import { skewToCorrect, type ClockEstimate } from './link/clock-offset.ts';
import type { RpcRequest, RpcResult } from './link/rpc-connection.ts';
import { Mirroring } from './mirroring.ts';
import { Rounds } from './rounds.ts';
import { MultiPrimarySessions } from './multi-primary.ts';
import { problemMessage, type PairSource } from './pair-source.ts';
import type { PeerRegistry } from './peers.ts';
import { SessionActions } from './session-actions.ts';
import { SessionFailback } from './session-failback.ts';
import { Joining } from './joining.ts';
import { RunningCopySets } from './running-copy-sets.ts';
import { SessionReports } from './session-reports.ts';
import { isHeld, SessionStore, type HeldCopySet, type SessionRecord } from './session-store.ts';
import { SessionRole } from './role.ts';
import { SessionVerifier } from './session-verify.ts';
import { inertFaults, type ReplicationFaults } from './faults.ts';
import type { TapSource, WriteTap } from '../write-path/splitter.ts';
import type { ReplicationHooks } from './hooks.ts';
import { TargetChangedTap, WriteInhibitTap } from '../write-path/target-taps.ts';
import { TargetHandlers } from './target.ts';
import { GroupApplier } from './group-applier.ts';
import { JournalFeed } from './journal-feed.ts';
import type { CycleReport, SnapshotShipper } from './shipping-source.ts';
import { ShippingReceiver } from './shipping-target.ts';
import { ShippingSessions } from './shipping-sessions.ts';

/**
 * Mirroring between sites: sessions of copy sets, the state machine, the
 * splitter taps of local volumes, and the peer-link requests the other site
 * sends. A command may reach either site; it is executed by the site that
 * must act (the source for start, suspend, resume and terminate; the target
 * for recover and failback) and the other site is kept informed.
 *
 * This class is the facade and holds what every part shares (the session and
 * pair records, their lookups, the splitter taps and state changes); the
 * parts live in their own modules: copy sets (copy-sets.ts), actions
 * (session-actions.ts), mirroring at the source (mirroring.ts), snapshot
 * shipping (shipping-sessions.ts), failback (session-failback.ts), online
 * verify (session-verify.ts) and reports (session-reports.ts). The parts
 * take the narrow interfaces of hooks.ts, not this class: it satisfies them
 * (ReplicationHooks), and they call each other through them. Commands here
 * are the API's and the CLI's; the peer-link requests (target.ts) reach the
 * parts directly.
 */
export class ReplicationService implements TapSource, ReplicationHooks {
  readonly store: SessionStore;
  /** Every session record of this site, by id (shared with the parts). */
  readonly sessions = new Map<string, SessionRecord>();
  /** Every pair record of this site, by id (shared with the parts). */
  readonly pairs = new Map<string, HeldCopySet>();
  private tapCache = new Map<string, WriteTap[]>();
  /** Per session: the site that executed the transition its state reflects, and when this site learned it (not kept across restarts). */
  readonly stateOrigins = new Map<string, { site: string; at: string }>();
  /** Serves the other site's peer-link requests (public for tests' fault injection). */
  readonly target: TargetHandlers;
  readonly applier: GroupApplier;
  /** Continuous data protection: the journals of sessions this agent is the secondary of (journal-feed.ts). */
  readonly journals: JournalFeed;
  /** Snapshot-shipping sessions this site is the target of: staged cycles, applied all-or-nothing. */
  readonly receiver: ShippingReceiver;
  readonly mirroring: Mirroring;
  readonly shipping: ShippingSessions;
  readonly copySets: CopySets;
  readonly actions: SessionActions;
  readonly failback: SessionFailback;
  readonly verifier: SessionVerifier;
  readonly reports: SessionReports;
  /**
   * Settles once what was staged or committed here before a restart (async
   * groups and parts, shipping cycles) is applied: peer requests wait for it,
   * as anything they bring is newer.
   */
  readonly recovered: Promise<void>;
  private markRecovered!: () => void;
  /** Async sessions with primary volumes on several agents: control agent, member and secondary roles. */
  readonly multiPrimary: MultiPrimarySessions;
  /** The rounds of every async session: the cut coordinator where this agent drives them, hold and cut as a participant, stage and commit as a secondary. */
  readonly rounds: Rounds;
  /** Copy sets added to or removed from sessions that were started. */
  readonly running: RunningCopySets;
  /** Copy sets copied before they become members of their session's consistency group. */
  readonly joining: Joining;
  /** Copy sets hold their volumes by id: broken ones (volume gone or another one) are found, recorded and reported. */
  readonly copySetVolumes: CopySetVolumes;

  constructor(
    readonly engine: StorageEngine,
    readonly peers: PeerRegistry,
    readonly agentId: string,
    readonly site: string,
    readonly logger: Logger,
    /** Injected by tests (faults.ts); inert in an agent. */
    readonly faults: ReplicationFaults = inertFaults(),
  ) {
    this.recovered = new Promise<void>((resolve) => (this.markRecovered = resolve));
    this.store = new SessionStore(engine.catalog);
    for (const session of this.store.sessions()) this.sessions.set(session.id, session);
    for (const record of this.store.copySets()) if (isHeld(record)) this.pairs.set(record.id, record);
    this.mirroring = new Mirroring(this);
    this.shipping = new ShippingSessions(this);
    this.copySets = new CopySets(this);
    this.actions = new SessionActions(this);
    this.failback = new SessionFailback(this);
    this.verifier = new SessionVerifier(this);
    this.reports = new SessionReports(this);
    this.multiPrimary = new MultiPrimarySessions(this);
    this.rounds = new Rounds(this);
    this.running = new RunningCopySets(this);
    this.joining = new Joining(this);
    this.copySetVolumes = new CopySetVolumes(this);
    this.target = new TargetHandlers(this);
    // Cut and cycle times are stamped by the sending site's clock: kept here in this site's (see clock.ts).
    this.applier = new GroupApplier(
      engine,
      (session) => this.pairsOf(this.session(session)),
      (session, time) => {
        const local = this.toLocalTime(this.role(this.session(session)).otherAgent, time);
        this.reports.appliedTimes.set(session, local);
        this.journals.roundApplied(session, local);
      },
      faults,
      (pair) => this.journals.replicaDevice(pair),
    );
    this.receiver = new ShippingReceiver(
      engine,
      (session) => this.pairsOf(this.session(session)),
      (session, time) => {
        const record = this.session(session);
        const local = this.toLocalTime(this.role(record).otherAgent, time);
        this.shipping.recordShippedTime(record, local);
        // Each committed cycle is a point of the session's journal.
        this.journals.roundApplied(session, local);
      },
      (pair) => this.journals.replicaDevice(pair),
    );
    this.journals = new JournalFeed(this);
  }

  /** Resumes what was running before a restart: mirroring sessions resync what their bitmaps mark. */
  start(): void {
    const cycles = this.receiver
      .recover()
      .then((applied) => applied > 0 && this.logger.info({ applied }, 're-applied committed shipping cycles'))
      .catch((error) => this.logger.error({ error: problemMessage(error) }, 'committed shipping cycles could not be applied'));
    const groups = this.applier
      .recover()
      .then((applied) => applied > 0 && this.logger.info({ applied }, 're-applied staged consistency groups'))
      .catch((error) => this.logger.error({ error: problemMessage(error) }, 'staged consistency groups could not be applied'));
    void Promise.all([cycles, groups]).then(() => this.markRecovered());
    // Copy sets whose volume went while the agent was stopped are broken: recorded once, their sessions stopped (below).
    this.copySetVolumes.check();
    for (const session of this.sessions.values()) {
      // Every agent sharing a started session is kept dialled (heartbeats): a silent one is noticed and reported.
      this.watchPeers(session);
      // A multi-primary member waits for its control agent to run it again.
      if (this.role(session).member) continue;
      if (!this.role(session).source) continue;
      if (session.state === 'preparing' || session.state === 'prepared') {
        void this.mirroring.runMirroring(session).catch((error) => this.logger.warn({ error: problemMessage(error) }, 'resume failed'));
      } else if (session.state === 'suspended' || session.state === 'suspending') {
        // A suspend the agent did not finish is over now (nothing mirrors after a restart).
        if (session.state === 'suspending') this.setState(session, 'suspended');
        // Suspended by a failure, not by the admin: it resumes once its links are up, as it would have without the restart.
        if (session.detail) this.mirroring.watchForLink(session);
      }
    }
  }

  /** Keeps a peer link (with heartbeats) to every other agent of a started session, so its silence is seen at once. */
  watchPeers(session: SessionRecord): void {
    if (session.state === 'defined') return;
    for (const agent of this.multiPrimary.otherAgents(session)) {
      try {
        this.peers.link(agent);
      } catch {
        // Not paired (any more): reported as such where it matters.
      }
    }
  }

  // --- clocks ---

  /** Another agent's clock as measured over the link to it (null before a measurement, or when not paired). */
  clockOf(agentId: string): ClockEstimate | null {
    try {
      return this.peers.link(agentId).clock.estimate;
    } catch {
      return null;
    }
  }

  /**
   * A time (ms) another agent stamped with its clock, in this agent's clock: unchanged before its clock was
   * measured, and while the two clocks agree within what the measurement can tell (`skewToCorrect`).
   */
  toLocalTime(agentId: string, time: number): number {
    const estimate = this.clockOf(agentId);
    return skewToCorrect(estimate) ? Math.round(time - estimate!.offsetMs) : time;
  }

  /** The same for an ISO time (null stays null). */
  toLocalIso(agentId: string, time: string | null): string | null {
    if (time === null) return null;
    const ms = Date.parse(time);
    return Number.isFinite(ms) ? new Date(this.toLocalTime(agentId, ms)).toISOString() : time;
  }

  // --- lookups ---

  session(nameOrId: string): SessionRecord {
    const direct = this.sessions.get(nameOrId);
    if (direct) return direct;
    for (const session of this.sessions.values()) if (session.name === nameOrId) return session;
    throw new ProblemError('not-found', `there is no session named ${nameOrId}`);
  }

  pair(id: string): HeldCopySet {
    const pair = this.pairs.get(id);
    if (!pair) throw new ProblemError('not-found', `there is no copy set ${id}`);
    return pair;
  }

  pairsOf(session: SessionRecord): HeldCopySet[] {
    return [...this.pairs.values()].filter((pair) => pair.sessionId === session.id);
  }

  /** What this agent is in `session` (role.ts): the one place the session's agent ids are compared with this agent's. */
  role(session: SessionRecord): SessionRole {
    return new SessionRole(session, this.agentId, () => this.multiPrimary.memberCopySets(session).length);
  }

  link(session: SessionRecord) {
    return this.peers.link(this.role(session).otherAgent);
  }

  /** The link to the agent holding a copy set's other volume (differs per copy set at a multi-primary session's secondary site). */
  pairLink(session: SessionRecord, pair: HeldCopySet) {
    return this.peers.link(this.multiPrimary.pairAgent(session, pair));
  }

  sourceOf(pair: HeldCopySet): PairSource | undefined {
    return this.mirroring.sources.get(pair.id);
  }

  // --- the splitter's taps ---

  tapsFor(volume: string): WriteTap[] {
    let taps = this.tapCache.get(volume);
    if (!taps) {
      taps = this.computeTaps(volume);
      this.tapCache.set(volume, taps);
    }
    return taps;
  }

  private computeTaps(volume: string): WriteTap[] {
    const taps: WriteTap[] = [];
    const id = this.engine.volumeIdOrNull(volume);
    for (const pair of this.pairs.values()) {
      // A volume made again under a copy set's volume name is another volume: no tap of that copy set (it is broken).
      if (pair.localVolume !== volume || pair.localVolumeId !== id || pair.broken) continue;
      const session = this.sessions.get(pair.sessionId)!;
      if (session.state === 'defined') continue;
      if (this.role(session).source) {
        // Not mirroring (suspended, stopped for a recover, or not resumed yet after a restart), host writes still mark.
        const source = this.mirroring.sources.get(pair.id) ?? (pair.outOfSyncBitmap !== null ? this.mirroring.ensureSource(session, pair) : undefined);
        if (source) taps.push(source);
      } else if (session.state === 'target-available' && pair.targetChangedBitmap !== null) {
        taps.push(new TargetChangedTap(this.engine, pair.targetChangedBitmap));
      } else if (session.state !== 'target-available') {
        taps.push(new WriteInhibitTap(volume, session.name));
      }
    }
    return taps;
  }

  /** Forgets the computed taps; the splitter asks again on the next write. */
  refreshTaps(): void {
    this.tapCache = new Map();
  }

  // --- state ---

  /** Changes a session's state here, records the transition and tells the other site. */
  setState(session: SessionRecord, state: SessionState, changes: Partial<SessionRecord> = {}, notify = true, from = this.site): void {
    const previous = session.state;
    Object.assign(session, changes, { state, updatedAt: new Date().toISOString() });
    // Recoverable: a consistent image exists at the target. Prepared: yes; a resync (preparing) makes it inconsistent until
    // duplex, unless only copy sets joining copy (the members stay consistent); suspended keeps what held when it stopped.
    if (changes.recoverable === undefined && from === this.site) {
      if (state === 'prepared') session.recoverable = true;
      else if (state === 'defined') session.recoverable = false;
      // (Snapshot shipping: the target keeps the last committed cycle's image whatever the next cycle does.)
      else if (state === 'preparing') session.recoverable = session.type === 'snapshot-shipping' ? session.consistencyTime !== null : this.joining.onlyJoining(session);
    }
    this.stateOrigins.set(session.id, { site: from, at: session.updatedAt });
    this.watchPeers(session);
    this.store.saveSession(session);
    this.refreshTaps();
    if (previous !== state) {
      this.engine.catalog.recordEvent(
        'session.state',
        state === 'suspended' && session.detail ? 'warning' : 'info',
        session.name,
        `session ${session.name}: ${previous} -> ${state}${session.detail ? ` (${session.detail})` : ''}`,
        { from: previous, to: state, direction: session.direction },
      );
    }
    if (notify) void this.pushState(session);
  }

  /** Tells the agents that follow this site's state (see MultiPrimarySessions.stateAgents); an agent not reached is skipped. */
  async pushState(session: SessionRecord): Promise<void> {
    // A multi-primary member's state is its own; the control agent tells the secondary the session's, the secondary site (H2->H1) every H1 agent.
    await Promise.all(
      this.multiPrimary.stateAgents(session).map(async (agent) => {
        try {
          await this.peers.link(agent).call('session.state', { session: session.id, record: session }, null, { waitForLinkMs: 2000 });
        } catch (error) {
          this.logger.debug({ session: session.name, error: problemMessage(error) }, 'could not tell the other site');
        }
      }),
    );
  }

  /** Applies a state another site reports (its view of a transition it executed); `from`: that site's agent id. */
  applyRemoteState(record: SessionRecord, from: string): void {
    const session = this.session(record.id);
    const wasSource = this.role(session).source;
    // A target being recovered keeps its state until the recover completes: a late report of the old source
    // (a suspend after a failed round, say) must not make it a target again.
    if (!wasSource && session.state === 'recovering' && record.direction === session.direction && record.state !== 'target-available') {
      this.logger.debug({ session: session.name, state: record.state }, 'recovering: the source\'s state report is ignored');
      return;
    }
    this.setState(
      session,
      record.state,
      {
        direction: record.direction,
        recoverable: record.recoverable,
        detail: record.detail,
        // Stamped by the other site's clock (a suspension, a shipped cycle): read in this site's.
        consistencyTime: this.toLocalIso(from, record.consistencyTime),
        // The last verify is recorded at the source: the newer result wins.
        lastVerify:
          record.lastVerify && (!session.lastVerify || record.lastVerify.finishedAt > session.lastVerify.finishedAt)
            ? record.lastVerify
            : session.lastVerify,
      },
      false,
      this.multiPrimary.siteOf(from),
    );
    if (wasSource && !this.role(session).source) this.mirroring.dropSources(session);
    // A multi-primary member told by the secondary that it was recovered: its copy sets stop shipping (if the control agent
    // could not stop them) and keep marking what changes here for the failback.
    const mirroring = this.pairsOf(session).some((pair) => this.sourceOf(pair)?.mirroring);
    if (record.state === 'target-available' && wasSource && mirroring && this.role(session).member) {
      void this.mirroring.stopSource(session, 'the target was recovered');
    }
    // Prepared is reported only once no copy set joins: every initial copy completed (a lost pair.joined too).
    if (record.state === 'prepared') this.joining.initialCopiesDone(session);
  }

  // --- commands (API and CLI), delegated to the parts ---

  createSession(name: string, type: SessionType, peer: string, options: { shipIntervalMs?: number } = {}): Promise<SessionRecord> {
    return this.copySets.createSession(name, type, peer, options);
  }

  /** Adds a copy set: a local (H1) volume and a volume of the same size at the other site. */
  addPair(sessionName: string, h1Volume: string, h2Volume: string, options: { primaryAgent?: string } = {}): Promise<HeldCopySet> {
    return this.copySets.addPair(sessionName, h1Volume, h2Volume, options);
  }

  removePair(sessionName: string, h1Volume: string, options: { primaryAgent?: string } = {}): Promise<void> {
    return this.copySets.removePair(sessionName, h1Volume, options);
  }

  /** Runs an action here if this site must execute it, else forwards it to the other site. */
  act(sessionName: string, action: SessionAction, options: SessionActionOptions = {}): Promise<SessionInfo> {
    return this.actions.act(sessionName, action, options);
  }

  preflight(sessionName: string, options: { verifyCodes: boolean; fullCompare: boolean }): Promise<FailbackPreflight> {
    return this.failback.preflight(sessionName, options);
  }

  /** Online verify of a duplex session by segment codes (see SessionVerifier). */
  verify(sessionName: string, options: { forwarded?: boolean } = {}): Promise<VerifyReport> {
    return this.verifier.verify(sessionName, options);
  }

  /** Runs a snapshot-shipping cycle now (at the source; forwarded there from the target). */
  shipNow(sessionName: string): Promise<CycleReport> {
    return this.shipping.shipNow(sessionName);
  }

  /** Changes the time between cycles of a snapshot-shipping session at both sites. */
  setShipInterval(sessionName: string, intervalMs: number): Promise<SessionRecord> {
    return this.shipping.setInterval(sessionName, intervalMs);
  }

  /** Shipping statistics of a session at its source (for tests and benchmarks). */
  shippingOf(sessionName: string): SnapshotShipper | null {
    return this.shipping.shipperOf(this.session(sessionName));
  }

  // --- peer-link requests ---

  handle = (request: RpcRequest): Promise<RpcResult> => this.target.handle(request);

  // --- reports ---

  info(session: SessionRecord): SessionInfo {
    return this.reports.info(session);
  }

  /** The instant the targets hold a consistent image of (see SessionReports). */
  consistencyTime(session: SessionRecord): string | null {
    return this.reports.consistencyTime(session);
  }

  list(): SessionInfo[] {
    return this.reports.list();
  }

  /** Stops every cut round, shipping cycle and resync, and waits for them: nothing reaches the engine after this. */
  async close(): Promise<void> {
    this.multiPrimary.close();
    await this.rounds.close();
    await this.shipping.close();
    await this.mirroring.close();
    await this.journals.close();
  }
}
