import { randomUUID } from 'node:crypto';
import { isProblemError, ProblemError, type FlashMirrorHandling } from '@tandem/contract';
import type { FlashMirrorChange, FlashMirrorHooks, FlashMirrorPairChange, FlashService, TrackRange } from '../flash/service.ts';
import { FlashMirrorTarget } from './flash-mirror-target.ts';
import { isDuplex, primaryOf, secondaryOf, type MirroredPrimary, type MirrorPairParams, type PerformParams } from './flash-mirror-volumes.ts';
import type { PeerAnswer, PeerCall } from './link/peer-protocol.ts';
import { problemMessage, type PairSource } from './pair-source.ts';
import type { ReplicationHooks } from './hooks.ts';
import type { SessionRecord } from './session-store.ts';
import { localVolumeName } from './copy-set-volumes.ts';

/** What flash-mirror uses of the service and the other parts (hooks.ts). */
export type FlashMirrorServiceHooks = Pick<
  ReplicationHooks,
  'applier' | 'engine' | 'faults' | 'logger' | 'mirroring' | 'pair' | 'pairs' | 'peers' | 'role' | 'session' | 'setState' | 'sourceOf' | 'target'
>;

/** Time kept back from the flash's hold deadline for the local change after the secondary answered. */
const DEADLINE_MARGIN_MS = 150;
/** A withdraw the secondary did not confirm is sent again this often, this many times. */
const WITHDRAW_RETRY_MS = 1000;
const WITHDRAW_ATTEMPTS = 120;

/** What the secondary did with a `flash.mirror` perform (or what is known of it). */
interface Outcome {
  performed: boolean;
  why: string;
  /** Set when the answer was lost: the request may still run there. */
  token?: string;
  error?: ProblemError;
}

interface PlannedPair {
  /** The flash pair's id (FlashPairInfo.id). */
  pairId: string;
  primary: MirroredPrimary;
  runs: TrackRange[];
  handling: FlashMirrorHandling;
  /** Tracks that stay marked even when preserved: host changes the secondary already had before its flash. */
  keep: Set<number>;
  /** Async: the secondary's answer travels in the stream (every earlier group is applied before it). */
  inStream?: boolean;
}

/** What beforeTargetChange decided, for afterTargetChange. */
interface Plan {
  marked: PlannedPair[];
  /** Requests whose answer was lost, being settled (cancelled) before the marked tracks are copied. */
  settling: Array<Promise<void>>;
  /** Answers still to come through an async session's stream (after the writes are released). */
  later: Array<Promise<void>>;
  /** Lets the pairs' resync copy again: their marks are settled (the change is logged, the secondary answered). */
  finish: () => void;
}

/** How long a flash may leave a pair's resync gated if it never reports back (it failed after the hook). */
const GATE_SAFETY_MS = 120_000;

/**
 * Flash copy meets mirroring, at the primary (the secondary's side is
 * flash-mirror-target.ts; PROTOCOL.md "Flash copy of mirrored volumes").
 *
 * A flash change whose changed volume (the target; the source for a
 * reverse) is a mirrored primary first marks the tracks it changes
 * out-of-sync, durably, before the change itself is logged. With
 * `preserveMirror`, when the other volume is a primary mirrored to the same
 * secondary agent and both copy sets are duplex, the secondary is asked
 * (`flash.mirror`) to perform the same change itself at the matching point
 * of the mirror stream. Inside the flash's hold, new host changes of both
 * volumes are kept from the link; for sync and semi-sync every earlier change
 * is acknowledged first and the request is answered while the writes are
 * held; for async the request is a marker in the consistency-group stream,
 * sent right after the group holding every earlier change is applied there,
 * and answered after the writes are released. In a multi-primary session
 * the marker is an entry of this agent's part of the current round, after
 * every change queued here before it: the secondary runs it while applying
 * the committed round, and the primary asks for its outcome (`cancel`) once
 * the coordinator reports that round committed. Once the secondary confirmed
 * and the local change is durable, the marks are cleared and the pair never
 * left duplex; if it refuses or the answer is lost, the marks stay and the
 * resync ships the tracks. Changes that reached the secondary before its
 * flash but whose local write comes after it keep their tracks marked. A lost
 * answer is settled with a `cancel` (which waits for a request still running
 * there) before those tracks are copied: a secondary that performed late gets
 * every track of the volume copied again.
 *
 * A coordinated establish takes the same matching point for each source's
 * secondary volume and flashes it to the named remote target there (tracks
 * whose change reached the secondary early are sent along as they are at the
 * primary's point in time). A withdraw changes no content (targets keep their
 * images), so a lost withdraw leaves both sites' images identical; it is
 * retried until the secondary drops its relationship.
 *
 * (This module is ~570 lines: it is one protocol, plan, hold, ask, settle a
 * lost answer, clear or keep the marks, whose steps share the plan of each
 * flash; the secondary's side is flash-mirror-target.ts.)
 */
export class FlashMirror implements FlashMirrorHooks {
  private readonly plans = new Map<FlashMirrorChange, Plan>();
  /** Primary side: withdraws not confirmed yet, per `agent:session`. */
  private readonly pendingWithdraws = new Map<string, NodeJS.Timeout>();
  /** The secondary's side: serves `flash.mirror` (flash-mirror-target.ts). */
  readonly target: FlashMirrorTarget;

  constructor(
    private readonly service: FlashMirrorServiceHooks,
    private readonly flash: FlashService,
  ) {
    this.target = new FlashMirrorTarget(service, flash);
  }


  /** Serves the `flash.mirror` peer request (this site as the secondary). */
  handle = (call: PeerCall<'flash.mirror'>): Promise<PeerAnswer<'flash.mirror'>> => this.target.handle(call);

  private primaryOf(volume: string): MirroredPrimary | null {
    return primaryOf(this.service, volume);
  }

  // --- the primary: hooks FlashService calls ---

  async beforeTargetChange(change: FlashMirrorChange): Promise<FlashMirrorHandling[]> {
    const handling: FlashMirrorHandling[] = change.pairs.map(() => 'none');
    const plan: Plan = { marked: [], settling: [], later: [], finish: () => {} };
    const preserve: Array<{ index: number; planned: PlannedPair; from: MirroredPrimary }> = [];
    const targetChanged: Array<{ bitmap: number; runs: TrackRange[] }> = [];

    change.pairs.forEach((pair, index) => {
      const secondary = secondaryOf(this.service, pair.changed);
      if (secondary) {
        if (this.target.ordered.has(pair.changed)) return; // the primary ordered this change (flash.mirror)
        if (secondary.session.state === 'target-available' && secondary.pair.targetChangedBitmap !== null) {
          // Production runs here after failover: failback copies what the flash changes.
          targetChanged.push({ bitmap: secondary.pair.targetChangedBitmap, runs: this.runsOf(pair) });
          handling[index] = 'shipped';
          return;
        }
        throw new ProblemError(
          'invalid-state',
          `${pair.changed} is the secondary of mirroring session ${secondary.session.name}; flash copy its primary with preserveMirror instead`,
        );
      }
      const primary = this.primaryOf(pair.changed);
      if (!primary) return;
      const planned: PlannedPair = { pairId: pair.id, primary, runs: this.runsOf(pair), handling: 'shipped', keep: new Set() };
      plan.marked.push(planned);
      handling[index] = 'shipped';
      if (!change.options.preserveMirror || change.coordinated) return;
      const from = this.primaryOf(pair.from);
      if (from && from.agent === primary.agent && isDuplex(from) && isDuplex(primary)) preserve.push({ index, planned, from });
    });

    // Coordinated point in time: the secondary must agree, or nothing happens anywhere.
    if (change.coordinated) {
      // (Wrapped: an async function returning a promise would wait for it.)
      const { later } = await this.coordinate(change);
      if (later) plan.later.push(later);
    }

    // No resync copy of these pairs until the marks are settled: a copy could read a track before the
    // local change (reads are not held) and clear its mark.
    const finished = new Promise<void>((resolve) => (plan.finish = resolve));
    setTimeout(plan.finish, GATE_SAFETY_MS).unref();
    for (const planned of plan.marked) if (planned.primary.source) gateResync(planned.primary.source, finished);

    // Marks first, durably: whatever happens next, the resync covers every changed track.
    await Promise.all([
      ...plan.marked.map((planned) => this.markDurably(planned)),
      ...targetChanged.map(({ bitmap, runs }) => Promise.all(runs.map((run) => this.service.engine.bitmaps.set(bitmap, run.start, run.count)))),
    ]);

    if (preserve.length > 0) {
      const byAgent = new Map<string, typeof preserve>();
      for (const entry of preserve) byAgent.set(entry.planned.primary.agent, [...(byAgent.get(entry.planned.primary.agent) ?? []), entry]);
      for (const [agent, entries] of byAgent) {
        const outcome = await this.askSecondary(
          agent,
          change,
          // Named by the flash's roles (a reverse changes the source from the target).
          entries.map((entry) => {
            const [source, target] = change.kind === 'reverse' ? [entry.planned.primary, entry.from] : [entry.from, entry.planned.primary];
            return { sourcePair: source.pair.id, targetPair: target.pair.id };
          }),
          entries.flatMap((entry) => [entry.from.source!, entry.planned.primary.source!]),
          async (stuck) => {
            // Changes of either volume the secondary got before its flash but this site writes after it:
            // their tracks of the target stay marked and are shipped.
            await Promise.all(
              entries.map((entry) => {
                const tracks = [...(stuck.get(entry.from.source!) ?? []), ...(stuck.get(entry.planned.primary.source!) ?? [])];
                for (const track of tracks) entry.planned.keep.add(track);
                return entry.planned.primary.source!.markRuns(tracks.map((track) => ({ start: track, count: 1 })));
              }),
            );
            return null;
          },
        );
        const settle = (result: Outcome) => {
          if (result.performed) {
            for (const entry of entries) entry.planned.handling = 'preserved';
            return;
          }
          if (result.token) plan.settling.push(this.settleLost(agent, result.token, entries.map((entry) => entry.planned)));
          this.event('warning', change.session, `the secondary did not perform flash ${change.session}: ${result.why}; the changed tracks are shipped`);
        };
        if (outcome.later) {
          // Async: the answer comes through the stream once the writes are released; preserved unless it refuses.
          for (const entry of entries) {
            handling[entry.index] = 'preserved';
            entry.planned.inStream = true;
          }
          plan.later.push(
            outcome.later.then((result) => {
              settle(result);
              if (!result.performed) for (const entry of entries) this.flash.noteMirrorHandling(change.session, entry.planned.pairId, 'shipped', `the secondary did not perform it: ${result.why}`);
            }),
          );
        } else {
          settle(outcome);
          if (outcome.performed) for (const entry of entries) handling[entry.index] = 'preserved';
        }
      }
    }
    // Async pairs whose tracks ship: groups queued before the flash carry older data of those tracks, so
    // no resync copy may reach the secondary before they are applied there (a marker tells when).
    for (const planned of plan.marked) {
      const source = planned.primary.source;
      const shipper = source?.mode === 'async' ? source.shipper : null;
      if (planned.inStream || !source || !shipper) continue;
      const applied = shipper.mark('flash.mirror', { op: 'sync-point', token: randomUUID() }, null, source.record.id).then(
        () => {},
        () => {}, // stopped: the queue is dropped, the resume's resync copies every mark
      );
      gateResync(source, applied);
    }
    if (Date.now() >= change.deadline) {
      // The flash gave up waiting (its hold timeout): nothing changes here, so what the
      // secondary did is undone by shipping the marked tracks and withdrawing there.
      const agents = new Set(plan.marked.filter((planned) => planned.handling === 'preserved').map((planned) => planned.primary.agent));
      if (change.coordinated && change.kind === 'establish') for (const pair of change.pairs) {
        const primary = this.primaryOf(pair.source);
        if (primary) agents.add(primary.agent);
      }
      void Promise.all(plan.later).then(async () => {
        if (change.kind === 'establish') for (const agent of agents) this.sendWithdraw(agent, change.session, 0);
        await Promise.all(plan.settling);
        plan.finish();
        this.ship(plan.marked);
      });
      throw new ProblemError('timeout', `flash ${change.session}: the secondary answered after the hold timeout; nothing was changed here`);
    }
    this.plans.set(change, plan);
    return handling;
  }

  async afterTargetChange(change: FlashMirrorChange): Promise<void> {
    const plan = this.plans.get(change);
    this.plans.delete(change);
    if (!plan) return;
    // Answers of an async secondary arrive through the stream: the establish returns once it answered.
    await Promise.all(plan.later);
    const shipped: PlannedPair[] = [];
    for (const planned of plan.marked) {
      if (planned.handling !== 'preserved') {
        shipped.push(planned);
        continue;
      }
      const source = planned.primary.source;
      source?.unmarkRuns(planned.runs, planned.keep);
      if (planned.keep.size > 0 && source?.mirroring) void source.resync();
    }
    plan.finish();
    const preserved = plan.marked.length - shipped.length;
    if (preserved > 0) this.event('info', change.session, `flash ${change.session}: the secondary made the same change; ${preserved} pair(s) stayed duplex`);
    if (shipped.length === 0) return;
    // The marked tracks are copied by the resync; a secondary whose answer was lost is settled first.
    void Promise.all(plan.settling).then(() => this.ship(shipped));
  }

  /**
   * A request whose answer was lost may still run at the secondary: cancel
   * it (the cancel waits for it if it is running). Until settled, the
   * pairs' resync copies nothing; if it ran, late, every track of the
   * changed volumes is marked, since the secondary's flash then took a
   * later image than the primary's.
   */
  private settleLost(agent: string, token: string, pairs: PlannedPair[]): Promise<void> {
    const settled = (async () => {
      const late = await this.cancel(agent, token);
      if (!late) return;
      this.event('warning', agent, 'the secondary performed a flash change after the primary gave up waiting; the changed volumes are copied whole');
      for (const planned of pairs) {
        const device = this.service.engine.device(localVolumeName(this.service.engine, planned.primary.pair));
        planned.runs = [{ start: 0, count: Math.ceil(device.sizeBytes / device.trackSize) }];
        await this.markDurably(planned);
      }
    })().catch((error) => this.service.logger.warn({ error: problemMessage(error) }, 'settling a lost flash.mirror failed'));
    for (const planned of pairs) if (planned.primary.source) gateResync(planned.primary.source, settled);
    return settled;
  }

  async withdrawn(session: string, pairs: Array<{ id: string; source: string; target: string }>): Promise<void> {
    const agents = new Set<string>();
    for (const pair of pairs) {
      for (const volume of [pair.source, pair.target]) {
        const primary = this.primaryOf(volume);
        if (primary) agents.add(primary.agent);
      }
    }
    for (const agent of agents) this.sendWithdraw(agent, session, 0);
  }

  /** Tracks a pair's change touches, as runs. */
  private runsOf(pair: FlashMirrorPairChange): TrackRange[] {
    if (pair.tracks !== 'all') return pair.tracks;
    const device = this.service.engine.device(pair.changed);
    return [{ start: 0, count: Math.ceil(device.sizeBytes / device.trackSize) }];
  }

  private async markDurably(planned: PlannedPair): Promise<void> {
    const { pair, source } = planned.primary;
    if (source) return source.markRuns(planned.runs);
    if (pair.outOfSyncBitmap === null) return; // never started: the initial copy takes everything
    const bitmap = pair.outOfSyncBitmap;
    await Promise.all(planned.runs.map((run) => this.service.engine.bitmaps.set(bitmap, run.start, run.count)));
  }

  /** Copies marked tracks of mirroring pairs; their sessions show preparing until duplex again. */
  private ship(planned: PlannedPair[]): void {
    const sessions = new Set<SessionRecord>();
    for (const { primary } of planned) {
      const source = this.service.sourceOf(primary.pair);
      if (!source?.mirroring) continue; // suspended: the resume resyncs the marks
      if (primary.session.state === 'prepared') this.service.setState(primary.session, 'preparing', { detail: null });
      sessions.add(primary.session);
      void source.resync().then(() => setTimeout(() => this.service.mirroring.checkPrepared(primary.session), 0));
    }
    for (const session of sessions) this.event('info', session.name, `session ${session.name}: copying tracks a flash copy changed`);
  }

  /**
   * Coordinated point in time: every source must be a duplex primary mirrored
   * to one secondary agent, which flashes its secondary volumes to the remote
   * targets at the matching point of the stream. Throws when it cannot.
   */
  private async coordinate(change: FlashMirrorChange): Promise<{ later: Promise<void> | null }> {
    if (change.kind !== 'establish') return { later: null }; // refresh and reverse of a coordinated session stay local
    const remote: Array<{ primary: MirroredPrimary; remoteTarget: string }> = [];
    for (const pair of change.pairs) {
      if (!pair.remoteTarget) throw new ProblemError('bad-request', `a coordinated flash names a remoteTarget for every pair (${pair.source} has none)`);
      const primary = this.primaryOf(pair.source);
      if (!primary) throw new ProblemError('invalid-state', `${pair.source} is not the primary of a mirroring session; a coordinated flash needs one`);
      if (!isDuplex(primary)) {
        throw new ProblemError('invalid-state', `session ${primary.session.name} is ${primary.session.state}; a coordinated flash needs its copy sets duplex`);
      }
      remote.push({ primary, remoteTarget: pair.remoteTarget });
    }
    const agents = new Set(remote.map((entry) => entry.primary.agent));
    if (agents.size !== 1) throw new ProblemError('invalid-state', 'a coordinated flash needs every source mirrored to the same secondary agent');
    const [agent] = agents;
    const outcome = await this.askSecondary(
      agent,
      change,
      remote.map((entry) => ({ sourcePair: entry.primary.pair.id, remoteTarget: entry.remoteTarget })),
      remote.map((entry) => entry.primary.source!),
      // Changes the secondary got before its flash but this site writes after it: the remote target
      // gets these tracks as they are here now (the point in time; their local writes are held).
      async (stuck) => {
        const fixups: Array<{ pair: number; track: number }> = [];
        const data: Buffer[] = [];
        for (const [index, entry] of remote.entries()) {
          const device = this.service.engine.device(localVolumeName(this.service.engine, entry.primary.pair));
          for (const track of stuck.get(entry.primary.source!) ?? []) {
            const offset = track * device.trackSize;
            const buffer = Buffer.allocUnsafe(Math.min(device.trackSize, device.sizeBytes - offset));
            await device.readInto(offset, buffer);
            fixups.push({ pair: index, track });
            data.push(buffer);
          }
        }
        return fixups.length > 0 ? { fixups, payload: Buffer.concat(data) } : null;
      },
    );
    const lost = (result: Outcome) => {
      if (result.token) void this.cancel(agent, result.token).then((late) => late && this.event('warning', change.session, `flash ${change.session}: the secondary took its coordinated point in time after the primary gave up; it is not the primary's point in time`));
    };
    if (outcome.later) {
      // Async: checked already; the secondary flashes when the stream reaches this point.
      const later = outcome.later.then((result) => {
        if (result.performed) return;
        lost(result);
        const why = `the secondary did not take the coordinated point in time: ${result.why}`;
        this.event('warning', change.session, `flash ${change.session}: ${why}`);
        for (const pair of change.pairs) this.flash.noteMirrorHandling(change.session, pair.id, 'none', why);
      });
      return { later };
    }
    if (outcome.performed) return { later: null };
    lost(outcome);
    throw outcome.error ?? new ProblemError('invalid-state', `the secondary did not take the coordinated point in time: ${outcome.why}`);
  }

  /**
   * Asks the secondary to perform the flash change at the matching point of
   * the mirror stream. Runs inside the flash's hold (the volumes' local
   * writes are held): new host changes are kept from reaching the secondary,
   * every earlier one is waited for (acknowledged, or applied there with its
   * consistency group), and changes that reached the secondary but whose
   * local write is still held (`stuck`, per copy set) are handed to
   * `prepare`, which may add track data the secondary writes after its flash.
   */
  private async askSecondary(
    agent: string,
    change: FlashMirrorChange,
    pairs: MirrorPairParams[],
    sources: PairSource[],
    prepare: (stuck: Map<PairSource, number[]>) => Promise<{ fixups: Array<{ pair: number; track: number }>; payload: Buffer } | null>,
  ): Promise<Outcome & { later?: Promise<Outcome> }> {
    const until = change.deadline - DEADLINE_MARGIN_MS;
    const releases = [...new Set(sources)].map((source) => source.holdMirroring());
    // One async session's stream carries every change of these volumes: the request goes into it
    // (multi-primary: into this agent's part of the current round).
    const shippers = new Set(sources.map((source) => (source.mode === 'async' ? source.shipper : null)));
    const [shipper] = shippers;
    const inStream = shippers.size === 1 && shipper !== null && shipper !== undefined;
    try {
      // A resync copy already on its way (it read the volume before this change) must land before the
      // secondary's flash; new ones wait for the change (resync gate). Async: queued changes go in the stream.
      while (inStream ? sources.some((source) => source.copiesInFlight > 0) : sources.some((source) => source.streamBusy)) {
        if (Date.now() >= until) {
          return {
            performed: false,
            why: 'earlier writes did not reach the secondary within the hold',
            error: new ProblemError('timeout', 'earlier writes of the sources did not reach the secondary within the hold timeout'),
          };
        }
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      if (sources.some((source) => !source.mirroring)) return { performed: false, why: 'a copy set stopped mirroring' };
      const stuck = new Map(sources.map((source) => [source, source.unsettledTracks()]));
      const extra = await prepare(stuck);
      const token = randomUUID();
      const params: PerformParams = {
        op: 'perform',
        token,
        kind: change.kind,
        session: change.session,
        options: change.options,
        coordinated: change.coordinated,
        pairs,
        ...(extra ? { fixups: extra.fixups } : {}),
      };
      const timeoutMs = until - Date.now();
      if (timeoutMs < 20) {
        return { performed: false, why: 'no time left in the hold', error: new ProblemError('timeout', 'no time was left in the hold to reach the secondary') };
      }
      const failed = (error: unknown): Outcome => {
        const problem = isProblemError(error) ? error : new ProblemError('internal-error', problemMessage(error));
        // A refusal is certain; a lost request or answer may still run there.
        const lost = problem.problem === 'link-down' || problem.problem === 'timeout';
        return { performed: false, why: problemMessage(error), token: lost ? token : undefined, error: problem };
      };
      if (inStream) {
        // The secondary performs it when the stream reaches this point: right after the group holding
        // every change queued so far, before any later one. Nothing waits here for the link (it may be
        // busy with large groups): its answer, or refusal, arrives after the writes are released.
        const placed = shipper.mark('flash.mirror', { ...params }, extra?.payload ?? null, sources[0].record.id);
        // The marker settles when its round is committed (the secondary ran it while applying the round,
        // between the part's changes before and after it); its outcome is asked there. A marker runs at its
        // place or never (the cancel makes sure), so even when the part was dropped (the session stopped)
        // the secondary's answer is final: performed means at the right point.
        const later = placed.then(
          () => this.markerOutcome(agent, token, 10, 'the secondary did not run the stream marker'),
          (error) => this.markerOutcome(agent, token, 1, problemMessage(error)),
        );
        return { performed: true, why: '', later };
      }
      try {
        await this.service.peers.link(agent).call('flash.mirror', { ...params }, extra?.payload ?? null, { timeoutMs });
        return { performed: true, why: '' };
      } catch (error) {
        return failed(error);
      }
    } finally {
      for (const release of releases) release();
    }
  }

  /**
   * The outcome of a multi-primary marker, asked once its round is committed
   * (or its part was dropped): the secondary ran it, at its place in the
   * stream, or refused it, or never had it (then the `cancel` makes sure it
   * never runs later; `notRun` says why). Unanswered after `attempts`, it
   * counts as lost (`token`) and is settled like a lost request.
   */
  private async markerOutcome(agent: string, token: string, attempts: number, notRun: string): Promise<Outcome> {
    let why = '';
    for (let attempt = 0; attempt < attempts; attempt++) {
      try {
        const answer = await this.service.peers.link(agent).call('flash.mirror', { op: 'cancel', token }, null, { waitForLinkMs: 5000, timeoutMs: 60_000 });
        const result = answer.result;
        if (result?.performed === true) return { performed: true, why: '' };
        return { performed: false, why: result?.why ?? notRun };
      } catch (error) {
        why = problemMessage(error);
        if (attempt + 1 < attempts) await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
    return { performed: false, why: `${notRun}; its outcome is unknown: ${why}`, token };
  }

  /** Settles a request whose answer was lost: true when the secondary performed it (maybe late). */
  private async cancel(agent: string, token: string): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        const answer = await this.service.peers.link(agent).call('flash.mirror', { op: 'cancel', token }, null, { waitForLinkMs: 5000, timeoutMs: 60_000 });
        return answer.result?.performed === true;
      } catch (error) {
        // Until the secondary answers nothing is known: assume the worst after a while.
        if (attempt >= 20) {
          this.service.logger.warn({ error: problemMessage(error) }, 'a lost flash.mirror could not be settled; copying whole volumes');
          return true;
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  private sendWithdraw(agent: string, session: string, attempt: number): void {
    const key = `${agent}:${session}`;
    clearTimeout(this.pendingWithdraws.get(key));
    this.pendingWithdraws.delete(key);
    void this.service.peers
      .link(agent)
      .call('flash.mirror', { op: 'withdraw', token: randomUUID(), session }, null, { waitForLinkMs: 2000, timeoutMs: 10_000 })
      .then(
        () => this.event('info', session, `flash ${session} withdrawn at the secondary too`),
        (error) => {
          if (attempt === 0) this.event('warning', session, `the secondary did not confirm withdrawing flash ${session} (${problemMessage(error)}); retrying`);
          if (attempt + 1 >= WITHDRAW_ATTEMPTS) return;
          const timer = setTimeout(() => this.sendWithdraw(agent, session, attempt + 1), WITHDRAW_RETRY_MS);
          timer.unref();
          this.pendingWithdraws.set(key, timer);
        },
      );
  }

  /** Withdraws still to be confirmed by a secondary (for tests and diagnostics). */
  get unconfirmedWithdraws(): number {
    return this.pendingWithdraws.size;
  }

  private event(severity: 'info' | 'warning', subject: string, message: string): void {
    this.service.engine.catalog.recordEvent('flash.mirror', severity, subject, message);
  }
}

/** Holds a pair's resync copies until `until` settles too (on top of any gate already there). */
function gateResync(source: PairSource, until: Promise<void>): void {
  const gate: Promise<void> = Promise.all([source.resyncGate, until])
    .then(() => {})
    .finally(() => {
      if (source.resyncGate === gate) source.resyncGate = null;
    });
  source.resyncGate = gate;
}

/** Connects flash copy and mirroring of one agent: the hooks, and the `flash.mirror` peer request. */
export function installFlashMirror(service: FlashMirrorServiceHooks, flash: FlashService): FlashMirror {
  const mirror = new FlashMirror(service, flash);
  flash.setMirrorHooks(mirror);
  service.target.flashMirror = mirror;
  // Multi-primary parts carry flash.mirror markers: the secondary runs them where the round is applied.
  service.applier.onMarker = (_session, from, marker, payload) => mirror.target.runMarker(from, marker, payload);
  return mirror;
}
