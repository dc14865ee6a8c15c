import { randomUUID } from 'node:crypto';
import { ProblemError, type PairInfo } from '@tandem/contract';
import { ConsistencyGroupShipper, type CoordinatedOptions } from './async-groups.ts';
import { CutCoordinator, type CutParticipant, type CutSecondary, type MemberStatus } from './cut-coordinator.ts';
import { copySetState } from './copy-set-state.ts';
import type { GroupEntry } from './async-groups.ts';
import type { PeerHandlerTable } from './link/peer-protocol.ts';
import { problemMessage } from './pair-source.ts';
import type { ReplicationService } from './service.ts';
import { MultiPrimaryFailback } from './multi-primary-failback.ts';
import { MultiPrimaryRunning } from './multi-primary-running.ts';
import { atSecondary, heldElsewhere, memberRecord, newCopySet, type CopySetRecord, type HeldCopySet, type SessionRecord } from './session-store.ts';
import { localVolumeId, localVolumeName } from './copy-set-volumes.ts';

/** The multi-primary methods this part serves itself (running changes and failback have their own tables). */
type MultiPrimaryMethod = `mp.${'join' | 'secondary-pair' | 'run' | 'hold' | 'cut' | 'release' | 'stop' | 'commit'}` | 'cg.stage';

/** How long a primary agent holds host writes for a round before it releases them on its own. */
const HOLD_TIMEOUT_MS = Number(process.env.TANDEM_MP_HOLD_TIMEOUT_MS) || 2000;
/**
 * A primary agent that hears nothing from the control agent for this long while mirroring suspends itself
 * (`TANDEM_MP_CONTROL_SILENCE_MS`; the earlier name `TANDEM_MP_MASTER_SILENCE_MS` is still read).
 */
const CONTROL_SILENCE_MS = Number(process.env.TANDEM_MP_CONTROL_SILENCE_MS ?? process.env.TANDEM_MP_MASTER_SILENCE_MS) || 5000;
/** The coordinator's round interval (one consistency group per round); read when a run starts. */
const roundIntervalMs = () =>
  Number(process.env.TANDEM_ROUND_INTERVAL_MS ?? process.env.TANDEM_MP_ROUND_INTERVAL_MS ?? process.env.TANDEM_ASYNC_INTERVAL_MS) || 100;

/**
 * Async sessions whose copy sets have their primary volumes on several
 * agents. Roles, per session:
 * - the control agent: the agent where the session was defined (its H1 site). It
 *   keeps every copy set (the others' without local fields, see
 *   session-store.ts), drives the state machine and runs the
 *   CutCoordinator, which forms each consistency group across all primary
 *   agents with a two-phase cut;
 * - members: other primary agents. They run their copy sets' sources (out-of-sync
 *   bitmaps, resync, a coordinated ConsistencyGroupShipper) toward the
 *   secondary, hold and cut when the control agent says, and suspend by themselves
 *   when the control agent goes silent;
 * - the secondary: the session's H2 site. It stages every primary agent's
 *   parts and applies all of them through a round when the control agent commits it.
 * The control agent must be paired with every member and with the secondary; every
 * member must be paired with the secondary.
 *
 * After a failback (direction H2->H1) the roles turn around: the secondary
 * site is the only source and drives the rounds (`drivesRounds`), with
 * itself as the one participant and every H1 agent (control agent and members) as
 * a secondary that stages its copy sets' parts and applies them when a round
 * is committed at all of them (see multi-primary-failback.ts).
 */
export class MultiPrimarySessions {
  /** Control agent: the running coordinator per session. */
  private readonly coordinators = new Map<string, CutCoordinator>();
  /** Member: when the control agent was last heard per session. */
  private readonly heard = new Map<string, number>();
  private watchdog: NodeJS.Timeout | null = null;

  /** The H2->H1 direction and failback across several H1 agents. */
  readonly failback: MultiPrimaryFailback;

  constructor(private readonly service: ReplicationService) {
    this.failback = new MultiPrimaryFailback(service, this);
  }

  // --- the model ---

  /**
   * The copy sets of the session whose primary agent is neither the control
   * agent nor this one: at the control agent and the secondary, every other
   * primary agent's (one table of copy sets, session-store.ts); at a member, none.
   */
  memberCopySets(session: SessionRecord): CopySetRecord[] {
    const me = this.service.agentId;
    return this.service.store.copySetsOf(session.id).filter((pair) => pair.primaryAgentId !== session.controlAgentId && pair.primaryAgentId !== me);
  }

  /** Forgets a copy set of another primary agent (control agent and secondary). */
  forgetMemberCopySet(id: string): void {
    this.service.store.deleteCopySet(id);
  }

  /**
   * The agent holding the other volume of a copy set, seen from here: at the
   * secondary site the copy set's primary agent (the control agent or a member), at
   * a primary agent the secondary site.
   */
  pairAgent(session: SessionRecord, pair: HeldCopySet): string {
    return this.service.role(session).secondary ? pair.primaryAgentId : pair.secondaryAgentId;
  }

  /** Every agent this one exchanges the session with (control agent: secondary and members; secondary: control agent and members; member: secondary). */
  otherAgents(session: SessionRecord): string[] {
    const agents = [this.service.role(session).otherAgent, ...this.memberAgents(session)];
    return [...new Set(agents)].filter((agent) => agent !== this.service.agentId);
  }

  /**
   * The agents told of this site's state changes: the secondary site tells
   * every H1 agent (the source H2->H1; H1->H2 it changes the session's state
   * only when recovered, and every site then shows target-available), the
   * control agent tells the secondary, a member tells nobody.
   */
  stateAgents(session: SessionRecord): string[] {
    if (this.service.role(session).member) return [];
    if (this.service.role(session).secondary) return this.otherAgents(session);
    return [this.service.role(session).otherAgent];
  }

  /** Control agent: the member agents (primary agents other than the control agent). */
  memberAgents(session: SessionRecord): string[] {
    return [...new Set(this.memberCopySets(session).map((pair) => pair.primaryAgentId))];
  }

  /** Every link the agent driving the rounds needs: every other agent's of the session. */
  links(session: SessionRecord) {
    return this.otherAgents(session).map((agent) => this.service.peers.link(agent));
  }

  /**
   * Control agent: adds a copy set whose primary volume lives on another paired
   * agent. The member learns the session and its copy set (`mp.join`), the
   * secondary its target copy set (`mp.secondary-pair`).
   */
  async addMemberPair(sessionName: string, h1Volume: string, h2Volume: string, primaryAgent: string): Promise<HeldCopySet> {
    const service = this.service;
    const session = service.session(sessionName);
    if (!service.role(session).control) {
      throw new ProblemError('invalid-state', `add copy sets at ${session.name}'s control agent, the agent where it was defined`);
    }
    if (session.type !== 'async') {
      throw new ProblemError(
        'not-supported',
        `session ${session.name} is ${session.type}; copy sets with their primary on another agent need an async session`,
      );
    }
    if (session.state !== 'defined' && !MultiPrimaryRunning.handles(session)) {
      throw new ProblemError(
        'invalid-state',
        `session ${session.name} is ${session.state}; copy sets are added while it is defined, preparing, prepared or suspended`,
      );
    }
    const member = service.peers.get(primaryAgent);
    if (member.agentId === session.peerAgentId) {
      throw new ProblemError('bad-request', `${member.site} is the secondary site of ${session.name}; it cannot also hold a primary volume`);
    }
    for (const pair of this.memberCopySets(session)) {
      if (pair.primaryAgentId === member.agentId && pair.h1Volume === h1Volume) {
        throw new ProblemError('volume-busy', `${h1Volume} at ${member.site} is already in a copy set of ${session.name}`);
      }
    }
    const memberLink = service.peers.link(member.agentId);
    const [primarySize, secondarySize] = await Promise.all([
      memberLink.call('volume.size', { name: h1Volume }, null, { waitForLinkMs: 5000 }),
      service.link(session).call('volume.size', { name: h2Volume }, null, { waitForLinkMs: 5000 }),
    ]);
    const h1Size = (primarySize.result as { sizeBytes: number }).sizeBytes;
    const h2Size = (secondarySize.result as { sizeBytes: number }).sizeBytes;
    if (h1Size !== h2Size) {
      throw new ProblemError(
        'invalid-size',
        `${h1Volume} at ${member.site} is ${h1Size} bytes but ${h2Volume} at the secondary is ${h2Size}; a copy set needs equal sizes`,
      );
    }
    const now = new Date().toISOString();
    // Its volume's id is the member's own (it adopts the copy set with `mp.join`); the control agent keeps the copy set
    // without local fields.
    const pair = newCopySet(session, member.agentId, h1Volume, h2Volume, randomUUID(), now, null);
    const record = heldElsewhere(pair);
    // A session that was started: the member tracks and copies it, then it joins the rounds (multi-primary-running.ts).
    if (session.state !== 'defined') {
      await service.running.multiPrimary.add(session, record, pair, () => service.store.saveCopySet(record));
      return pair;
    }
    await memberLink.call('mp.join', { record: session, pair }, null, { waitForLinkMs: 5000 });
    try {
      await service.link(session).call('mp.secondary-pair', { pair: atSecondary(pair), member: memberRecord(record) });
    } catch (error) {
      await memberLink.call('pair.remove', { pair: pair.id }, null, { waitForLinkMs: 2000 }).catch(() => {});
      throw error;
    }
    service.store.saveCopySet(record);
    service.engine.catalog.recordEvent(
      'pair.added',
      'info',
      session.name,
      `copy set ${member.site}:${h1Volume} -> ${h2Volume} added to ${session.name} (primary at ${member.site})`,
      { primarySite: member.site },
    );
    return pair;
  }

  /** Control agent: removes a copy set of another primary agent (a session that was started: see multi-primary-running.ts). */
  async removeMemberPair(session: SessionRecord, h1Volume: string, primaryAgent: string): Promise<void> {
    const member = this.service.peers.get(primaryAgent);
    const pair = this.memberCopySets(session).find((p) => p.primaryAgentId === member.agentId && p.h1Volume === h1Volume);
    if (!pair) throw new ProblemError('not-found', `${member.site}:${h1Volume} is not in session ${session.name}`);
    if (session.state !== 'defined') return this.service.running.multiPrimary.remove(session, pair);
    await this.service.peers.link(member.agentId).call('pair.remove', { pair: pair.id }, null, { waitForLinkMs: 5000 }).catch(() => {});
    await this.service.link(session).call('pair.remove', { pair: pair.id }, null, { waitForLinkMs: 5000 }).catch(() => {});
    this.forgetMemberCopySet(pair.id);
  }

  // --- control agent: running the session ---

  /**
   * Control agent: starts (or resumes) every member's copy sets and the cut
   * coordinator. Called by the control agent's mirroring once its own copy sets
   * mirror. `start`: the members make their out-of-sync bitmaps first.
   */
  async startRun(session: SessionRecord): Promise<void> {
    const service = this.service;
    await this.coordinators.get(session.id)?.stop();
    this.coordinators.delete(session.id);
    // H1->H2: every primary agent cuts, the secondary site applies. H2->H1: the secondary site alone cuts, every H1 agent applies.
    const reverse = session.direction === 'h2-h1';
    const members = reverse ? [] : this.memberAgents(session);
    await Promise.all(
      members.map((agent) =>
        service.peers.link(agent).call('mp.run', { session: session.id }, null, { waitForLinkMs: 3000, timeoutMs: 30_000 }),
      ),
    );
    const participants: CutParticipant[] = members.map((agent) => this.remoteParticipant(session, agent));
    if (service.pairsOf(session).length > 0) participants.unshift(this.localParticipant(session));
    const secondaries: CutSecondary[] = (reverse ? this.otherAgents(session) : [session.peerAgentId]).map((agentId) => {
      const link = service.peers.link(agentId);
      return {
        agentId,
        commit: async (epoch, through, time) => {
          await link.call('mp.commit', { session: session.id, epoch, through, time }, null, { waitForLinkMs: 1000, timeoutMs: 30_000 });
        },
      };
    });
    const coordinator = new CutCoordinator(
      participants,
      secondaries,
      {
        onFailure: (agentId, error) => {
          const site = agentId === service.agentId ? service.site : this.siteOf(agentId);
          void service.mirroring.suspendSession(session, `primary agent ${site}: ${problemMessage(error)}`, error);
        },
        onCommitted: () => this.checkPrepared(session),
        onStatus: () => this.checkPrepared(session),
      },
      roundIntervalMs(),
    );
    this.coordinators.set(session.id, coordinator);
    coordinator.start();
    service.engine.catalog.recordEvent(
      'session.coordinator',
      'info',
      session.name,
      `session ${session.name}: consistency groups formed across ${participants.length} primary agent(s), committed at ${secondaries.length} secondary agent(s), every ${roundIntervalMs()} ms`,
      {
        primaries: participants.map((participant) => this.siteOf(participant.agentId)),
        secondaries: secondaries.map((secondary) => this.siteOf(secondary.agentId)),
        epoch: coordinator.epoch,
      },
    );
  }

  siteOf(agentId: string): string {
    if (agentId === this.service.agentId) return this.service.site;
    try {
      return this.service.peers.get(agentId).site;
    } catch {
      return agentId;
    }
  }

  private localParticipant(session: SessionRecord): CutParticipant {
    return {
      agentId: this.service.agentId,
      hold: async (round, epoch, committed) => this.hold(session, round, epoch, committed),
      cut: async (round, time) => this.cut(session, round, time),
      release: async (round) => this.shipperOf(session)?.endHold(round),
    };
  }

  remoteParticipant(session: SessionRecord, agentId: string): CutParticipant {
    const link = this.service.peers.link(agentId);
    const options = { waitForLinkMs: 0, timeoutMs: 5000 };
    return {
      agentId,
      hold: async (round, epoch, committed) =>
        (await link.call('mp.hold', { session: session.id, round, epoch, committed }, null, options)).result as MemberStatus,
      cut: async (round, time) => {
        await link.call('mp.cut', { session: session.id, round, time }, null, options);
      },
      release: async (round) => {
        await link.call('mp.release', { session: session.id, round }, null, options).catch(() => {});
      },
    };
  }

  /**
   * Control agent: stops the coordinator and every member (their bitmaps keep
   * tracking). Best effort toward members that cannot be reached: they
   * suspend by themselves when the control agent goes silent.
   */
  async stopRun(session: SessionRecord, reason: string | null): Promise<void> {
    // The secondary keeps the last committed round: that is the session's consistency time from now.
    const committed = this.committedTime(session);
    if (committed !== undefined) {
      session.consistencyTime = new Date(committed).toISOString();
      this.service.store.saveSession(session);
    }
    const coordinator = this.coordinators.get(session.id);
    this.coordinators.delete(session.id);
    await coordinator?.stop();
    // H2->H1: the H1 agents are secondaries; nothing runs there.
    const members = session.direction === 'h1-h2' ? this.memberAgents(session) : [];
    await Promise.all(
      members.map((agent) =>
        this.service.peers
          .link(agent)
          .call('mp.stop', { session: session.id, reason }, null, { waitForLinkMs: 500, timeoutMs: 10_000 })
          .catch(() => {}),
      ),
    );
  }

  /** Control agent: tells every member the session is terminated (they drop their bitmaps). */
  async terminateMembers(session: SessionRecord): Promise<void> {
    await Promise.all(
      this.memberAgents(session).map((agent) =>
        this.service.peers
          .link(agent)
          .call('session.terminated', { session: session.id }, null, { waitForLinkMs: 2000 })
          .catch(() => {}),
      ),
    );
  }

  /**
   * Control agent: the session is prepared (duplex and consistent) once every
   * primary agent reported duplex at a round's hold and that round is
   * committed at the secondary: from then on each commit is a consistent image.
   */
  checkPrepared(session: SessionRecord): void {
    if (session.state !== 'preparing') return;
    // Copy sets added while the session ran join first, here or at a member (multi-primary-running.ts).
    if (this.service.running.multiPrimary.joiningAnywhere(session)) return;
    const coordinator = this.coordinators.get(session.id);
    if (!coordinator || coordinator.firstConsistentRound === null) return;
    if ((coordinator.committed?.round ?? 0) < coordinator.firstConsistentRound) return;
    this.service.setState(session, 'prepared', { detail: null, consistencyTime: null });
  }

  /** Control agent: the cut time of the last round every secondary applied, once the session is consistent. */
  committedTime(session: SessionRecord): number | undefined {
    const coordinator = this.coordinators.get(session.id);
    if (!coordinator?.committed || coordinator.firstConsistentRound === null) return undefined;
    if (coordinator.committed.round < coordinator.firstConsistentRound) return undefined;
    return coordinator.committed.time;
  }

  /** The coordinated shipper's options for a multi-primary session at this agent (H2->H1: parts split per H1 agent). */
  coordinatedOptions(session: SessionRecord): CoordinatedOptions {
    const options: CoordinatedOptions = {
      agentId: this.service.agentId,
      holdTimeoutMs: HOLD_TIMEOUT_MS,
      // Where this agent cuts the rounds, a burst starts the next round at once.
      full: () => this.coordinators.get(session.id)?.soon(),
      staged: (epoch, round, empty) => this.coordinators.get(session.id)?.staged(this.service.agentId, epoch, round, empty),
    };
    if (this.service.role(session).drivesRounds && session.direction === 'h2-h1') {
      options.stage = (part, payload) => this.failback.stageAtTargets(session, part, payload);
    }
    return options;
  }

  /** Control agent: round statistics of a running session (tests, benchmarks). */
  coordinatorOf(session: SessionRecord): CutCoordinator | undefined {
    return this.coordinators.get(session.id);
  }

  /** Control agent: the copy sets on member agents, as the members last reported them. */
  memberPairInfos(session: SessionRecord): PairInfo[] {
    const coordinator = this.coordinators.get(session.id);
    return this.memberCopySets(session).map((pair) => {
      const status = coordinator?.statuses.get(pair.primaryAgentId);
      const state = copySetState(session.state, () => {
        // H2->H1: the other primary agent's copy set is a target like the control agent's own.
        if (session.direction === 'h2-h1') return 'target';
        if (!status) return 'unreached';
        return status.syncedPercent[pair.id] !== null && status.syncedPercent[pair.id] !== undefined ? 'copying' : 'mirroring';
      });
      return {
        id: pair.id,
        h1Volume: pair.h1Volume,
        h2Volume: pair.h2Volume,
        state,
        reason: state === 'suspended' ? session.detail : null,
        outOfSyncTracks: status?.outOfSync[pair.id] ?? 0,
        targetChangedTracks: 0,
        trackCount: status?.trackCount[pair.id] ?? 0,
        trackSize: status?.trackSize ?? this.service.engine.trackSize,
        syncedPercent: state === 'syncing' ? (status?.syncedPercent[pair.id] ?? null) : null,
        etaSeconds: null,
        primarySite: this.siteOf(pair.primaryAgentId),
      };
    });
  }

  /** Control agent and secondary: the site holding a copy set's primary, when it is not the control agent. */
  primarySiteOf(pair: HeldCopySet): string | undefined {
    const session = this.service.session(pair.sessionId);
    const elsewhere = pair.primaryAgentId !== session.controlAgentId && pair.primaryAgentId !== this.service.agentId;
    return elsewhere ? this.siteOf(pair.primaryAgentId) : undefined;
  }

  // --- member (and the control agent's own copy sets): hold, cut, status ---

  private shipperOf(session: SessionRecord): ConsistencyGroupShipper | undefined {
    return this.service.mirroring.shippers.get(session.id);
  }

  private hold(session: SessionRecord, round: number, epoch: string, committed: number): MemberStatus {
    const service = this.service;
    this.heard.set(session.id, Date.now());
    const shipper = this.shipperOf(session);
    // A copy set being removed is no member any more; one just adopted (no bitmap yet) is not one yet; a joining one
    // is reported as joining (copying in its own mode), not as out of duplex.
    const running = service.running;
    const pairs = service.pairsOf(session).filter((pair) => !running.isRemoving(pair) && pair.outOfSyncBitmap !== null);
    const sources = pairs.map((pair) => service.sourceOf(pair));
    const members = pairs.filter((pair) => !running.isJoining(pair)).map((pair) => service.sourceOf(pair));
    if (!shipper || members.some((source) => !source?.mirroring) || sources.some((source) => !source)) {
      throw new ProblemError(
        'pair-suspended',
        `session ${session.name} does not mirror at ${service.site} (${session.state}${session.detail ? `: ${session.detail}` : ''})`,
      );
    }
    shipper.committed(committed);
    shipper.hold(round, epoch);
    const outOfSync: Record<string, number> = {};
    const syncedPercent: Record<string, number | null> = {};
    const trackCount: Record<string, number> = {};
    for (const source of sources) {
      trackCount[source!.record.id] = service.engine.getVolume(localVolumeName(service.engine, source!.record)).trackCount;
      outOfSync[source!.record.id] = source!.outOfSyncTracks;
      const { total, copied } = source!.progress;
      syncedPercent[source!.record.id] = source!.isResyncing ? (total === 0 ? 100 : Math.min(100, Math.round((copied / total) * 1000) / 10)) : null;
    }
    return {
      duplex: members.every((source) => source!.mirroring && !source!.isResyncing),
      joining: pairs.filter((pair) => running.isJoining(pair)).map((pair) => pair.id),
      stagedThrough: shipper.stagedThrough,
      trackSize: service.engine.trackSize,
      outOfSync,
      syncedPercent,
      trackCount,
    };
  }

  private cut(session: SessionRecord, round: number, time: number): void {
    this.heard.set(session.id, Date.now());
    const shipper = this.shipperOf(session);
    if (!shipper) throw new ProblemError('pair-suspended', `session ${session.name} does not mirror at ${this.service.site}`);
    shipper.cut(round, time);
  }

  /** Member: the control agent asked to run the copy sets here (start, or resume with the bitmaps kept). */
  private async runHere(session: SessionRecord): Promise<void> {
    const service = this.service;
    const engine = service.engine;
    for (const pair of service.pairsOf(session)) {
      if (pair.outOfSyncBitmap === null) {
        pair.outOfSyncBitmap = await engine.bitmaps.create(localVolumeId(engine, pair), 'allocated');
        service.store.saveCopySet(pair);
      }
    }
    await service.mirroring.stopSource(session, null);
    this.heard.set(session.id, Date.now());
    service.setState(session, 'preparing', { detail: null }, false);
    // The secondary is fenced for this run before the control agent is answered (its first hold finds this agent mirroring).
    let run: string;
    try {
      run = await service.mirroring.fenceTargets(session);
    } catch (error) {
      const reason = `starting a mirroring run: ${problemMessage(error)}`;
      service.setState(session, 'suspended', { detail: reason }, false);
      throw error;
    }
    void service.mirroring.runMirroring(session, run);
    this.watch();
  }

  /** Member: suspends sessions whose control agent has been silent too long (their bitmaps keep tracking). */
  private watch(): void {
    if (this.watchdog) return;
    this.watchdog = setInterval(() => {
      for (const session of this.service.sessions.values()) {
        if (!this.service.role(session).member || (session.state !== 'preparing' && session.state !== 'prepared')) continue;
        // H2->H1 the member is a target: the secondary site drives the rounds, the control agent says nothing.
        if (session.direction !== 'h1-h2') continue;
        const heard = this.heard.get(session.id) ?? 0;
        if (Date.now() - heard < CONTROL_SILENCE_MS) continue;
        const reason = `no word from the control agent ${this.siteOf(session.controlAgentId)} for ${CONTROL_SILENCE_MS} ms`;
        void this.service.mirroring.suspendSession(session, reason, new ProblemError('link-down', reason));
      }
    }, 250);
    this.watchdog.unref();
  }

  // --- peer requests ---

  /** The peer requests of multi-primary sessions this part serves (the target's dispatch table takes them in). */
  readonly peerHandlers: PeerHandlerTable<MultiPrimaryMethod> = {
    'mp.join': ({ params }) => {
      // At a member: the control agent adds a copy set whose primary volume is here.
      const service = this.service;
      const record = params.record;
      if (!service.role(record).member) {
        throw new ProblemError('bad-request', 'this agent is the control agent or the secondary of that session, not a member');
      }
      service.peers.get(record.controlAgentId);
      try {
        service.peers.get(record.peerAgentId);
      } catch {
        throw new ProblemError('not-paired', `this agent (${service.site}) is not paired with the session's secondary site; pair them first`);
      }
      const pair = params.pair;
      service.engine.getVolume(pair.localVolume);
      service.copySets.adoptSession(record);
      service.copySets.adoptPair(pair);
      return {};
    },
    'mp.secondary-pair': ({ params }) => {
      // At the secondary: a copy set whose primary is a member agent.
      const service = this.service;
      const pair = params.pair;
      // Attached first when the session runs: it keeps its initial copy pending (see RunningCopySets.attach).
      // Its primary agent: named by the copy set since protocol 1.1, by `member` before.
      const joining = service.pairs.get(pair.id)?.joining === true;
      service.copySets.adoptPair({ ...pair, primaryAgentId: params.member.primaryAgentId, ...(joining ? { joining } : {}) });
      return {};
    },
    'mp.run': async ({ params }) => {
      await this.runHere(this.memberSession(params));
      return {};
    },
    'mp.hold': ({ params }) => {
      const session = this.memberSession(params);
      return { result: this.hold(session, params.round, params.epoch, params.committed) };
    },
    'mp.cut': ({ params }) => {
      this.cut(this.memberSession(params), params.round, params.time);
      return {};
    },
    'mp.release': ({ params }) => {
      this.shipperOf(this.memberSession(params))?.endHold(params.round);
      return {};
    },
    'mp.stop': async ({ params }) => {
      const service = this.service;
      const session = this.memberSession(params);
      const reason = params.reason ?? null;
      if (session.state === 'preparing' || session.state === 'prepared') {
        service.setState(session, 'suspending', { detail: reason }, false);
        await service.mirroring.stopSource(session, reason);
        service.setState(session, 'suspended', { detail: reason }, false);
      } else await service.mirroring.stopSource(session, reason);
      return {};
    },
    'cg.stage': async ({ params, payload, peerAgentId }) => {
      // At the secondary: one primary agent's part of a round, staged until the coordinator commits the round.
      const session = this.secondarySession(params);
      // A part (and the flash markers in it) is staged as the authenticated sender's, never as another agent's.
      if (params.from !== peerAgentId) {
        throw new ProblemError('access-denied', 'a consistency-group part is staged only by the agent it comes from');
      }
      await this.service.applier.stagePart(
        {
          session: session.id,
          epoch: params.epoch,
          from: params.from,
          round: params.round,
          time: params.time,
          entries: params.entries,
          // A part in pieces (group-applier.ts): absent, the part is one piece.
          ...(params.piece === undefined ? {} : { piece: params.piece }),
          ...(params.last === undefined ? {} : { last: params.last }),
        },
        payload,
      );
      return {};
    },
    'mp.commit': async ({ params, peerAgentId }) => {
      if (this.service.faults.holdCommits) await this.service.faults.holdCommits;
      const session = this.secondarySession(params);
      if (this.service.role(session).coordinator !== peerAgentId) {
        throw new ProblemError('access-denied', 'only the agent forming the session\'s consistency groups commits rounds');
      }
      await this.service.applier.commit(session.id, params.epoch, params.through, params.time);
      return {};
    },
  };

  /** The session of a member request, refusing requests about sessions this agent is not a member of. */
  memberSession(params: { session: string }): SessionRecord {
    const session = this.service.session(params.session);
    if (!this.service.role(session).member) {
      throw new ProblemError('bad-request', `this agent is not a member (primary agent) of session ${session.name}`);
    }
    return session;
  }

  private secondarySession(params: { session: string }): SessionRecord {
    const session = this.service.session(params.session);
    if (this.service.role(session).source || session.state === 'target-available' || session.state === 'recovering') {
      throw new ProblemError('invalid-state', `session ${session.name} is ${session.state} here; consistency groups are refused`);
    }
    return session;
  }

  /** Stops the cut rounds and waits for a round in progress to end. */
  async close(): Promise<void> {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
    const coordinators = [...this.coordinators.values()];
    this.coordinators.clear();
    await Promise.all(coordinators.map((coordinator) => coordinator.stop()));
  }
}
