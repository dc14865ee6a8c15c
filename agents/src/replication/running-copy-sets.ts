import { ProblemError } from '@tandem/contract';
import { VolumeDevice } from '../storage/volume-device.ts';
import { problemMessage, type MirrorMode, type PairSource } from './pair-source.ts';
import { MultiPrimaryRunning } from './multi-primary-running.ts';
import { localVolumeId, localVolumeName } from './copy-set-volumes.ts';
import type { ReplicationService } from './service.ts';
import { atSecondary, type CopySetOnTheWire, type HeldCopySet, type SessionRecord } from './session-store.ts';

/** States in which copy sets are added to and removed from a session that was started. */
const RUNNING_STATES: ReadonlySet<SessionRecord['state']> = new Set(['preparing', 'prepared', 'suspended']);
/** How long a removal waits for the copy set's changes in flight (mirrored writes, queued groups) to settle. */
const DRAIN_TIMEOUT_MS = 60_000;

/**
 * Adding and removing copy sets while a session runs, without disturbing
 * the other copy sets.
 *
 * An added copy set is tracked from the moment it is added (its out-of-sync
 * bitmap marks every allocated track, then every host write) and copied to
 * the target, which trims its volume first. While it copies it is *joining*:
 * not yet a member of the session's consistency group. The session is
 * Preparing, its consistency time covers the member copy sets only (the
 * joining one shows `syncing`), and it is Prepared again once the copy set
 * is duplex. In an async session the joining copy set mirrors synchronously
 * until duplex and then joins the consistency groups (PairSource.joinGroups),
 * so no group the target applies claims an image of a volume that is still
 * being copied. A snapshot-shipping session ships the new copy set's whole
 * image in its next cycle, cut at one instant with the others.
 *
 * A removed copy set stops mirroring (host writes only mark it), its changes
 * in flight settle, the other site forgets it (dropping its taps and
 * bitmaps there), then this site does. The other copy sets are not touched.
 *
 * Joining is kept with the copy set (`pairs.joining`): an agent restarted
 * (or a session resumed) while a copy set joins copies what its bitmap still
 * marks, synchronously, and joins afterwards. Multi-primary sessions use the
 * same mechanism at the primary agent that holds the copy set; the control agent's
 * side (the rounds, the session state) is multi-primary-running.ts.
 */
export class RunningCopySets {
  private readonly joiningNow = new Set<string>();
  /** Copy sets being removed: not a member of the consistency group any more (a multi-primary hold skips them). */
  private readonly removing = new Set<string>();
  /** Adding and removing member copy sets of running multi-primary sessions. */
  readonly multiPrimary: MultiPrimaryRunning;

  constructor(private readonly service: ReplicationService) {
    this.multiPrimary = new MultiPrimaryRunning(service, this);
  }

  /**
   * The copy set was added to a running session and has not joined its
   * consistency group yet (at its source; at the target the same flag says
   * that its initial copy has not completed, see `initialCopyPending`).
   */
  isJoining(pair: HeldCopySet): boolean {
    const session = this.service.sessions.get(pair.sessionId);
    return pair.joining === true && session !== undefined && this.service.role(session).source;
  }

  /**
   * At the target (H2) of a copy set: its initial copy (the session's first,
   * from its start, or as a copy set added to a running session) had not
   * completed when last heard of, so its volume
   * here is no consistent image: set when it is attached, cleared when its
   * source tells it joined (`pair.joined`) and by a failback that copies it
   * whole. A recover keeps it (reported `consistent: false`).
   */
  initialCopyPending(pair: HeldCopySet): boolean {
    const session = this.service.sessions.get(pair.sessionId);
    return pair.joining === true && session !== undefined && !this.service.role(session).source;
  }

  /**
   * Target: the session was started (`session.prepare-target`): the initial
   * copy of every copy set begins, so each is pending as a joining one is
   * (cleared by `initialCopiesDone`; a recover before that reports it
   * inconsistent and the failback copies it whole).
   */
  initialCopiesStart(session: SessionRecord): void {
    if (this.service.role(session).source) return;
    for (const pair of this.service.pairsOf(session)) {
      if (pair.joining === true) continue;
      pair.joining = true;
      this.service.store.saveCopySet(pair);
    }
  }

  /** Target: the source reports the session prepared (no copy set joins): every initial copy here completed. */
  initialCopiesDone(session: SessionRecord): void {
    if (this.service.role(session).source) return;
    for (const pair of this.service.pairsOf(session)) {
      if (pair.joining !== true) continue;
      pair.joining = false;
      this.service.store.saveCopySet(pair);
    }
  }

  /** Target: the source tells that a copy set finished its initial copy and joined (`pair.joined`). */
  joinedAtSource(pairId: string): void {
    const pair = this.service.pair(pairId);
    const session = this.service.session(pair.sessionId);
    if (this.service.role(session).source || pair.joining !== true) return;
    pair.joining = false;
    this.service.store.saveCopySet(pair);
  }

  /** The copy set is being removed (its changes in flight settle). */
  isRemoving(pair: HeldCopySet): boolean {
    return this.removing.has(pair.id);
  }

  private setJoining(pair: HeldCopySet, joining: boolean): void {
    if ((pair.joining ?? false) === joining) return;
    pair.joining = joining;
    if (this.service.pairs.has(pair.id)) this.service.store.saveCopySet(pair);
  }

  /** True when copy sets of a session in this state are added and removed by this class (not while defined). */
  static handles(session: SessionRecord): boolean {
    return RUNNING_STATES.has(session.state);
  }

  private checkSource(session: SessionRecord, what: string, fromControlAgent = false): void {
    if (!fromControlAgent && this.service.role(session).member) {
      throw new ProblemError('invalid-state', `copy sets of ${session.name} are ${what} at its control agent, the agent where it was defined`);
    }
    if (!RUNNING_STATES.has(session.state)) {
      throw new ProblemError(
        'invalid-state',
        `session ${session.name} is ${session.state}; copy sets are ${what} while it is defined, preparing, prepared or suspended`,
      );
    }
    if (!this.service.role(session).source) {
      throw new ProblemError('invalid-state', `session ${session.name} runs from the other site now (${session.direction}); copy sets change at its source`);
    }
  }

  /** How a joining copy set mirrors until it joined. */
  modeOf(session: SessionRecord): MirrorMode {
    // An async copy set copies synchronously until it joins the consistency groups.
    return session.type === 'semi-sync' ? 'semi-sync' : session.type === 'snapshot-shipping' ? 'snapshot-shipping' : 'sync';
  }

  /**
   * Adds a copy set to a session that was started (the caller checked names
   * and sizes). `attached`: the other site adopted it already (a member of a
   * multi-primary session, whose control agent had the secondary attach it and asks
   * the member to add it).
   */
  async add(session: SessionRecord, pair: HeldCopySet, options: { attached?: boolean } = {}): Promise<HeldCopySet> {
    const service = this.service;
    const engine = service.engine;
    this.checkSource(session, 'added', options.attached);
    // The other site adopts it first: its volume refuses host writes and is trimmed (the copy skips unallocated tracks).
    if (!options.attached) {
      await service
        .link(session)
        .call('pair.attach', { session: session.id, pair: atSecondary(pair) }, null, {
          waitForLinkMs: 5000,
          timeoutMs: 120_000,
        });
    }
    // Tracked from now: a clear bitmap and the tap first, then every allocated track is marked.
    pair.outOfSyncBitmap = await engine.bitmaps.create(localVolumeId(engine, pair), 'clear');
    const running = session.state === 'preparing' || session.state === 'prepared';
    pair.joining = running && session.type !== 'snapshot-shipping';
    service.store.saveCopySet(pair);
    service.pairs.set(pair.id, pair);
    const source = service.mirroring.ensureSource(session, pair);
    service.refreshTaps();
    // Host writes that chose their taps before the refresh hold the volume's range lock until their local write is done.
    const device = engine.device(localVolumeName(engine, pair));
    if (device instanceof VolumeDevice) (await device.lock.acquireAll())();
    let offset = 0;
    for (const run of device.allocationMap(0, device.sizeBytes)) {
      if (run.allocated) {
        const first = Math.floor(offset / device.trackSize);
        const end = Math.ceil((offset + run.length) / device.trackSize);
        await engine.bitmaps.set(pair.outOfSyncBitmap, first, end - first);
      }
      offset += run.length;
    }
    const marked = engine.bitmaps.view(pair.outOfSyncBitmap).setCount;
    engine.catalog.recordEvent(
      'pair.added',
      'info',
      session.name,
      `copy set ${pair.h1Volume} -> ${pair.h2Volume} added to ${session.type} session ${session.name} (${session.state}); ${marked} allocated track(s) to copy`,
      { pair: pair.id, h1Volume: pair.h1Volume, h2Volume: pair.h2Volume, sessionState: session.state, markedTracks: marked },
    );
    if (!running) return pair; // suspended: host writes only mark; resume copies it with the others
    if (session.type !== 'snapshot-shipping' && session.state === 'prepared') {
      service.setState(session, 'preparing', { detail: `copy set ${pair.h1Volume} -> ${pair.h2Volume} joining: initial copy` });
    }
    if (session.type === 'async') source.shipper = null;
    // The session's run here, or a first one (a primary agent new to a running multi-primary session fences the secondary now).
    const run = service.mirroring.runOf(session) || (await service.mirroring.fenceTargets(session));
    source.startMirroring(this.modeOf(session), run);
    service.refreshTaps();
    // Snapshot shipping: the next cycle ships its marked tracks with the others'.
    // Once its copy is done (the resync settled) it joins: see `settle`.
    if (session.type !== 'snapshot-shipping') void source.resync().then(() => service.mirroring.checkPrepared(session));
    return pair;
  }

  /**
   * Called when a copy set of the session reached duplex: joining copy sets
   * that are duplex join now. True while some copy set of the session is
   * still joining (the session is not Prepared yet).
   */
  settle(session: SessionRecord): boolean {
    let pending = false;
    for (const pair of this.service.pairsOf(session)) {
      if (!this.isJoining(pair)) continue;
      pending = true;
      const source = this.service.sourceOf(pair);
      if (source?.mirroring && !source.isResyncing && !this.joiningNow.has(pair.id)) void this.join(session, pair, source);
    }
    return pending;
  }

  private async join(session: SessionRecord, pair: HeldCopySet, source: PairSource): Promise<void> {
    this.joiningNow.add(pair.id);
    try {
      if (session.type === 'async') {
        const shipper = this.service.mirroring.shippers.get(session.id);
        if (!shipper || !source.mirroring) return;
        await source.joinGroups(shipper);
      }
      if (!this.isJoining(pair) || !this.service.pairs.has(pair.id)) return;
      this.setJoining(pair, false);
      // The target learns that its volume holds the whole image now (a recover before this reports it inconsistent).
      void this.service
        .link(session)
        .call('pair.joined', { pair: pair.id }, null, { waitForLinkMs: 2000, timeoutMs: 10_000 })
        .catch((error) => this.service.logger.warn({ pair: pair.id, error: problemMessage(error) }, 'could not tell the target that the copy set joined'));
      this.service.engine.catalog.recordEvent(
        'pair.joined',
        'info',
        session.name,
        `copy set ${pair.h1Volume} -> ${pair.h2Volume} finished its initial copy and joined session ${session.name}'s consistency group`,
        { pair: pair.id, h1Volume: pair.h1Volume, h2Volume: pair.h2Volume },
      );
    } catch (error) {
      this.service.logger.warn({ pair: pair.id, error: problemMessage(error) }, 'copy set could not join');
    } finally {
      this.joiningNow.delete(pair.id);
    }
    this.service.mirroring.checkPrepared(session);
  }

  /**
   * Mirroring (re)starts at this site (a start, a resume, a restart of the
   * agent): the copy sets still joining copy what their bitmaps mark, in the
   * joining mode, and join afterwards (see `settle`). Their ids.
   */
  resumeJoining(session: SessionRecord): Set<string> {
    const joining = new Set<string>();
    for (const pair of this.service.pairsOf(session)) {
      if (!this.isJoining(pair)) continue;
      if (session.type === 'snapshot-shipping') {
        this.setJoining(pair, false);
        continue;
      }
      joining.add(pair.id);
      const marked = pair.outOfSyncBitmap === null ? 0 : this.service.engine.bitmaps.view(pair.outOfSyncBitmap).setCount;
      this.service.engine.catalog.recordEvent(
        'pair.joining',
        'info',
        session.name,
        `copy set ${pair.h1Volume} -> ${pair.h2Volume} resumes its initial copy: ${marked} track(s) still to copy, then it joins session ${session.name}'s consistency group`,
        { pair: pair.id, h1Volume: pair.h1Volume, h2Volume: pair.h2Volume, markedTracks: marked },
      );
    }
    return joining;
  }

  /** The session is Preparing only because copy sets are joining; every member copy set is duplex. */
  onlyJoining(session: SessionRecord): boolean {
    if (session.state !== 'preparing') return false;
    let joining = false;
    for (const pair of this.service.pairsOf(session)) {
      if (this.isJoining(pair)) {
        joining = true;
        continue;
      }
      const source = this.service.sourceOf(pair);
      if (this.service.role(session).source && (!source?.mirroring || source.isResyncing)) return false;
    }
    // Multi-primary control agent: copy sets joining at member agents, the members' own copy sets duplex.
    const members = this.multiPrimary.membersJoining(session);
    if (members === null) return false;
    return joining || members;
  }

  /**
   * Removes a copy set from a session that was started; the other copy sets
   * keep mirroring. `fromControlAgent`: the control agent of a multi-primary session asks
   * a member to remove it; `lastHere`: that member may give up its last copy
   * set (the session has others at other agents).
   */
  async remove(session: SessionRecord, pair: HeldCopySet, options: { lastHere?: boolean; fromControlAgent?: boolean } = {}): Promise<void> {
    const service = this.service;
    this.checkSource(session, 'removed', options.fromControlAgent);
    const copySets = service.store.copySetsOf(session.id).length;
    if (copySets === 1 && !options.lastHere) {
      throw new ProblemError(
        'invalid-state',
        `${pair.h1Volume} is the last copy set of session ${session.name}, which is ${session.state}; terminate the session first (or add another copy set)`,
      );
    }
    const link = service.link(session);
    try {
      await link.ready(5000);
    } catch (error) {
      throw new ProblemError('link-down', `the other site must learn of the removal and cannot be reached: ${problemMessage(error)}`);
    }
    const source = service.sourceOf(pair);
    const mirroring = source?.mirroring ?? false;
    const mode = source?.mode;
    const shipping = session.type === 'snapshot-shipping' && mirroring;
    // A shipping cycle in progress may carry its tracks: cycles stop until it is gone (the marks of the others stay).
    if (shipping) await service.shipping.stop(session);
    const restore = () => {
      if (!source || !mirroring || !RUNNING_STATES.has(session.state) || session.state === 'suspended') return;
      source.startMirroring(mode!, service.mirroring.runOf(session));
      if (shipping) service.shipping.run(session, service.mirroring.runOf(session));
      else void source.resync().then(() => service.mirroring.checkPrepared(session));
    };
    // Multi-primary: the rounds' holds skip it from now (its last part settles with a committed round).
    this.removing.add(pair.id);
    try {
      // From here host writes only mark it; its mirrored writes and queued groups settle.
      await source?.stopMirroring('being removed from the session');
      if (source) await this.drain(session, pair, source);
      await link.call('pair.remove', { pair: pair.id }, null, { waitForLinkMs: 5000 });
    } catch (error) {
      this.removing.delete(pair.id);
      restore();
      throw error;
    }
    this.removing.delete(pair.id);
    // Its tap, bitmaps and record go here too (the event `pair.removed` is recorded at both sites).
    service.copySets.forgetPair(pair);
    if (shipping && RUNNING_STATES.has(session.state) && session.state !== 'suspended') service.shipping.run(session, service.mirroring.runOf(session));
    service.mirroring.checkPrepared(session);
  }

  /** Waits until nothing of the copy set is in flight: host changes, resync copies, changes queued in consistency groups. */
  private async drain(session: SessionRecord, pair: HeldCopySet, source: PairSource): Promise<void> {
    const shipper = this.service.mirroring.shippers.get(session.id);
    const bitmap = pair.outOfSyncBitmap;
    const busy = () => {
      if (bitmap === null) return false;
      const view = this.service.engine.bitmaps.view(bitmap);
      // Changes in flight and queued changes keep their tracks marked.
      for (let track = view.nextSet(0); track >= 0; track = view.nextSet(track + 1)) {
        if (source.isBusy(track) || shipper?.isPending(pair.id, track)) return true;
      }
      return false;
    };
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    while (busy()) {
      if (Date.now() > deadline) throw new ProblemError('timeout', `changes of ${pair.h1Volume} are still in flight to the other site`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** At the target: adopts a copy set added to a running session; its volume refuses host writes and starts from zeroes. */
  async attach(sessionId: string, record: CopySetOnTheWire): Promise<void> {
    const service = this.service;
    const session = service.session(sessionId);
    if (!RUNNING_STATES.has(session.state) || service.role(session).source) {
      throw new ProblemError('invalid-state', `session ${session.name} is ${session.state} here; it takes no copy set now`);
    }
    // Its initial copy starts now (a copy set added while suspended is copied by the resume, with the others).
    const joining = session.type !== 'snapshot-shipping' && (session.state === 'preparing' || session.state === 'prepared');
    const adopted = service.copySets.adoptPair({ ...record, joining });
    const device = service.engine.device(localVolumeName(service.engine, adopted));
    await device.trim(0, device.sizeBytes);
    service.engine.catalog.recordEvent(
      'pair.added',
      'info',
      session.name,
      `copy set ${record.h1Volume} -> ${record.h2Volume} added to running session ${session.name} by the other site; ${record.localVolume} is its target`,
      { pair: record.id, h1Volume: record.h1Volume, h2Volume: record.h2Volume },
    );
  }
}
