import { isProblemError, ProblemError } from '@tandem/contract';
import type { MemberStatus } from './cut-coordinator.ts';
import type { PeerHandlerTable } from './link/peer-protocol.ts';
import { problemMessage } from './pair-source.ts';
import type { RunningCopySets } from './running-copy-sets.ts';
import type { ReplicationService } from './service.ts';
import { atSecondary, memberRecord, type CopySetRecord, type HeldCopySet, type SessionRecord } from './session-store.ts';

/** States in which copy sets at other primary agents are added to and removed from a session that was started. */
const RUNNING_STATES: ReadonlySet<SessionRecord['state']> = new Set(['preparing', 'prepared', 'suspended']);

/**
 * Member copy sets (primary volume on another agent than the control agent) added
 * to and removed from a running multi-primary async session, with the
 * mechanism of running-copy-sets.ts at the member:
 *
 * - add: the secondary attaches the copy set (trimmed, refusing host writes),
 *   then the member adds it like any running copy set (`running.add`, marked
 *   `attached`): tracked from that instant, copied synchronously while it is
 *   joining, then it joins the member's coordinated shipper, so its writes
 *   enter the member's parts of the control agent's rounds only once it is duplex.
 *   The member reports its joining copy sets with every hold
 *   (`MemberStatus.joining`, its `duplex` leaves them out); the control agent keeps
 *   the session Preparing until no copy set joins anywhere, and its
 *   consistency time covers the members only.
 * - remove: the member removes it like any running copy set
 *   (`running.remove`): the holds skip it, its changes in flight settle with
 *   a committed round (a round boundary), the secondary forgets it, then the
 *   member and the control agent do.
 *
 * A primary agent new to the session (its first copy set) runs the session
 * from then on (`mp.run`) and takes part in the control agent's rounds from the
 * next round boundary (CutCoordinator.addParticipant); its parts carry the
 * copy set's changes only once it joined. A member whose last copy set is
 * removed leaves the rounds at the next boundary and stops (`mp.stop`). The
 * rounds are the same with one primary agent: a session started with its
 * primary volumes at the control agent only takes a copy set at another agent
 * while it runs, and goes on with the control agent alone when the last one
 * leaves.
 */
export class MultiPrimaryRunning {
  /** Control agent: member copy sets added while the session ran that their member has not reported joined yet. */
  private readonly pending = new Map<string, CopySetRecord>();

  constructor(
    private readonly service: ReplicationService,
    private readonly running: RunningCopySets,
  ) {}

  /** True when member copy sets of a session in this state are added and removed here (not while defined). */
  static handles(session: SessionRecord): boolean {
    return RUNNING_STATES.has(session.state);
  }

  private checkControlAgent(session: SessionRecord, what: string): void {
    if (!RUNNING_STATES.has(session.state)) {
      throw new ProblemError(
        'invalid-state',
        `session ${session.name} is ${session.state}; copy sets are ${what} while it is defined, preparing, prepared or suspended`,
      );
    }
    if (session.direction !== 'h1-h2') {
      throw new ProblemError('invalid-state', `session ${session.name} runs from the secondary site now (${session.direction}); copy sets change while it runs H1->H2`);
    }
  }

  /**
   * Control agent: adds a member copy set (sizes checked by the caller) to a session
   * that was started. `save` keeps the control agent's row once every site took it.
   */
  async add(session: SessionRecord, record: CopySetRecord, pair: HeldCopySet, save: () => void): Promise<void> {
    const service = this.service;
    this.checkControlAgent(session, 'added');
    const multi = service.multiPrimary;
    const site = multi.siteOf(record.primaryAgentId);
    const running = session.state === 'preparing' || session.state === 'prepared';
    // A primary agent new to the session: it runs the session from its first copy set on and joins the rounds.
    const newcomer = running && !multi.memberAgents(session).includes(record.primaryAgentId);
    const coordinator = service.rounds.coordinatorOf(session);
    if (newcomer && !coordinator?.active) {
      throw new ProblemError(
        'invalid-state',
        `session ${session.name} forms no consistency groups now (${session.state}${session.detail ? `: ${session.detail}` : ''}); add ${site}'s first copy set once it does, or while it is suspended`,
      );
    }
    const memberLink = service.peers.link(record.primaryAgentId);
    const secondaryLink = service.link(session);
    // The secondary first: its volume refuses host writes and is trimmed (the copy skips unallocated tracks).
    await secondaryLink.call('pair.attach', { session: session.id, pair: atSecondary(pair) }, null, { waitForLinkMs: 5000, timeoutMs: 120_000 });
    const undo = async () => {
      await memberLink.call('pair.remove', { pair: pair.id }, null, { waitForLinkMs: 2000 }).catch(() => {});
      await secondaryLink.call('mp.pair-removed', { session: session.id, pair: pair.id }, null, { waitForLinkMs: 2000 }).catch(() => {});
    };
    try {
      await secondaryLink.call('mp.secondary-pair', { pair: atSecondary(pair), member: memberRecord(record) }, null, { waitForLinkMs: 5000 });
      // The member learns the copy set (and the session, when suspended and new to it), then tracks and copies it.
      await memberLink.call('mp.join', { record: session, pair }, null, { waitForLinkMs: 5000 });
      await memberLink.call('mp.add', { session: session.id, pair: pair.id, newcomer }, null, { waitForLinkMs: 5000, timeoutMs: 120_000 });
      // A newcomer runs the session (its coordinated shipper; the copy set still joining copies on) and takes part in
      // the rounds from the next one: its parts carry the copy set's changes only once it joined.
      if (newcomer) await memberLink.call('mp.run', { session: session.id }, null, { waitForLinkMs: 3000, timeoutMs: 30_000 });
    } catch (error) {
      await undo();
      throw error;
    }
    save();
    if (newcomer) coordinator!.addParticipant(service.rounds.remoteParticipant(session, record.primaryAgentId));
    if (running) this.pending.set(pair.id, record);
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
  }

  /** Control agent: removes a member copy set from a session that was started; the other copy sets keep mirroring. */
  async remove(session: SessionRecord, record: CopySetRecord): Promise<void> {
    const service = this.service;
    this.checkControlAgent(session, 'removed');
    const multi = service.multiPrimary;
    if (service.store.copySetsOf(session.id).length === 1) {
      throw new ProblemError(
        'invalid-state',
        `${record.h1Volume} is the last copy set of session ${session.name}, which is ${session.state}; terminate the session first (or add another copy set)`,
      );
    }
    const site = multi.siteOf(record.primaryAgentId);
    // The agent's last copy set: it leaves the rounds once the copy set is gone (the next round boundary).
    const last = multi.memberCopySets(session).filter((row) => row.primaryAgentId === record.primaryAgentId).length === 1;
    // The member stops mirroring it, waits for its last part to be committed, and has the secondary forget it.
    try {
      await service.peers
        .link(record.primaryAgentId)
        .call('mp.remove', { session: session.id, pair: record.id, last }, null, { waitForLinkMs: 5000, timeoutMs: 120_000 });
    } catch (error) {
      // The member's own refusal keeps its problem code; a member that cannot be reached is link-down.
      if (isProblemError(error) && error.problem !== 'timeout') throw error;
      throw new ProblemError('link-down', `${site} could not remove ${record.h1Volume}: ${problemMessage(error)}`);
    }
    await service
      .link(session)
      .call('mp.pair-removed', { session: session.id, pair: record.id }, null, { waitForLinkMs: 5000 })
      .catch((error) => service.logger.warn({ pair: record.id, error: problemMessage(error) }, 'the secondary could not forget a removed copy set'));
    multi.forgetMemberCopySet(record.id);
    this.pending.delete(record.id);
    if (last) {
      service.rounds.coordinatorOf(session)?.removeParticipant(record.primaryAgentId);
      // It holds nothing of the session any more: it stops running it (best effort; it suspends by itself when no round reaches it).
      await service.peers
        .link(record.primaryAgentId)
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

  /**
   * Control agent: whether member copy sets are joining, from the members' last
   * holds (a copy set just added counts until its member reports it joined);
   * null while some member's other copy sets are not duplex. Records
   * `pair.joined` here for those that joined since.
   */
  membersJoining(session: SessionRecord): boolean | null {
    const multi = this.service.multiPrimary;
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
      // Joined: its member reports it (it knows the copy set) and not as joining.
      if (status && id in status.trackCount && !(status.joining ?? []).includes(id)) {
        this.pending.delete(id);
        const site = multi.siteOf(record.primaryAgentId);
        this.service.engine.catalog.recordEvent(
          'pair.joined',
          'info',
          session.name,
          `copy set ${site}:${record.h1Volume} -> ${record.h2Volume} finished its initial copy and joined session ${session.name}'s consistency group`,
          { pair: id, h1Volume: record.h1Volume, h2Volume: record.h2Volume, primarySite: site },
        );
      } else joining = true;
    }
    return duplex ? joining : null;
  }

  /** Control agent: some copy set of the session joins, here or at a member (the session is not Prepared yet). */
  joiningAnywhere(session: SessionRecord): boolean {
    const here = this.running.settle(session);
    return this.membersJoining(session) !== false || here;
  }

  // --- peer requests ---

  /** Copy sets added to and removed from a running multi-primary session: this part's peer requests. */
  readonly peerHandlers: PeerHandlerTable<'mp.add' | 'mp.remove' | 'mp.pair-removed'> = {
    'mp.add': async ({ params, peerAgentId }) => {
      // At a member: the control agent added a copy set here (mp.join adopted it); track and copy it, then it joins.
      const service = this.service;
      const session = service.multiPrimary.memberSession(params);
      if (peerAgentId !== session.controlAgentId) throw new ProblemError('access-denied', 'only the control agent of the session adds copy sets');
      const pair = service.pair(params.pair);
      if (pair.sessionId !== session.id) throw new ProblemError('bad-request', `copy set ${pair.id} is not in session ${session.name}`);
      // New to the running session (or back after its last copy set left): it runs it from now, this copy set joining.
      if (params.newcomer === true && session.state !== 'preparing' && session.state !== 'prepared') {
        service.setState(session, 'preparing', { detail: null }, false);
      }
      await this.running.add(session, pair, { attached: true });
      return {};
    },
    'mp.remove': async ({ params, peerAgentId }) => {
      const service = this.service;
      const session = service.multiPrimary.memberSession(params);
      if (peerAgentId !== session.controlAgentId) throw new ProblemError('access-denied', 'only the control agent of the session removes copy sets');
      const pair = service.pair(params.pair);
      if (pair.sessionId !== session.id) throw new ProblemError('bad-request', `copy set ${pair.id} is not in session ${session.name}`);
      await this.running.remove(session, pair, { lastHere: params.last === true, fromControlAgent: true });
      return {};
    },
    'mp.pair-removed': ({ params, peerAgentId }) => {
      // At the secondary: a member copy set is gone (its member had it forget the pair already, or the add was undone).
      const service = this.service;
      const session = service.session(params.session);
      if (peerAgentId !== session.controlAgentId) throw new ProblemError('access-denied', 'only the control agent of the session removes copy sets');
      const pair = service.pairs.get(params.pair);
      if (pair) service.forgetPair(pair);
      service.multiPrimary.forgetMemberCopySet(params.pair);
      return {};
    },
  };
}
