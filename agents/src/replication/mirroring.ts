import { randomUUID } from 'node:crypto';
import { ProblemError, type SessionSynced, type SessionSyncedPair } from '@tandem/contract';
import { ConsistencyGroupShipper } from './async-groups.ts';
import { PairSource, problemMessage } from './pair-source.ts';
import type { ReplicationHooks } from './hooks.ts';
import { primarySiteFor } from './session-reports.ts';
import type { HeldCopySet, SessionRecord } from './session-store.ts';

/** What mirroring uses of the service and the other parts (hooks.ts). */
export type MirroringHooks = Pick<
  ReplicationHooks,
  'agentId' | 'actions' | 'copySetVolumes' | 'engine' | 'joining' | 'link' | 'multiPrimary' | 'pairLink' | 'pairsOf' | 'peers' | 'refreshTaps' | 'role' | 'rounds' | 'session' | 'setState' | 'shipping' | 'store'
>;

/**
 * The source side of mirroring: the per-pair runtimes (PairSource), the
 * consistency-group shippers of async sessions, resync until duplex, and
 * suspension on link failure with resume once the link is back.
 */
export class Mirroring {
  /** Per pair this site is the source of: its mirroring runtime. */
  readonly sources = new Map<string, PairSource>();
  /** Async sessions this site is the source of: their consistency-group shippers. */
  readonly shippers = new Map<string, ConsistencyGroupShipper>();
  private readonly suspending = new Map<string, Promise<void>>();
  /** Per session: the mirroring run this site's targets were fenced for last (see stream-fence.ts). */
  private readonly runs = new Map<string, string>();
  /** Sessions suspended because a target's pool is full: they wait for the administrator, not for the link (see suspendSession). */
  private readonly waitingForSpace = new Set<string>();
  /** Per session: the run whose resync is still being awaited (prepared only after its session.synced, see checkPrepared). */
  private readonly resyncing = new Map<string, symbol>();

  constructor(private readonly service: MirroringHooks) {}

  /** The source-side runtime of a pair, made when first needed. */
  ensureSource(session: SessionRecord, pair: HeldCopySet): PairSource {
    let source = this.sources.get(pair.id);
    if (!source) {
      source = new PairSource(pair, this.service.engine, this.service.pairLink(session, pair), {
        onLinkFailure: (failed, error) => this.suspendForError(session, failed, error),
        onDuplex: () => this.checkPrepared(session),
      });
      this.sources.set(pair.id, source);
    }
    return source;
  }

  dropSources(session: SessionRecord): void {
    this.shippers.get(session.id)?.stop();
    this.shippers.delete(session.id);
    this.service.shipping.drop(session);
    for (const pair of this.service.pairsOf(session)) {
      this.sources.get(pair.id)?.dispose();
      this.sources.delete(pair.id);
    }
  }

  /** Deletes every copy set's out-of-sync and target-changed bitmaps and saves the pairs without them (nothing is tracked here any more). */
  async dropBitmaps(session: SessionRecord): Promise<void> {
    const service = this.service;
    for (const pair of service.pairsOf(session)) {
      for (const bitmap of [pair.outOfSyncBitmap, pair.targetChangedBitmap]) {
        if (bitmap !== null) await service.engine.bitmaps.delete(bitmap);
      }
      pair.outOfSyncBitmap = null;
      pair.targetChangedBitmap = null;
      // Nothing is tracked: a copy set that was joining starts over with the others (terminate, or the way back after a failback).
      pair.joining = false;
      service.store.saveCopySet(pair);
    }
  }

  /** A pair failed to reach the target: suspend every pair of the session (one consistency group), then acknowledge. */
  suspendForError(session: SessionRecord, pair: PairSource, error: Error): Promise<void> {
    return this.suspendSession(session, `pair ${pair.record.h1Volume}: ${problemMessage(error)}`, error);
  }

  /** Resolves once a suspend in progress (after a failure) has completed. */
  async suspended(session: SessionRecord): Promise<void> {
    await this.suspending.get(session.id);
  }

  /** Suspends every pair of the session after a failure (`detail` says where), keeping out-of-sync marks. */
  suspendSession(session: SessionRecord, detail: string, error: Error): Promise<void> {
    // The other site refused a copy set whose volume there is gone (`pair-broken`): recorded here too, and the session
    // then stays suspended (watchForLink does not resume it) until the copy set is removed.
    if (this.service.copySetVolumes.learn(error)) detail = error.message;
    // A target out of space: resuming at once would fail again (and again). The session stays suspended, marking every
    // host write here, until the administrator made room there and resumes it.
    if (error instanceof ProblemError && error.problem === 'no-space') {
      const where = typeof error.detail?.site === 'string' ? error.detail.site : 'the target site';
      detail =
        `${detail}; host writes here are marked and kept (nothing is lost) and copied once mirroring resumes: ` +
        `make room at ${where} (delete volumes or snapshots there, or grow the file system holding its pool), then resume (tandem-agent session resume ${session.name})`;
      this.waitingForSpace.add(session.id);
    }
    // The target is being (or was) recovered: mirroring just stops; the session stays recovering / target-available.
    if (session.state === 'recovering' || session.state === 'target-available') return this.stopSource(session, detail);
    let pending = this.suspending.get(session.id);
    if (!pending) {
      pending = (async () => {
        const reason = problemMessage(error);
        // Mirrored up to now: the targets hold the image of this moment (read before the state turns suspending).
        const stoppedAt = session.state === 'prepared' && session.type !== 'snapshot-shipping' ? new Date().toISOString() : null;
        this.service.setState(session, 'suspending', { detail: reason }, false);
        await this.stopSource(session, reason);
        this.service.setState(session, 'suspended', { detail, consistencyTime: stoppedAt ?? session.consistencyTime });
        this.watchForLink(session);
      })().finally(() => this.suspending.delete(session.id));
      this.suspending.set(session.id, pending);
    }
    return pending;
  }

  /**
   * After a failure (a session suspended with a reason, not by the admin),
   * resume by itself once the link is back (the admin may suspend to stop
   * it). Also at start: a session suspended by a failure before the agent
   * stopped resumes like one suspended while it runs.
   */
  watchForLink(session: SessionRecord): void {
    const multi = this.service.multiPrimary;
    // A multi-primary member is resumed by its control agent; the control agent waits for every member's link too.
    if (this.service.role(session).member) return;
    const links = this.service.role(session).drivesRounds ? multi.links(session) : [this.service.link(session)];
    const retry = async () => {
      if (session.state !== 'suspended' || !session.detail) return;
      // Not failures that end by themselves: a broken copy set stays broken until it is removed, a full pool full until
      // room is made (then resume by hand).
      if (this.service.copySetVolumes.brokenOf(session).length > 0 || this.waitingForSpace.has(session.id)) return;
      try {
        await Promise.all(links.map((link) => link.ready(60_000)));
        if (session.state === 'suspended' && session.detail) await this.service.actions.execute(session, 'resume', {});
      } catch {
        setTimeout(() => void retry(), 1000).unref();
      }
    };
    setTimeout(() => void retry(), 200).unref();
  }

  checkPrepared(session: SessionRecord): void {
    if (session.state !== 'preparing') return;
    // A run still awaiting its resync says what it copied (session.synced) first; it checks again right after.
    if (this.resyncing.has(session.id)) return;
    // Copy sets added while the session ran join first (see running-copy-sets.ts).
    if (this.service.joining.settle(session)) return;
    // Multi-primary: prepared once every primary agent is duplex and a round after that is committed.
    if (this.service.role(session).drivesRounds) return this.service.rounds.checkPrepared(session);
    const all = this.service.pairsOf(session).every((pair) => {
      const source = this.sources.get(pair.id);
      return source && source.mirroring && !source.isResyncing;
    });
    if (all) this.service.setState(session, 'prepared', { detail: null, consistencyTime: null });
  }

  /**
   * Starts a new mirroring run of the session: every agent holding a target
   * volume of this site's copy sets is told (`stream.fence`), refuses the
   * requests of earlier runs from then on and has settled what they left
   * when this resolves. Every request of the run names it.
   */
  async fenceTargets(session: SessionRecord): Promise<string> {
    const service = this.service;
    const run = randomUUID();
    const agents = new Set(service.pairsOf(session).map((pair) => service.multiPrimary.pairAgent(session, pair)));
    await Promise.all(
      [...agents].map((agent) =>
        service.peers.link(agent).call('stream.fence', { session: session.id, run }, null, { waitForLinkMs: 5000, timeoutMs: 60_000 }),
      ),
    );
    this.runs.set(session.id, run);
    return run;
  }

  /** The session's current mirroring run here ('' before the first: every stream request is then refused). */
  runOf(session: SessionRecord): string {
    return this.runs.get(session.id) ?? '';
  }

  /**
   * Mirrors host writes and resyncs every pair until duplex, as a new run
   * (its targets fenced first, unless the caller did: `run`).
   */
  async runMirroring(session: SessionRecord, fenced?: string): Promise<void> {
    // A copy set without its volume cannot be part of the image: the session stays suspended until it is removed.
    this.waitingForSpace.delete(session.id);
    const broken = this.service.copySetVolumes.refusal(session);
    if (broken) {
      await this.suspendSession(session, broken.message, broken);
      return;
    }
    // Tracked meanwhile: a host write now marks its tracks (for real) while the targets are fenced.
    for (const pair of this.service.pairsOf(session)) this.ensureSource(session, pair);
    this.service.refreshTaps();
    let run = fenced;
    // Already mirroring (a verify's repair resyncs what it marked): the run goes on.
    const current = this.runs.get(session.id);
    const pairs = this.service.pairsOf(session);
    if (run === undefined && current !== undefined && pairs.length > 0 && pairs.every((pair) => this.sources.get(pair.id)?.mirroring)) run = current;
    const continuing = run !== undefined && run === current;
    if (run === undefined) {
      try {
        run = await this.fenceTargets(session);
      } catch (error) {
        const failure = error instanceof Error ? error : new Error(String(error));
        await this.suspendSession(session, `starting a mirroring run: ${problemMessage(failure)}`, failure);
        return;
      }
    }
    // Suspended or stopped while the targets were fenced.
    if (session.state !== 'preparing' && session.state !== 'prepared') return;
    if (session.type === 'snapshot-shipping') return this.service.shipping.run(session, run);
    const engine = this.service.engine;
    const mode = session.type === 'semi-sync' ? 'semi-sync' : session.type === 'async' ? 'async' : 'sync';
    // Copy sets still joining (added while the session ran, kept across restarts) copy in their joining mode, then join.
    const joining = this.service.joining.resume(session);
    const sources = this.service.pairsOf(session).map((pair) => this.ensureSource(session, pair));
    if (mode === 'async') {
      const shipper = this.shipperFor(session, sources);
      for (const source of sources) source.shipper = joining.has(source.record.id) ? null : shipper;
      shipper.start(run);
    }
    for (const source of sources) source.startMirroring(joining.has(source.record.id) ? this.service.joining.modeOf(session) : mode, run);
    this.service.refreshTaps();
    const marked = sources.reduce((sum, source) => sum + source.outOfSyncTracks, 0);
    engine.catalog.recordEvent('session.resync', 'info', session.name, `session ${session.name}: copying ${marked} marked track(s)`, {
      markedTracks: marked,
    });
    // The latest run only: one that never ends keeps no later run from reaching prepared.
    const awaiting = Symbol(run);
    this.resyncing.set(session.id, awaiting);
    try {
      // The resync starts before the rounds: a copy set reports duplex at a hold only once its resync is over. (Started
      // after them, the first round's hold, made while the coordinator starts, found every copy set duplex and the
      // session turned prepared, its secondary reported consistent, while marked tracks were still being copied.)
      const resyncs = Promise.all(sources.map((source) => source.resync()));
      const rounds = this.service.rounds.coordinatorOf(session);
      if (this.service.role(session).drivesRounds && continuing && rounds?.active) {
        // The run goes on, and so do its rounds: a new coordinator would number rounds afresh while the shipper still
        // holds parts staged in the current ones (their marks cleared by the new count, never applied). The session
        // is consistent again only once a round after this resync is committed.
        rounds.restartConsistency();
      } else if (this.service.role(session).drivesRounds) {
        try {
          await this.service.rounds.start(session);
        } catch (error) {
          const failure = error instanceof Error ? error : new Error(String(error));
          await this.suspendSession(session, `starting the primary agents: ${problemMessage(failure)}`, failure);
          await resyncs.catch(() => {});
          return;
        }
      }
      await resyncs;
    } finally {
      if (this.resyncing.get(session.id) === awaiting) this.resyncing.delete(session.id);
    }
    if (sources.every((source) => source.mirroring)) {
      const copied = sources.reduce((sum, source) => sum + source.progress.copied, 0);
      const recopied = sources.reduce((sum, source) => sum + source.progress.recopied, 0);
      const bytes = sources.reduce((sum, source) => sum + source.progress.bytesSent, 0);
      // Per copy set too (its primary site for a multi-primary session): SessionSyncedSchema.
      const pairs: SessionSyncedPair[] = sources.map((source) => {
        const pair = source.record;
        const site = primarySiteFor(this.service, session, pair);
        return {
          pair: pair.id,
          h1Volume: pair.h1Volume,
          h2Volume: pair.h2Volume,
          ...(site ? { primarySite: site } : {}),
          copiedTracks: source.progress.copied,
          recopiedTracks: source.progress.recopied,
          bytesSent: source.progress.bytesSent,
        };
      });
      const synced: SessionSynced = { copiedTracks: copied, recopiedTracks: recopied, bytesSent: bytes, pairs };
      const again = recopied > 0 ? ` (${recopied} again: written while being copied)` : '';
      engine.catalog.recordEvent('session.synced', 'info', session.name, `session ${session.name}: copied ${copied} track(s)${again}`, synced);
    }
    setTimeout(() => this.checkPrepared(session), 0);
    // The rounds' next holds find the copy sets duplex: the session is prepared then, not an interval later.
    if (this.service.role(session).drivesRounds) this.service.rounds.coordinatorOf(session)?.soon();
  }

  /** Stops mirroring at this site (the source), keeping out-of-sync marks. */
  async stopSource(session: SessionRecord, reason: string | null): Promise<void> {
    if (this.service.role(session).drivesRounds) await this.service.rounds.stop(session, reason);
    this.shippers.get(session.id)?.stop();
    await this.service.shipping.stop(session);
    await Promise.all(this.service.pairsOf(session).map((pair) => this.sources.get(pair.id)?.stopMirroring(reason)));
  }

  /** The consistency-group shipper of an async session, made on first use. */
  private shipperFor(session: SessionRecord, sources: PairSource[]): ConsistencyGroupShipper {
    let shipper = this.shippers.get(session.id);
    if (!shipper) {
      shipper = new ConsistencyGroupShipper(
        session.id,
        this.service.link(session),
        {
          onApplied: (group) => {
            // The session's copy sets now (one may have been added or removed since the shipper was made).
            for (const pair of this.service.pairsOf(session)) this.sources.get(pair.id)?.groupApplied(group.tracks.get(pair.id) ?? new Set());
          },
          onFailure: (error) => void this.suspendSession(session, `consistency groups: ${problemMessage(error)}`, error),
        },
        // The coordinator's rounds cut the groups, at every primary agent.
        { coordinated: this.service.rounds.coordinatedOptions(session) },
      );
      this.shippers.set(session.id, shipper);
    }
    return shipper;
  }

  /** The target failed to apply acknowledged writes (semi-sync): mark the tracks here and copy them. */
  async repairTracks(pair: HeldCopySet, tracks: number[]): Promise<boolean> {
    const session = this.service.session(pair.sessionId);
    if (!this.service.role(session).source) throw new ProblemError('invalid-state', `this site is not the source of session ${session.name}`);
    const source = this.sources.get(pair.id);
    if (source) return source.repair(tracks);
    if (pair.outOfSyncBitmap === null) throw new ProblemError('invalid-state', `session ${session.name} keeps no out-of-sync bitmap`);
    for (const track of tracks) await this.service.engine.bitmaps.set(pair.outOfSyncBitmap, track, 1);
    return false;
  }

  /** Stops mirroring and waits for a resync in progress to end. */
  async close(): Promise<void> {
    // Shipping stops first: a group failing on a closing link must not suspend the session.
    for (const shipper of this.shippers.values()) shipper.stop();
    const sources = [...this.sources.values()];
    this.sources.clear();
    await Promise.all(sources.map((source) => source.close()));
  }
}
