import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  ProblemError,
  type FailbackOptions,
  type FailbackPreflight,
  type PairInfo,
  type SessionAction,
  type SessionInfo,
  type SessionState,
  type SessionType,
  type VerifyPairReport,
  type VerifyReport,
} from '@tandem/contract';
import type { StorageEngine } from '../storage/engine.ts';
import { planPair, summarizePlans, type PairPlan } from './failback.ts';
import type { RpcRequest, RpcResult } from './link/rpc-connection.ts';
import { PairSource, problemMessage } from './pair-source.ts';
import type { PeerRegistry } from './peers.ts';
import { SessionStore, type PairRecord, type SessionRecord } from './session-store.ts';
import type { TapSource, WriteTap } from './splitter.ts';
import { TargetChangedTap, WriteInhibitTap } from './target-taps.ts';
import { TargetHandlers } from './target.ts';
import { ConsistencyGroupShipper } from './async-groups.ts';
import { GroupApplier } from './group-applier.ts';
import { verifyPair } from './verify.ts';
import { DEFAULT_SHIP_INTERVAL_MS, SnapshotShipper, type CycleReport } from './shipping-source.ts';
import { ShippingReceiver } from './shipping-target.ts';

/** Which site executes an action: the source of the current direction, or its target. */
function executingRole(action: SessionAction): 'source' | 'target' {
  return action === 'recover' || action === 'failback' ? 'target' : 'source';
}

const allowed: Record<SessionAction, SessionState[]> = {
  start: ['defined'],
  suspend: ['preparing', 'prepared'],
  resume: ['suspended'],
  recover: ['suspended', 'prepared', 'preparing', 'recovering'],
  failback: ['target-available'],
  terminate: ['defined', 'preparing', 'prepared', 'suspending', 'suspended', 'recovering', 'target-available'],
};

/**
 * Mirroring between sites: sessions of copy sets, the state machine, the
 * splitter taps of local volumes, and the peer-link requests the other site
 * sends. A command may reach either site; it is executed by the site that
 * must act (the source for start, suspend, resume and terminate; the target
 * for recover and failback) and the other site is kept informed.
 */
export class ReplicationService implements TapSource {
  readonly store: SessionStore;
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly pairs = new Map<string, PairRecord>();
  private readonly sources = new Map<string, PairSource>();
  private tapCache = new Map<string, WriteTap[]>();
  /** Serves the other site's peer-link requests (public for tests' fault injection). */
  readonly target: TargetHandlers;
  private readonly suspending = new Map<string, Promise<void>>();
  /** Async sessions this site is the source of: their consistency-group masters. */
  private readonly shippers = new Map<string, ConsistencyGroupShipper>();
  /** Async sessions this site is the target of: the applied groups' cut times. */
  private readonly appliedTimes = new Map<string, number>();
  readonly applier: GroupApplier;
  private readonly verifying = new Set<string>();
  /** Snapshot-shipping sessions this site is the source of: their cycle runners. */
  private readonly shipping = new Map<string, SnapshotShipper>();
  /** Snapshot-shipping sessions this site is the target of: staged cycles, applied all-or-nothing. */
  readonly receiver: ShippingReceiver;
  /** Per snapshot-shipping session: the cycle interval (default TANDEM_SHIP_INTERVAL_MS or 30 s). */
  private readonly shipIntervals = new Map<string, number>();

  constructor(
    readonly engine: StorageEngine,
    readonly peers: PeerRegistry,
    readonly agentId: string,
    readonly site: string,
    private readonly logger: Logger,
  ) {
    this.store = new SessionStore(engine.catalog);
    for (const session of this.store.sessions()) this.sessions.set(session.id, session);
    for (const pair of this.store.pairs()) this.pairs.set(pair.id, pair);
    this.target = new TargetHandlers(this);
    this.applier = new GroupApplier(
      engine,
      (session) => this.pairsOf(this.session(session)),
      (session, time) => this.appliedTimes.set(session, time),
    );
    this.receiver = new ShippingReceiver(
      engine,
      (session) => this.pairsOf(this.session(session)),
      (session, time) => this.recordShippedTime(this.session(session), time),
    );
  }

  /** A shipping cycle with this snapshot instant is complete at the target: the session's consistency time. */
  private recordShippedTime(session: SessionRecord, time: number): void {
    session.consistencyTime = new Date(time).toISOString();
    this.store.saveSession(session);
  }

  /** Resumes what was running before a restart: mirroring sessions resync what their bitmaps mark. */
  start(): void {
    void this.receiver
      .recover()
      .then((applied) => applied > 0 && this.logger.info({ applied }, 're-applied committed shipping cycles'))
      .catch((error) => this.logger.error({ error: problemMessage(error) }, 'committed shipping cycles could not be applied'));
    void this.applier
      .recover()
      .then((applied) => applied > 0 && this.logger.info({ applied }, 're-applied staged consistency groups'))
      .catch((error) => this.logger.error({ error: problemMessage(error) }, 'staged consistency groups could not be applied'));
    for (const session of this.sessions.values()) {
      if (this.isSource(session) && (session.state === 'preparing' || session.state === 'prepared')) {
        void this.runMirroring(session).catch((error) => this.logger.warn({ error: problemMessage(error) }, 'resume failed'));
      }
    }
  }

  // --- lookups ---

  session(nameOrId: string): SessionRecord {
    const direct = this.sessions.get(nameOrId);
    if (direct) return direct;
    for (const session of this.sessions.values()) if (session.name === nameOrId) return session;
    throw new ProblemError('not-found', `there is no session named ${nameOrId}`);
  }

  pair(id: string): PairRecord {
    const pair = this.pairs.get(id);
    if (!pair) throw new ProblemError('not-found', `there is no pair ${id}`);
    return pair;
  }

  pairsOf(session: SessionRecord): PairRecord[] {
    return [...this.pairs.values()].filter((pair) => pair.sessionId === session.id);
  }

  localSite(session: SessionRecord): 'h1' | 'h2' {
    return session.controlAgentId === this.agentId ? 'h1' : 'h2';
  }

  otherAgent(session: SessionRecord): string {
    return session.controlAgentId === this.agentId ? session.peerAgentId : session.controlAgentId;
  }

  isSource(session: SessionRecord): boolean {
    const sourceSite = session.direction === 'h1-h2' ? 'h1' : 'h2';
    return this.localSite(session) === sourceSite;
  }

  link(session: SessionRecord) {
    return this.peers.link(this.otherAgent(session));
  }

  sourceOf(pair: PairRecord): PairSource | undefined {
    return this.sources.get(pair.id);
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
    for (const pair of this.pairs.values()) {
      if (pair.localVolume !== volume) continue;
      const session = this.sessions.get(pair.sessionId)!;
      if (session.state === 'defined') continue;
      if (this.isSource(session)) {
        const source = this.sources.get(pair.id);
        if (source) taps.push(source);
      } else if (session.state === 'target-available' && pair.targetChangedBitmap !== null) {
        taps.push(new TargetChangedTap(this.engine, pair.targetChangedBitmap));
      } else if (session.state !== 'target-available') {
        taps.push(new WriteInhibitTap(volume, session.name));
      }
    }
    return taps;
  }

  private refreshTaps(): void {
    this.tapCache = new Map();
  }

  /** The source-side runtime of a pair, made when first needed. */
  private ensureSource(session: SessionRecord, pair: PairRecord): PairSource {
    let source = this.sources.get(pair.id);
    if (!source) {
      source = new PairSource(pair, this.engine, this.link(session), {
        onLinkFailure: (failed, error) => this.suspendForError(session, failed, error),
        onDuplex: () => this.checkPrepared(session),
      });
      this.sources.set(pair.id, source);
    }
    return source;
  }

  private dropSources(session: SessionRecord): void {
    this.shippers.get(session.id)?.stop();
    this.shippers.delete(session.id);
    const shipper = this.shipping.get(session.id);
    if (shipper) void shipper.dispose().catch(() => {});
    this.shipping.delete(session.id);
    for (const pair of this.pairsOf(session)) {
      this.sources.get(pair.id)?.dispose();
      this.sources.delete(pair.id);
    }
  }

  // --- state ---

  /** Changes a session's state here, records the transition and tells the other site. */
  setState(session: SessionRecord, state: SessionState, changes: Partial<SessionRecord> = {}, notify = true): void {
    const previous = session.state;
    Object.assign(session, changes, { state, updatedAt: new Date().toISOString() });
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

  private async pushState(session: SessionRecord): Promise<void> {
    try {
      await this.link(session).call('session.state', { session: session.id, record: session }, null, { waitForLinkMs: 2000 });
    } catch (error) {
      this.logger.debug({ session: session.name, error: problemMessage(error) }, 'could not tell the other site');
    }
  }

  /** Applies a state the other site reports (its view of a transition it executed). */
  applyRemoteState(record: SessionRecord): void {
    const session = this.session(record.id);
    const wasSource = this.isSource(session);
    this.setState(
      session,
      record.state,
      {
        direction: record.direction,
        recoverable: record.recoverable,
        detail: record.detail,
        consistencyTime: record.consistencyTime,
      },
      false,
    );
    if (wasSource && !this.isSource(session)) this.dropSources(session);
  }

  /** A pair failed to reach the target: suspend every pair of the session (one consistency group), then acknowledge. */
  private suspendForError(session: SessionRecord, pair: PairSource, error: Error): Promise<void> {
    let pending = this.suspending.get(session.id);
    if (!pending) {
      pending = (async () => {
        const reason = problemMessage(error);
        this.setState(session, 'suspending', { detail: reason }, false);
        await this.stopSource(session, reason);
        this.setState(session, 'suspended', {
          detail: `pair ${pair.record.h1Volume}: ${reason}`,
          recoverable: true,
          consistencyTime: session.state === 'prepared' && session.type !== 'snapshot-shipping' ? new Date().toISOString() : session.consistencyTime,
        });
        this.watchForLink(session);
      })().finally(() => this.suspending.delete(session.id));
      this.suspending.set(session.id, pending);
    }
    return pending;
  }

  /** After a link failure, resume by itself once the link is back (the admin may suspend to stop it). */
  private watchForLink(session: SessionRecord): void {
    const link = this.link(session);
    const retry = async () => {
      if (session.state !== 'suspended' || !session.detail) return;
      try {
        await link.ready(60_000);
        if (session.state === 'suspended' && session.detail) await this.execute(session, 'resume', {});
      } catch {
        setTimeout(() => void retry(), 1000).unref();
      }
    };
    setTimeout(() => void retry(), 200).unref();
  }

  private checkPrepared(session: SessionRecord): void {
    if (session.state !== 'preparing') return;
    const all = this.pairsOf(session).every((pair) => {
      const source = this.sources.get(pair.id);
      return source && source.mirroring && !source.isResyncing;
    });
    if (all) this.setState(session, 'prepared', { detail: null, consistencyTime: null });
  }

  /** Mirrors host writes and resyncs every pair until duplex. */
  private async runMirroring(session: SessionRecord): Promise<void> {
    if (session.type === 'snapshot-shipping') return this.runShipping(session);
    const mode = session.type === 'semi-sync' ? 'semi-sync' : session.type === 'async' ? 'async' : 'sync';
    const sources = this.pairsOf(session).map((pair) => this.ensureSource(session, pair));
    if (mode === 'async') {
      const shipper = this.shipperFor(session, sources);
      for (const source of sources) source.shipper = shipper;
      shipper.start();
    }
    for (const source of sources) source.startMirroring(mode);
    this.refreshTaps();
    const marked = sources.reduce((sum, source) => sum + source.outOfSyncTracks, 0);
    this.engine.catalog.recordEvent('session.resync', 'info', session.name, `session ${session.name}: copying ${marked} marked track(s)`, {
      markedTracks: marked,
    });
    await Promise.all(sources.map((source) => source.resync()));
    if (sources.every((source) => source.mirroring)) {
      const copied = sources.reduce((sum, source) => sum + source.progress.copied, 0);
      const bytes = sources.reduce((sum, source) => sum + source.progress.bytesSent, 0);
      this.engine.catalog.recordEvent('session.synced', 'info', session.name, `session ${session.name}: copied ${copied} track(s)`, {
        copiedTracks: copied,
        bytesSent: bytes,
      });
    }
    setTimeout(() => this.checkPrepared(session), 0);
  }

  /** Snapshot shipping: host writes only mark tracks; cycles ship the marked tracks from snapshots. */
  private runShipping(session: SessionRecord): void {
    const sources = this.pairsOf(session).map((pair) => this.ensureSource(session, pair));
    for (const source of sources) source.startMirroring('snapshot-shipping');
    this.refreshTaps();
    let shipper = this.shipping.get(session.id);
    if (!shipper) {
      const interval = this.shipIntervals.get(session.id) ?? (Number(process.env.TANDEM_SHIP_INTERVAL_MS) || DEFAULT_SHIP_INTERVAL_MS);
      shipper = new SnapshotShipper(
        session.id,
        this.engine,
        this.link(session),
        () => this.pairsOf(session).map((pair) => this.ensureSource(session, pair)),
        {
          onCycle: (report) => this.cycleShipped(session, report),
          onFailure: (error) => void this.suspendForError(session, sources[0], error),
        },
        interval,
      );
      this.shipping.set(session.id, shipper);
    }
    const marked = sources.reduce((sum, source) => sum + source.outOfSyncTracks, 0);
    this.engine.catalog.recordEvent('session.resync', 'info', session.name, `session ${session.name}: shipping ${marked} marked track(s) every ${shipper.intervalMs / 1000} s`, {
      markedTracks: marked,
    });
    shipper.start();
  }

  private cycleShipped(session: SessionRecord, report: CycleReport): void {
    this.recordShippedTime(session, report.time);
    if (session.state === 'preparing') {
      this.engine.catalog.recordEvent('session.synced', 'info', session.name, `session ${session.name}: first cycle shipped ${report.tracks} track(s)`, {
        copiedTracks: report.tracks,
        bytesSent: report.bytesSent,
      });
      this.setState(session, 'prepared', { detail: null });
    }
  }

  /** Runs a snapshot-shipping cycle now (at the source; forwarded there from the target). Resolves when the target committed it. */
  async shipNow(sessionName: string): Promise<CycleReport> {
    const session = this.session(sessionName);
    if (session.type !== 'snapshot-shipping') throw new ProblemError('invalid-state', `session ${session.name} is ${session.type}, not snapshot-shipping`);
    if (!this.isSource(session)) {
      const forwarded = await this.link(session).call('session.ship-now', { session: session.id }, null, { waitForLinkMs: 3000, timeoutMs: 60 * 60_000 });
      return forwarded.result as CycleReport;
    }
    const shipper = this.shipping.get(session.id);
    if (!shipper?.active) throw new ProblemError('invalid-state', `session ${session.name} is ${session.state}; nothing is shipping`);
    const report = await shipper.shipNow();
    if (!report) throw new ProblemError('invalid-state', `session ${session.name} stopped shipping`);
    return report;
  }

  /** Shipping statistics of a session at its source (for tests and benchmarks). */
  shippingOf(sessionName: string): SnapshotShipper | null {
    return this.shipping.get(this.session(sessionName).id) ?? null;
  }

  // --- commands (API and CLI) ---

  async createSession(name: string, type: SessionType, peer: string, options: { shipIntervalMs?: number } = {}): Promise<SessionRecord> {
    const other = this.peers.get(peer);
    for (const session of this.sessions.values()) {
      if (session.name === name) throw new ProblemError('already-exists', `a session named ${name} already exists`);
    }
    const now = new Date().toISOString();
    const session: SessionRecord = {
      id: randomUUID(),
      name,
      type,
      controlAgentId: this.agentId,
      peerAgentId: other.agentId,
      state: 'defined',
      direction: 'h1-h2',
      recoverable: true,
      detail: null,
      consistencyTime: null,
      createdAt: now,
      updatedAt: now,
    };
    await this.peers.link(other.agentId).call('session.put', { record: session }, null, { waitForLinkMs: 5000 });
    this.store.saveSession(session);
    this.sessions.set(session.id, session);
    if (options.shipIntervalMs !== undefined) this.shipIntervals.set(session.id, options.shipIntervalMs);
    this.engine.catalog.recordEvent('session.created', 'info', name, `created ${type} session ${name} with ${other.site}`);
    return session;
  }

  /** Adds a copy set: a local (H1) volume and a volume of the same size at the other site. */
  async addPair(sessionName: string, h1Volume: string, h2Volume: string): Promise<PairRecord> {
    const session = this.session(sessionName);
    if (this.localSite(session) !== 'h1') {
      throw new ProblemError('invalid-state', `add copy sets at ${session.name}'s H1 site, where it was defined`);
    }
    if (session.state !== 'defined') {
      throw new ProblemError('invalid-state', `session ${session.name} is ${session.state}; copy sets are added while defined`);
    }
    const local = this.engine.getVolume(h1Volume);
    for (const pair of this.pairs.values()) {
      if (pair.localVolume === h1Volume) throw new ProblemError('volume-busy', `${h1Volume} is already in a copy set`);
    }
    const remote = await this.link(session).call('volume.size', { name: h2Volume }, null, { waitForLinkMs: 5000 });
    const remoteSize = (remote.result as { sizeBytes: number }).sizeBytes;
    if (remoteSize !== local.sizeBytes) {
      throw new ProblemError(
        'invalid-size',
        `${h1Volume} is ${local.sizeBytes} bytes but ${h2Volume} at the other site is ${remoteSize}; a copy set needs equal sizes`,
      );
    }
    const pair: PairRecord = {
      id: randomUUID(),
      sessionId: session.id,
      h1Volume,
      h2Volume,
      localVolume: h1Volume,
      localSite: 'h1',
      outOfSyncBitmap: null,
      targetChangedBitmap: null,
      createdAt: new Date().toISOString(),
    };
    await this.link(session).call('pair.put', { pair: { ...pair, localVolume: h2Volume, localSite: 'h2' } });
    this.store.savePair(pair);
    this.pairs.set(pair.id, pair);
    this.refreshTaps();
    this.engine.catalog.recordEvent('pair.added', 'info', session.name, `copy set ${h1Volume} -> ${h2Volume} added to ${session.name}`);
    return pair;
  }

  async removePair(sessionName: string, h1Volume: string): Promise<void> {
    const session = this.session(sessionName);
    if (session.state !== 'defined') {
      throw new ProblemError('invalid-state', `terminate session ${session.name} before removing copy sets`);
    }
    const pair = this.pairsOf(session).find((p) => p.h1Volume === h1Volume);
    if (!pair) throw new ProblemError('not-found', `${h1Volume} is not in session ${session.name}`);
    await this.link(session).call('pair.remove', { pair: pair.id }, null, { waitForLinkMs: 5000 }).catch(() => {});
    this.forgetPair(pair);
  }

  forgetPair(pair: PairRecord): void {
    this.sources.get(pair.id)?.dispose();
    this.sources.delete(pair.id);
    for (const bitmap of [pair.outOfSyncBitmap, pair.targetChangedBitmap]) {
      if (bitmap !== null) void this.engine.bitmaps.delete(bitmap).catch(() => {});
    }
    this.store.deletePair(pair.id);
    this.pairs.delete(pair.id);
    this.refreshTaps();
  }

  /** Runs an action here if this site must execute it, else forwards it to the other site. */
  async act(sessionName: string, action: SessionAction, options: Partial<FailbackOptions> = {}): Promise<SessionInfo> {
    const session = this.session(sessionName);
    if (!allowed[action].includes(session.state)) {
      throw new ProblemError('invalid-state', `session ${session.name} is ${session.state}; ${action} needs ${allowed[action].join(' or ')}`);
    }
    const here = this.isSource(session) ? 'source' : 'target';
    if (executingRole(action) === here || action === 'terminate') {
      await this.execute(session, action, options);
    } else {
      await this.link(session).call('session.action', { session: session.id, action, options }, null, {
        waitForLinkMs: 3000,
        timeoutMs: 10 * 60_000,
      });
    }
    return this.info(session);
  }

  /** Executes an action at this site (see `executingRole`). */
  async execute(session: SessionRecord, action: SessionAction, options: Partial<FailbackOptions>): Promise<void> {
    switch (action) {
      case 'start': {
        for (const pair of this.pairsOf(session)) {
          if (pair.outOfSyncBitmap === null) {
            pair.outOfSyncBitmap = await this.engine.bitmaps.create(this.engine.volumeId(pair.localVolume), 'allocated');
            this.store.savePair(pair);
          }
        }
        // The target starts from zeroes: tracks unallocated here then match without a copy.
        await this.link(session).call('session.prepare-target', { session: session.id }, null, { waitForLinkMs: 5000 });
        this.setState(session, 'preparing', { detail: null });
        void this.runMirroring(session);
        return;
      }
      case 'resume':
        this.setState(session, 'preparing', { detail: null });
        void this.runMirroring(session);
        return;
      case 'suspend':
        this.setState(session, 'suspending', {}, false);
        await this.stopSource(session, null);
        this.setState(session, 'suspended', {
          detail: null,
          recoverable: true,
          // A shipping target holds the last committed cycle, not the image of now.
          consistencyTime: session.type === 'snapshot-shipping' ? session.consistencyTime : new Date().toISOString(),
        });
        return;
      case 'recover':
        await this.recoverHere(session);
        return;
      case 'failback':
        await this.failbackHere(session, { verifyCodes: options.verifyCodes ?? true, fullCompare: options.fullCompare ?? false });
        return;
      case 'terminate':
        await this.terminateHere(session);
        await this.link(session)
          .call('session.terminated', { session: session.id }, null, { waitForLinkMs: 2000 })
          .catch(() => {});
        return;
    }
  }

  /** Failover: this site (the target) becomes writable and tracks what changes here. */
  private async recoverHere(session: SessionRecord): Promise<void> {
    this.setState(session, 'recovering', {}, false);
    // The source stops mirroring if it still can be told; the target refuses its writes anyway from now.
    await this.link(session)
      .call('session.stop-source', { session: session.id }, null, { waitForLinkMs: 1000, timeoutMs: 10_000 })
      .catch(() => {});
    // An uncommitted shipping cycle is dropped: the volumes keep the last committed image.
    if (session.type === 'snapshot-shipping') await this.receiver.discard(session.id);
    for (const pair of this.pairsOf(session)) {
      if (pair.targetChangedBitmap === null) {
        pair.targetChangedBitmap = await this.engine.bitmaps.create(this.engine.volumeId(pair.localVolume), 'clear');
        this.store.savePair(pair);
      }
    }
    this.setState(session, 'target-available', {
      detail: null,
      consistencyTime: session.consistencyTime ?? new Date().toISOString(),
    });
  }

  /** Stops mirroring at this site (the source), keeping out-of-sync marks. */
  async stopSource(session: SessionRecord, reason: string | null): Promise<void> {
    this.shippers.get(session.id)?.stop();
    await this.shipping.get(session.id)?.stop();
    await Promise.all(this.pairsOf(session).map((pair) => this.sources.get(pair.id)?.stopMirroring(reason)));
  }

  /** The consistency-group master of an async session, made on first use. */
  private shipperFor(session: SessionRecord, sources: PairSource[]): ConsistencyGroupShipper {
    let shipper = this.shippers.get(session.id);
    if (!shipper) {
      shipper = new ConsistencyGroupShipper(session.id, this.link(session), {
        onApplied: (group) => {
          for (const source of sources) source.groupApplied(group.tracks.get(source.record.id) ?? new Set());
        },
        onFailure: (error) => void this.suspendForError(session, sources[0], error),
      });
      this.shippers.set(session.id, shipper);
    }
    return shipper;
  }

  async preflight(sessionName: string, options: { verifyCodes: boolean; fullCompare: boolean }): Promise<FailbackPreflight> {
    const session = this.session(sessionName);
    if (session.state !== 'target-available') {
      throw new ProblemError('invalid-state', `session ${session.name} is ${session.state}; failback needs target-available`);
    }
    if (this.isSource(session)) {
      const forwarded = await this.link(session).call('session.preflight', { session: session.id, options }, null, {
        waitForLinkMs: 3000,
        timeoutMs: 10 * 60_000,
      });
      return forwarded.result as FailbackPreflight;
    }
    const plans = await this.plan(session, options);
    return summarizePlans(session.name, plans, this.engine.trackSize, options);
  }

  private async plan(session: SessionRecord, options: { verifyCodes: boolean; fullCompare: boolean }): Promise<PairPlan[]> {
    const link = this.link(session);
    await link.ready(3000);
    const plans: PairPlan[] = [];
    for (const pair of this.pairsOf(session)) plans.push(await planPair(this.engine, link, pair, options));
    return plans;
  }

  /**
   * Failback, executed at the production site (the current target): plan the
   * copy, make this site the source with exactly the planned tracks marked,
   * make the other site the target, and resync.
   */
  private async failbackHere(session: SessionRecord, options: { verifyCodes: boolean; fullCompare: boolean }): Promise<void> {
    const plans = await this.plan(session, options);
    for (const plan of plans) {
      const pair = plan.pair;
      const bitmap = await this.engine.bitmaps.create(this.engine.volumeId(pair.localVolume), 'clear');
      for (const track of plan.tracks) await this.engine.bitmaps.set(bitmap, track, 1);
      if (pair.outOfSyncBitmap !== null) await this.engine.bitmaps.delete(pair.outOfSyncBitmap);
      if (pair.targetChangedBitmap !== null) await this.engine.bitmaps.delete(pair.targetChangedBitmap);
      pair.outOfSyncBitmap = bitmap;
      pair.targetChangedBitmap = null;
      this.store.savePair(pair);
    }
    const direction = session.direction === 'h1-h2' ? 'h2-h1' : 'h1-h2';
    const copied = plans.reduce((sum, plan) => sum + plan.tracks.length, 0);
    await this.link(session).call('session.become-target', { session: session.id, direction }, null, { waitForLinkMs: 3000 });
    this.setState(session, 'preparing', {
      direction,
      detail: `failback: copying ${copied} track(s)`,
    });
    this.engine.catalog.recordEvent('session.failback', 'info', session.name, `failback of ${session.name} copies ${copied} track(s)`, {
      tracks: copied,
      pairs: plans.map((plan) => ({ pair: plan.pair.id, tracks: plan.tracks.length, candidates: plan.candidates.length })),
    });
    void this.runMirroring(session);
  }

  /** The other site took over as source (failback): this site becomes the target. */
  async becomeTarget(session: SessionRecord, direction: SessionRecord['direction']): Promise<void> {
    await this.stopSource(session, null);
    this.dropSources(session);
    for (const pair of this.pairsOf(session)) {
      for (const bitmap of [pair.outOfSyncBitmap, pair.targetChangedBitmap]) {
        if (bitmap !== null) await this.engine.bitmaps.delete(bitmap);
      }
      pair.outOfSyncBitmap = null;
      pair.targetChangedBitmap = null;
      this.store.savePair(pair);
    }
    this.setState(session, 'preparing', { direction }, false);
  }

  async terminateHere(session: SessionRecord): Promise<void> {
    await this.stopSource(session, null);
    this.dropSources(session);
    if (session.type === 'snapshot-shipping') await this.receiver.discard(session.id);
    for (const pair of this.pairsOf(session)) {
      for (const bitmap of [pair.outOfSyncBitmap, pair.targetChangedBitmap]) {
        if (bitmap !== null) await this.engine.bitmaps.delete(bitmap);
      }
      pair.outOfSyncBitmap = null;
      pair.targetChangedBitmap = null;
      this.store.savePair(pair);
    }
    this.setState(session, 'defined', { detail: null, consistencyTime: null }, false);
  }

  // --- online verify ---

  /**
   * Online verify of a duplex session by segment codes, executed at its
   * source (forwarded there from the target). Real differences are marked
   * out-of-sync and copied by a resync; tracks that differed only because
   * writes were in flight are never reported (see verifyPair).
   */
  async verify(sessionName: string, options: { forwarded?: boolean } = {}): Promise<VerifyReport> {
    const session = this.session(sessionName);
    if (!this.isSource(session)) {
      if (options.forwarded) throw new ProblemError('invalid-state', `neither site is the source of session ${session.name} now`);
      const forwarded = await this.link(session).call('session.verify', { session: session.id }, null, {
        waitForLinkMs: 3000,
        timeoutMs: 60 * 60_000,
      });
      return forwarded.result as VerifyReport;
    }
    if (session.state !== 'prepared') {
      throw new ProblemError('invalid-state', `session ${session.name} is ${session.state}; verify needs prepared (duplex)`);
    }
    if (session.type === 'snapshot-shipping') {
      throw new ProblemError('not-supported', `session ${session.name} ships snapshots: its target lags by design; verify after a suspend`);
    }
    if (this.verifying.has(session.id)) throw new ProblemError('conflict', `session ${session.name} is being verified already`);
    this.verifying.add(session.id);
    const startedAt = new Date().toISOString();
    const catalog = this.engine.catalog;
    const pairs = this.pairsOf(session);
    const tracks = pairs.reduce((sum, pair) => sum + this.engine.getVolume(pair.localVolume).trackCount, 0);
    catalog.recordEvent('session.verify', 'info', session.name, `session ${session.name}: verifying ${tracks} track(s) of ${pairs.length} copy set(s) by segment codes`, {
      pairs: pairs.length,
      tracks,
    });
    try {
      const link = this.link(session);
      const reports: VerifyPairReport[] = [];
      let marked = 0;
      for (const pair of pairs) {
        const source = this.sources.get(pair.id);
        const check = () => {
          if (session.state !== 'prepared' || !source?.mirroring) {
            throw new ProblemError('invalid-state', `session ${session.name} left duplex (${session.state}) during verify`);
          }
        };
        check();
        const { report, differing } = await verifyPair(this.engine, link, pair, source!, check);
        if (differing.length > 0) await source!.mark(differing);
        marked += differing.length;
        reports.push(report);
      }
      const sum = (key: 'comparedTracks' | 'differingCount' | 'unverifiedCount') => reports.reduce((total, r) => total + r[key], 0);
      const report: VerifyReport = {
        session: session.name,
        startedAt,
        finishedAt: new Date().toISOString(),
        pairs: reports,
        comparedTracks: sum('comparedTracks'),
        differingTracks: sum('differingCount'),
        unverifiedTracks: sum('unverifiedCount'),
        resyncStarted: false,
      };
      if (marked > 0 && session.state === 'prepared') {
        // The marked tracks are copied by the resync machinery, as after a resume.
        this.setState(session, 'preparing', { detail: `verify found ${marked} differing track(s); copying them` });
        void this.runMirroring(session);
        report.resyncStarted = true;
      }
      catalog.recordEvent(
        'session.verified',
        report.differingTracks > 0 ? 'warning' : 'info',
        session.name,
        `session ${session.name}: verified ${report.comparedTracks} track(s), ${report.differingTracks} differ` +
          (report.unverifiedTracks ? `, ${report.unverifiedTracks} kept busy by writes` : ''),
        {
          comparedTracks: report.comparedTracks,
          differingTracks: report.differingTracks,
          unverifiedTracks: report.unverifiedTracks,
          recheckedTracks: reports.reduce((total, r) => total + r.recheckedTracks, 0),
          tracks: reports.flatMap((r) => r.differingTracks).slice(0, 64),
        },
      );
      return report;
    } catch (error) {
      catalog.recordEvent('session.verify-failed', 'warning', session.name, `session ${session.name}: verify stopped: ${problemMessage(error)}`);
      throw error;
    } finally {
      this.verifying.delete(session.id);
    }
  }

  /** The target failed to apply acknowledged writes (semi-sync): mark the tracks here and copy them. */
  async repairTracks(pair: PairRecord, tracks: number[]): Promise<boolean> {
    const session = this.session(pair.sessionId);
    if (!this.isSource(session)) throw new ProblemError('invalid-state', `this site is not the source of session ${session.name}`);
    const source = this.sources.get(pair.id);
    if (source) return source.repair(tracks);
    if (pair.outOfSyncBitmap === null) throw new ProblemError('invalid-state', `session ${session.name} keeps no out-of-sync bitmap`);
    for (const track of tracks) await this.engine.bitmaps.set(pair.outOfSyncBitmap, track, 1);
    return false;
  }

  // --- peer-link requests ---

  handle = (request: RpcRequest): Promise<RpcResult> => this.target.handle(request);

  /** Makes a session record the other site sent (session.put). */
  adoptSession(record: SessionRecord): void {
    const existing = this.sessions.get(record.id);
    if (existing) return;
    for (const session of this.sessions.values()) {
      if (session.name === record.name) throw new ProblemError('already-exists', `a session named ${record.name} exists here`);
    }
    const session = { ...record };
    this.store.saveSession(session);
    this.sessions.set(session.id, session);
    this.engine.catalog.recordEvent('session.created', 'info', session.name, `session ${session.name} defined by the other site`);
  }

  adoptPair(record: PairRecord): void {
    this.engine.getVolume(record.localVolume);
    for (const pair of this.pairs.values()) {
      if (pair.localVolume === record.localVolume && pair.id !== record.id) {
        throw new ProblemError('volume-busy', `${record.localVolume} is already in a copy set`);
      }
    }
    this.store.savePair(record);
    this.pairs.set(record.id, record);
    this.refreshTaps();
  }

  // --- reports ---

  info(session: SessionRecord): SessionInfo {
    const local = this.localSite(session);
    const otherSite = this.peers.get(this.otherAgent(session)).site;
    const pairs = this.pairsOf(session).map((pair) => this.pairInfo(session, pair));
    const healthy = session.state === 'prepared';
    const health =
      session.state === 'defined'
        ? 'inactive'
        : session.state === 'suspended' && session.detail
          ? 'severe'
          : healthy
            ? 'normal'
            : 'warning';
    const consistencyTime = this.consistencyTime(session);
    return {
      id: session.id,
      name: session.name,
      type: session.type,
      state: session.state,
      health,
      direction: session.direction,
      recoverable: session.recoverable,
      role: local,
      h1Site: local === 'h1' ? this.site : otherSite,
      h2Site: local === 'h1' ? otherSite : this.site,
      consistencyTime,
      exposureSeconds: consistencyTime ? Math.max(0, (Date.now() - Date.parse(consistencyTime)) / 1000) : null,
      detail: session.detail,
      pairs,
      createdAt: session.createdAt,
      updatedAt: session.updatedAt,
    };
  }

  /**
   * The instant the targets hold a consistent image of: now for a prepared
   * sync session, the last applied group's cut for an async one, the
   * suspension time otherwise.
   */
  consistencyTime(session: SessionRecord): string | null {
    if (session.type === 'snapshot-shipping') return session.consistencyTime;
    if (session.type === 'async' && (session.state === 'prepared' || session.state === 'preparing')) {
      const time = this.isSource(session) ? this.shippers.get(session.id)?.lastApplied?.time : this.appliedTimes.get(session.id);
      if (time !== undefined && session.state === 'prepared') return new Date(time).toISOString();
      return session.consistencyTime;
    }
    return session.state === 'prepared' ? new Date().toISOString() : session.consistencyTime;
  }

  private pairInfo(session: SessionRecord, pair: PairRecord): PairInfo {
    const source = this.sources.get(pair.id);
    const trackCount = this.engine.getVolume(pair.localVolume).trackCount;
    const outOfSync = source ? source.outOfSyncTracks : pair.outOfSyncBitmap !== null ? this.engine.bitmaps.view(pair.outOfSyncBitmap).setCount : 0;
    const targetChanged = pair.targetChangedBitmap !== null ? this.engine.bitmaps.view(pair.targetChangedBitmap).setCount : 0;
    let state: PairInfo['state'];
    let syncedPercent: number | null = null;
    let etaSeconds: number | null = null;
    switch (session.state) {
      case 'defined':
        state = 'defined';
        break;
      case 'preparing':
      case 'prepared':
        if (!this.isSource(session)) state = session.state === 'prepared' ? 'duplex' : 'syncing';
        else if (!source || source.reason) state = 'suspended';
        else if (this.link(session).state !== 'connected') state = 'connecting';
        else if (source.isResyncing || (session.type === 'snapshot-shipping' && session.state === 'preparing')) {
          // A shipping session is preparing until its first cycle (the initial copy) is committed.
          state = 'syncing';
          const { total, copied, startedAt } = source.progress;
          syncedPercent = total === 0 ? 100 : Math.min(100, Math.round((copied / total) * 1000) / 10);
          const elapsed = (Date.now() - startedAt) / 1000;
          etaSeconds = copied > 0 ? Math.round(((total - copied) * elapsed) / copied) : null;
        } else state = 'duplex';
        break;
      case 'target-available':
      case 'recovering':
        state = 'target-available';
        break;
      default:
        state = 'suspended';
    }
    return {
      id: pair.id,
      h1Volume: pair.h1Volume,
      h2Volume: pair.h2Volume,
      state,
      reason: source?.reason ?? (state === 'suspended' ? session.detail : null),
      outOfSyncTracks: outOfSync,
      targetChangedTracks: targetChanged,
      trackCount,
      syncedPercent,
      etaSeconds,
    };
  }

  list(): SessionInfo[] {
    return [...this.sessions.values()].map((session) => this.info(session));
  }

  close(): void {
    for (const shipper of this.shipping.values()) void shipper.stop();
    for (const source of this.sources.values()) source.dispose();
    this.sources.clear();
  }
}
