import { isProblemError, ProblemError } from '@tandem/contract';
import { VolumeDevice } from '../storage/volume-device.ts';
import type { PeerHandlerTable } from './link/peer-protocol.ts';
import { problemMessage, type PairSource } from './pair-source.ts';
import { localVolumeId, localVolumeName } from './copy-set-volumes.ts';
import type { ReplicationHooks } from './hooks.ts';
import { atSecondary, heldElsewhere, type CopySetOnTheWire, type CopySetRecord, type HeldCopySet, type SessionRecord } from './session-store.ts';

/** What running-copy-sets uses of the service and the other parts (hooks.ts). */
export type RunningCopySetsHooks = Pick<
  ReplicationHooks,
  'agentId' | 'copySets' | 'engine' | 'joining' | 'link' | 'logger' | 'mirroring' | 'multiPrimary' | 'pair' | 'pairs' | 'peers' | 'refreshTaps' | 'role' | 'rounds' | 'session' | 'setState' | 'shipping' | 'sourceOf' | 'store'
>;

/** States in which copy sets are added to and removed from a session that was started. */
const RUNNING_STATES: ReadonlySet<SessionRecord['state']> = new Set(['preparing', 'prepared', 'suspended']);
/** How long a removal waits for the copy set's changes in flight (mirrored writes, queued groups) to settle. */
const DRAIN_TIMEOUT_MS = 60_000;

/**
 * Adding and removing copy sets while a session runs, without disturbing
 * the other copy sets: one path at the control agent, whichever primary agent
 * holds the copy set's H1 volume (itself, or another agent of a
 * multi-primary async session, which it asks over the peer link).
 *
 * - add: the secondary adopts the copy set first (`pair.attach`: its volume
 *   refuses host writes and is trimmed, its initial copy pending), then the
 *   primary agent *tracks* it (`track`: its out-of-sync bitmap marks every
 *   allocated track, then every host write) and copies it while it is
 *   joining (joining.ts): not yet a member of the consistency group; the
 *   session is Preparing until it joined. A primary agent new to a running
 *   async session runs it from its first copy set on (`mp.run`) and takes
 *   part in the control agent's rounds from the next round boundary
 *   (CutCoordinator.addParticipant). A snapshot-shipping session ships the new
 *   copy set's whole image in its next cycle, cut at one instant with the others.
 * - remove: the primary agent *untracks* it (`untrack`): it stops mirroring
 *   (host writes only mark it; the rounds' holds skip it), its changes in
 *   flight settle (with a committed round), the secondary forgets it (dropping
 *   its taps and bitmaps there), then the primary agent and the control agent
 *   do. A primary agent whose last copy set left stops running the session
 *   (`mp.stop`) and leaves the rounds; the control agent goes on alone.
 *
 * Copy sets are added while the session is preparing, prepared or suspended
 * (suspended: host writes only mark; the resume copies it with the others).
 */
export class RunningCopySets {
  /** Copy sets being removed: not a member of the consistency group any more (a round's hold skips them). */
  private readonly removing = new Set<string>();

  constructor(private readonly service: RunningCopySetsHooks) {}

  /** True when copy sets of a session in this state are added and removed by this class (not while defined). */
  static handles(session: SessionRecord): boolean {
    return RUNNING_STATES.has(session.state);
  }

  /** The copy set is being removed (its changes in flight settle). */
  isRemoving(pair: HeldCopySet): boolean {
    return this.removing.has(pair.id);
  }

  /** Refuses a change that cannot run at this agent or in this state. */
  private check(session: SessionRecord, what: string, fromControlAgent = false): void {
    const role = this.service.role(session);
    if (!fromControlAgent && !role.control) {
      throw new ProblemError('invalid-state', `copy sets of ${session.name} are ${what} at its control agent, the agent where it was defined`);
    }
    if (!RUNNING_STATES.has(session.state)) {
      throw new ProblemError(
        'invalid-state',
        `session ${session.name} is ${session.state}; copy sets are ${what} while it is defined, preparing, prepared or suspended`,
      );
    }
    if (!role.source) {
      throw new ProblemError('invalid-state', `session ${session.name} runs from the other site now (${session.direction}); copy sets change at its source`);
    }
  }

  // --- the control agent ---

  /** Adds a copy set (names and sizes checked by the caller) to a session that was started. */
  async add(session: SessionRecord, pair: HeldCopySet): Promise<HeldCopySet> {
    const service = this.service;
    this.check(session, 'added');
    const here = pair.primaryAgentId === service.agentId;
    const site = service.multiPrimary.siteOf(pair.primaryAgentId);
    const running = session.state === 'preparing' || session.state === 'prepared';
    // A primary agent new to the session runs it from its first copy set on and joins the rounds.
    const newcomer = !here && running && !service.multiPrimary.memberAgents(session).includes(pair.primaryAgentId);
    const coordinator = service.rounds.coordinatorOf(session);
    if (newcomer && !coordinator?.active) {
      throw new ProblemError(
        'invalid-state',
        `session ${session.name} forms no consistency groups now (${session.state}${session.detail ? `: ${session.detail}` : ''}); add ${site}'s first copy set once it does, or while it is suspended`,
      );
    }
    const secondary = service.link(session);
    await secondary.call('pair.attach', { session: session.id, pair: atSecondary(pair) }, null, { waitForLinkMs: 5000, timeoutMs: 120_000 });
    if (here) {
      await this.track(session, pair);
      return pair;
    }
    const primary = service.peers.link(pair.primaryAgentId);
    const record = heldElsewhere(pair);
    try {
      await secondary.call('mp.secondary-pair', { pair: atSecondary(pair) }, null, { waitForLinkMs: 5000 });
      // The primary agent learns the copy set (and the session, when suspended and new to it), then tracks and copies it.
      await primary.call('mp.join', { record: session, pair }, null, { waitForLinkMs: 5000 });
      await primary.call('mp.add', { session: session.id, pair: pair.id, newcomer }, null, { waitForLinkMs: 5000, timeoutMs: 120_000 });
      // A newcomer runs the session (its coordinated shipper; the copy set still joining copies on) and takes part in
      // the rounds from the next one: its parts carry the copy set's changes only once it joined.
      if (newcomer) await primary.call('mp.run', { session: session.id }, null, { waitForLinkMs: 3000, timeoutMs: 30_000 });
    } catch (error) {
      await primary.call('pair.remove', { pair: pair.id }, null, { waitForLinkMs: 2000 }).catch(() => {});
      await secondary.call('mp.pair-removed', { session: session.id, pair: pair.id }, null, { waitForLinkMs: 2000 }).catch(() => {});
      throw error;
    }
    service.store.saveCopySet(record);
    if (newcomer) coordinator!.addParticipant(service.rounds.remoteParticipant(session, record.primaryAgentId));
    if (running) service.joining.expect(record);
    service.engine.catalog.recordEvent(
      'pair.added',
      'info',
      session.name,
      `copy set ${site}:${record.h1Volume} -> ${record.h2Volume} added to ${session.name} (${session.state}; primary at ${site})` +
        (running ? '; it joins the consistency group once its initial copy is done' : ''),
      { pair: pair.id, h1Volume: record.h1Volume, h2Volume: record.h2Volume, primarySite: site, sessionState: session.state },
    );
    if (running && session.state === 'prepared') {
      service.setState(session, 'preparing', { detail: `copy set ${site}:${record.h1Volume} -> ${record.h2Volume} joining: initial copy` });
    }
    return pair;
  }

  /** Removes a copy set from a session that was started; the other copy sets keep mirroring. */
  async remove(session: SessionRecord, record: CopySetRecord): Promise<void> {
    const service = this.service;
    this.check(session, 'removed');
    if (service.store.copySetsOf(session.id).length === 1) {
      throw new ProblemError(
        'invalid-state',
        `${record.h1Volume} is the last copy set of session ${session.name}, which is ${session.state}; terminate the session first (or add another copy set)`,
      );
    }
    if (record.primaryAgentId === service.agentId) return this.untrack(session, service.pair(record.id));
    const site = service.multiPrimary.siteOf(record.primaryAgentId);
    // The agent's last copy set: it leaves the rounds once the copy set is gone (the next round boundary).
    const last = service.multiPrimary.memberCopySets(session).filter((row) => row.primaryAgentId === record.primaryAgentId).length === 1;
    const primary = service.peers.link(record.primaryAgentId);
    try {
      await primary.call('mp.remove', { session: session.id, pair: record.id, last }, null, { waitForLinkMs: 5000, timeoutMs: 120_000 });
    } catch (error) {
      // The primary agent's own refusal keeps its problem code; one that cannot be reached is link-down.
      if (isProblemError(error) && error.problem !== 'timeout') throw error;
      throw new ProblemError('link-down', `${site} could not remove ${record.h1Volume}: ${problemMessage(error)}`);
    }
    await service
      .link(session)
      .call('mp.pair-removed', { session: session.id, pair: record.id }, null, { waitForLinkMs: 5000 })
      .catch((error) => service.logger.warn({ pair: record.id, error: problemMessage(error) }, 'the secondary could not forget a removed copy set'));
    service.store.deleteCopySet(record.id);
    service.joining.forget(record.id);
    if (last) {
      service.rounds.coordinatorOf(session)?.removeParticipant(record.primaryAgentId);
      // It holds nothing of the session any more: it stops running it (best effort; it suspends by itself when no round reaches it).
      await primary
        .call('mp.stop', { session: session.id, reason: `its last copy set left session ${session.name}` }, null, { waitForLinkMs: 500, timeoutMs: 10_000 })
        .catch(() => {});
    }
    service.engine.catalog.recordEvent(
      'pair.removed',
      'info',
      session.name,
      `copy set ${site}:${record.h1Volume} -> ${record.h2Volume} removed from session ${session.name} (${session.state}); ${site}:${record.h1Volume} is no longer mirrored`,
      { pair: record.id, h1Volume: record.h1Volume, h2Volume: record.h2Volume, primarySite: site, sessionState: session.state },
    );
    service.mirroring.checkPrepared(session);
  }

  // --- the copy set's primary agent (the control agent in-process, another agent through `mp.add` / `mp.remove`) ---

  /** Tracks a copy set the secondary adopted already, and copies it while the session runs. */
  private async track(session: SessionRecord, pair: HeldCopySet): Promise<void> {
    const service = this.service;
    const engine = service.engine;
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
    if (!running) return; // suspended: host writes only mark; resume copies it with the others
    if (session.type !== 'snapshot-shipping' && session.state === 'prepared') {
      service.setState(session, 'preparing', { detail: `copy set ${pair.h1Volume} -> ${pair.h2Volume} joining: initial copy` });
    }
    if (session.type === 'async') source.shipper = null;
    // The session's run here, or a first one (a primary agent new to a running session fences the secondary now).
    const run = service.mirroring.runOf(session) || (await service.mirroring.fenceTargets(session));
    source.startMirroring(service.joining.modeOf(session), run);
    service.refreshTaps();
    // Snapshot shipping: the next cycle ships its marked tracks with the others'. Once its copy is done (the resync
    // settled) it joins: see Joining.settle.
    if (session.type !== 'snapshot-shipping') void source.resync().then(() => service.mirroring.checkPrepared(session));
  }

  /** Stops mirroring a copy set, lets its changes in flight settle, has the secondary forget it, then forgets it here. */
  private async untrack(session: SessionRecord, pair: HeldCopySet): Promise<void> {
    const service = this.service;
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
    // The rounds' holds skip it from now (its last part settles with a committed round).
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

  // --- the secondary ---

  /** Adopts a copy set added to a running session; its volume refuses host writes and starts from zeroes. */
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

  // --- peer requests ---

  /** A session's copy set of a request from its control agent. */
  private fromControlAgent(params: { session: string; pair: string }, peerAgentId: string, what: string): { session: SessionRecord; pair: HeldCopySet } {
    const session = this.service.multiPrimary.memberSession(params);
    if (peerAgentId !== session.controlAgentId) throw new ProblemError('access-denied', `only the control agent of the session ${what} copy sets`);
    const pair = this.service.pair(params.pair);
    if (pair.sessionId !== session.id) throw new ProblemError('bad-request', `copy set ${pair.id} is not in session ${session.name}`);
    return { session, pair };
  }

  /** Adding and removing copy sets at another primary agent and at the secondary: this part's peer requests. */
  readonly peerHandlers: PeerHandlerTable<'mp.add' | 'mp.remove' | 'mp.pair-removed'> = {
    'mp.add': async ({ params, peerAgentId }) => {
      // The control agent added a copy set whose primary volume is here (mp.join adopted it): track and copy it.
      const { session, pair } = this.fromControlAgent(params, peerAgentId, 'adds');
      // New to the running session (or back after its last copy set left): it runs it from now, this copy set joining.
      if (params.newcomer === true && session.state !== 'preparing' && session.state !== 'prepared') {
        this.service.setState(session, 'preparing', { detail: null }, false);
      }
      this.check(session, 'added', true);
      await this.track(session, pair);
      return {};
    },
    'mp.remove': async ({ params, peerAgentId }) => {
      const { session, pair } = this.fromControlAgent(params, peerAgentId, 'removes');
      this.check(session, 'removed', true);
      await this.untrack(session, pair);
      return {};
    },
    'mp.pair-removed': ({ params, peerAgentId }) => {
      // At the secondary: a copy set of another primary agent is gone (that agent had it forget the pair already, or the add was undone).
      const service = this.service;
      const session = service.session(params.session);
      if (peerAgentId !== session.controlAgentId) throw new ProblemError('access-denied', 'only the control agent of the session removes copy sets');
      const pair = service.pairs.get(params.pair);
      if (pair) service.copySets.forgetPair(pair);
      service.store.deleteCopySet(params.pair);
      return {};
    },
  };
}
