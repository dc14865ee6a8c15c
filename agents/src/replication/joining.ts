import type { MemberStatus } from './cut-coordinator.ts';
import { problemMessage, type MirrorMode, type PairSource } from './pair-source.ts';
import type { ReplicationHooks } from './hooks.ts';
import type { CopySetRecord, HeldCopySet, SessionRecord } from './session-store.ts';

/** What joining uses of the service and the other parts (hooks.ts). */
export type JoiningHooks = Pick<
  ReplicationHooks,
  'agentId' | 'engine' | 'link' | 'logger' | 'mirroring' | 'multiPrimary' | 'pair' | 'pairs' | 'pairsOf' | 'role' | 'rounds' | 'session' | 'sessions' | 'sourceOf' | 'store'
>;

/**
 * Joining: a copy set added to a running session is copied to its target
 * before it becomes a member of the session's consistency group. What each
 * agent knows of it:
 *
 * - its primary agent tracks it (`pairs.joining`): it mirrors in the joining
 *   mode (an async copy set synchronously) until duplex, then joins the
 *   consistency groups (PairSource.joinGroups) and tells the target
 *   (`pair.joined`). An agent restarted (or a session resumed) while a copy
 *   set joins copies what its bitmap still marks and joins afterwards;
 * - its secondary agent keeps the same flag as "initial copy pending": the
 *   volume there is no consistent image until the copy set joined (the
 *   session's first copy too, from `session.prepare-target` to Prepared);
 * - the control agent keeps the session Preparing while a copy set joins
 *   anywhere: its own copy sets by their flag, another primary agent's from
 *   that agent's holds (`MemberStatus.joining`), counted from the add until
 *   the agent reports it joined.
 *
 * The session's consistency time covers the members only; a joining copy set
 * shows `syncing`. Snapshot shipping has no joining: the next cycle ships the
 * new copy set's whole image, cut at one instant with the others.
 */
export class Joining {
  private readonly joiningNow = new Set<string>();
  /** Control agent: copy sets added at other primary agents while the session ran, not reported joined yet. */
  private readonly pending = new Map<string, CopySetRecord>();

  constructor(private readonly service: JoiningHooks) {}

  /** At the copy set's primary agent: added to a running session and not yet a member of its consistency group. */
  isJoining(pair: HeldCopySet): boolean {
    const session = this.service.sessions.get(pair.sessionId);
    return pair.joining === true && session !== undefined && this.service.role(session).source;
  }

  /**
   * At the target (H2) of a copy set: its initial copy (the session's first,
   * or as a copy set added to a running session) had not completed when last
   * heard of, so its volume here is no consistent image: set when it is
   * attached, cleared when its source tells it joined (`pair.joined`) and by
   * a failback that copies it whole. A recover keeps it (reported
   * `consistent: false`).
   */
  initialCopyPending(pair: HeldCopySet): boolean {
    const session = this.service.sessions.get(pair.sessionId);
    return pair.joining === true && session !== undefined && !this.service.role(session).source;
  }

  /** Target: the session was started (`session.prepare-target`): the initial copy of every copy set begins. */
  initialCopiesStart(session: SessionRecord): void {
    this.setAllAtTarget(session, true);
  }

  /** Target: the source reports the session prepared (no copy set joins): every initial copy here completed. */
  initialCopiesDone(session: SessionRecord): void {
    this.setAllAtTarget(session, false);
  }

  private setAllAtTarget(session: SessionRecord, joining: boolean): void {
    if (this.service.role(session).source) return;
    for (const pair of this.service.pairsOf(session)) this.set(pair, joining);
  }

  /** Target: the source tells that a copy set finished its initial copy and joined (`pair.joined`). */
  joinedAtSource(pairId: string): void {
    const pair = this.service.pair(pairId);
    if (this.service.role(this.service.session(pair.sessionId)).source) return;
    this.set(pair, false);
  }

  set(pair: HeldCopySet, joining: boolean): void {
    if ((pair.joining ?? false) === joining) return;
    pair.joining = joining;
    if (this.service.pairs.has(pair.id)) this.service.store.saveCopySet(pair);
  }

  /** How a joining copy set mirrors until it joined: an async one synchronously. */
  modeOf(session: SessionRecord): MirrorMode {
    return session.type === 'semi-sync' ? 'semi-sync' : session.type === 'snapshot-shipping' ? 'snapshot-shipping' : 'sync';
  }

  /**
   * Called when a copy set of the session reached duplex: joining copy sets
   * that are duplex join now. True while some copy set of the session is
   * still joining here (the session is not Prepared yet).
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
      this.set(pair, false);
      // The target learns that its volume holds the whole image now (a recover before this reports it inconsistent).
      void this.service
        .link(session)
        .call('pair.joined', { pair: pair.id }, null, { waitForLinkMs: 2000, timeoutMs: 10_000 })
        .catch((error) => this.service.logger.warn({ pair: pair.id, error: problemMessage(error) }, 'could not tell the target that the copy set joined'));
      this.recordJoined(session, pair);
    } catch (error) {
      this.service.logger.warn({ pair: pair.id, error: problemMessage(error) }, 'copy set could not join');
    } finally {
      this.joiningNow.delete(pair.id);
    }
    this.service.mirroring.checkPrepared(session);
  }

  private recordJoined(session: SessionRecord, pair: CopySetRecord): void {
    const site = this.service.multiPrimary.primarySiteOf(pair);
    this.service.engine.catalog.recordEvent(
      'pair.joined',
      'info',
      session.name,
      `copy set ${site ? `${site}:` : ''}${pair.h1Volume} -> ${pair.h2Volume} finished its initial copy and joined session ${session.name}'s consistency group`,
      { pair: pair.id, h1Volume: pair.h1Volume, h2Volume: pair.h2Volume, ...(site ? { primarySite: site } : {}) },
    );
  }

  /**
   * Mirroring (re)starts at this site (a start, a resume, a restart of the
   * agent): the copy sets still joining copy what their bitmaps mark, in the
   * joining mode, and join afterwards (see `settle`). Their ids.
   */
  resume(session: SessionRecord): Set<string> {
    const joining = new Set<string>();
    for (const pair of this.service.pairsOf(session)) {
      if (!this.isJoining(pair)) continue;
      if (session.type === 'snapshot-shipping') {
        this.set(pair, false);
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

  /** Control agent: a copy set was added at another primary agent while the session ran; it joins once that agent says so. */
  expect(record: CopySetRecord): void {
    this.pending.set(record.id, record);
  }

  /** Control agent: the copy set left the session. */
  forget(id: string): void {
    this.pending.delete(id);
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
    const elsewhere = this.atOtherPrimaryAgents(session);
    if (elsewhere === null) return false;
    return joining || elsewhere;
  }

  /** Control agent: some copy set of the session joins, here or at another primary agent (the session is not Prepared yet). */
  anywhere(session: SessionRecord): boolean {
    const here = this.settle(session);
    return this.atOtherPrimaryAgents(session) !== false || here;
  }

  /**
   * Control agent: whether copy sets are joining at other primary agents,
   * from their last holds (a copy set just added counts until its agent
   * reports it joined); null while some agent's other copy sets are not
   * duplex. Records `pair.joined` here for those that joined since.
   */
  private atOtherPrimaryAgents(session: SessionRecord): boolean | null {
    if (!this.service.role(session).controlsMembers) return false;
    const statuses = this.service.rounds.coordinatorOf(session)?.statuses;
    let joining = false;
    let duplex = true;
    for (const [agentId, status] of statuses ?? []) {
      if (agentId === this.service.agentId) continue;
      if (!status.duplex) duplex = false;
      if ((status.joining ?? []).length > 0) joining = true;
    }
    for (const [id, record] of this.pending) {
      if (record.sessionId !== session.id) continue;
      const status: MemberStatus | undefined = statuses?.get(record.primaryAgentId);
      // Joined: its agent reports it (it knows the copy set) and not as joining.
      if (status && id in status.trackCount && !(status.joining ?? []).includes(id)) {
        this.pending.delete(id);
        this.recordJoined(session, record);
      } else joining = true;
    }
    return duplex ? joining : null;
  }
}
