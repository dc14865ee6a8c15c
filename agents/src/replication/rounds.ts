import { ProblemError } from '@tandem/contract';
import type { ConsistencyGroupShipper, CoordinatedOptions } from './async-groups.ts';
import { CutCoordinator, type CutParticipant, type CutSecondary, type MemberStatus } from './cut-coordinator.ts';
import { localVolumeName } from './copy-set-volumes.ts';
import type { PeerHandlerTable } from './link/peer-protocol.ts';
import { problemMessage } from './pair-source.ts';
import type { ReplicationHooks } from './hooks.ts';
import type { SessionRecord } from './session-store.ts';

/** What rounds uses of the service and the other parts (hooks.ts). */
export type RoundsHooks = Pick<
  ReplicationHooks,
  'agentId' | 'applier' | 'engine' | 'faults' | 'joining' | 'mirroring' | 'multiPrimary' | 'pairsOf' | 'peers' | 'role' | 'running' | 'session' | 'setState' | 'site' | 'sourceOf' | 'store'
>;

/** The rounds' peer methods: a participant's hold, cut and release, a secondary's staging and commit. */
type RoundsMethod = `mp.${'hold' | 'cut' | 'release' | 'commit'}` | 'cg.stage';

/** How long a primary agent holds host writes for a round before it releases them on its own. */
const HOLD_TIMEOUT_MS = Number(process.env.TANDEM_MP_HOLD_TIMEOUT_MS) || 2000;
/** The coordinator's round interval (one consistency group per round); read when a run starts. */
const roundIntervalMs = () =>
  Number(process.env.TANDEM_ROUND_INTERVAL_MS ?? process.env.TANDEM_MP_ROUND_INTERVAL_MS ?? process.env.TANDEM_ASYNC_INTERVAL_MS) || 100;

/**
 * The rounds of every async session: one engine whether the session has one
 * primary agent or several (DESIGN.md, "consistency groups").
 * - The agent driving the rounds (`role.drivesRounds`: the control agent
 *   H1->H2, the secondary site H2->H1) runs a CutCoordinator over every
 *   participant, each a primary agent holding copy sets of the session.
 *   This agent's own copy sets are an in-process participant; another
 *   primary agent's are called over the peer link (`mp.hold`, `mp.cut`,
 *   `mp.release`).
 * - A participant holds host writes for a round, cuts its part at the
 *   coordinator's time and stages it at every secondary (`cg.stage`,
 *   async-groups.ts ships it).
 * - A secondary applies every staged part through a round at once when the
 *   coordinator commits it (`mp.commit`; group-applier.ts): each commit is a
 *   consistent image across all primary agents, and its cut time is the
 *   session's consistency time.
 */
export class Rounds {
  /** The agent driving the rounds: the running coordinator per session. */
  private readonly coordinators = new Map<string, CutCoordinator>();
  /** A participant: when the coordinator was last heard per session (a member suspends when it goes silent). */
  readonly heard = new Map<string, number>();

  constructor(private readonly service: RoundsHooks) {}

  /**
   * The driving agent: starts (or resumes) the other primary agents' copy
   * sets (`mp.run`: they make their out-of-sync bitmaps first) and the cut
   * coordinator. Called by this agent's mirroring once its own copy sets
   * mirror.
   */
  async start(session: SessionRecord): Promise<void> {
    const service = this.service;
    const multi = service.multiPrimary;
    await this.coordinators.get(session.id)?.stop();
    this.coordinators.delete(session.id);
    // H1->H2: every primary agent cuts, the secondary site applies. H2->H1: the secondary site alone cuts, every H1 agent applies.
    const reverse = session.direction === 'h2-h1';
    const members = reverse ? [] : multi.memberAgents(session);
    await Promise.all(
      members.map((agent) =>
        service.peers.link(agent).call('mp.run', { session: session.id }, null, { waitForLinkMs: 3000, timeoutMs: 30_000 }),
      ),
    );
    const participants: CutParticipant[] = members.map((agent) => this.remoteParticipant(session, agent));
    if (service.pairsOf(session).length > 0) participants.unshift(this.localParticipant(session));
    const secondaries: CutSecondary[] = (reverse ? multi.otherAgents(session) : [session.peerAgentId]).map((agentId) => {
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
          const site = agentId === service.agentId ? service.site : multi.siteOf(agentId);
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
        primaries: participants.map((participant) => multi.siteOf(participant.agentId)),
        secondaries: secondaries.map((secondary) => multi.siteOf(secondary.agentId)),
        epoch: coordinator.epoch,
      },
    );
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
        (await link.call('mp.hold', { session: session.id, round, epoch, committed }, null, options)).result,
      cut: async (round, time) => {
        await link.call('mp.cut', { session: session.id, round, time }, null, options);
      },
      release: async (round) => {
        await link.call('mp.release', { session: session.id, round }, null, options).catch(() => {});
      },
    };
  }

  /**
   * The driving agent: stops the coordinator and every other primary agent
   * (their bitmaps keep tracking). Best effort toward agents that cannot be
   * reached: they suspend by themselves when the control agent goes silent.
   */
  async stop(session: SessionRecord, reason: string | null): Promise<void> {
    // The secondary keeps the last committed round: that is the session's consistency time from now.
    const multi = this.service.multiPrimary;
    const committed = this.committedTime(session);
    if (committed !== undefined) {
      session.consistencyTime = new Date(committed).toISOString();
      this.service.store.saveSession(session);
    }
    const coordinator = this.coordinators.get(session.id);
    this.coordinators.delete(session.id);
    await coordinator?.stop();
    // H2->H1: the H1 agents are secondaries; nothing runs there.
    const members = session.direction === 'h1-h2' ? multi.memberAgents(session) : [];
    await Promise.all(
      members.map((agent) =>
        this.service.peers
          .link(agent)
          .call('mp.stop', { session: session.id, reason }, null, { waitForLinkMs: 500, timeoutMs: 10_000 })
          .catch(() => {}),
      ),
    );
  }

  /**
   * The driving agent: the session is prepared (duplex and consistent) once
   * every primary agent reported duplex at a round's hold and that round is
   * committed at every secondary: from then on each commit is a consistent image.
   */
  checkPrepared(session: SessionRecord): void {
    if (session.state !== 'preparing') return;
    // Copy sets added while the session ran join first, here or at a member (joining.ts).
    if (this.service.joining.anywhere(session)) return;
    const coordinator = this.coordinators.get(session.id);
    if (!coordinator || coordinator.firstConsistentRound === null) return;
    if ((coordinator.committed?.round ?? 0) < coordinator.firstConsistentRound) return;
    this.service.setState(session, 'prepared', { detail: null, consistencyTime: null });
  }

  /** The driving agent: the cut time of the last round every secondary applied, once the session is consistent. */
  committedTime(session: SessionRecord): number | undefined {
    const coordinator = this.coordinators.get(session.id);
    if (!coordinator?.committed || coordinator.firstConsistentRound === null) return undefined;
    if (coordinator.committed.round < coordinator.firstConsistentRound) return undefined;
    return coordinator.committed.time;
  }

  /** The driving agent: round statistics of a running session (tests, benchmarks). */
  coordinatorOf(session: SessionRecord): CutCoordinator | undefined {
    return this.coordinators.get(session.id);
  }

  /** The coordinated shipper's options for an async session at this agent (H2->H1 of several H1 agents: parts split per agent). */
  coordinatedOptions(session: SessionRecord): CoordinatedOptions {
    const options: CoordinatedOptions = {
      agentId: this.service.agentId,
      holdTimeoutMs: HOLD_TIMEOUT_MS,
      // Where this agent cuts the rounds, a burst starts the next round at once.
      full: () => this.coordinators.get(session.id)?.soon(),
      staged: (epoch, round, empty) => this.coordinators.get(session.id)?.staged(this.service.agentId, epoch, round, empty),
    };
    if (this.service.role(session).drivesRounds && session.direction === 'h2-h1') {
      options.stage = (part, payload) => this.service.multiPrimary.stageAtTargets(session, part, payload);
    }
    return options;
  }

  // --- a participant: hold, cut, status ---

  private shipperOf(session: SessionRecord): ConsistencyGroupShipper | undefined {
    return this.service.mirroring.shippers.get(session.id);
  }

  private hold(session: SessionRecord, round: number, epoch: string, committed: number): MemberStatus {
    const service = this.service;
    this.heard.set(session.id, Date.now());
    const shipper = this.shipperOf(session);
    // A copy set being removed is no member any more; one just adopted (no bitmap yet) is not one yet; a joining one
    // is reported as joining (copying in its own mode), not as out of duplex.
    const { running, joining } = service;
    const pairs = service.pairsOf(session).filter((pair) => !running.isRemoving(pair) && pair.outOfSyncBitmap !== null);
    const sources = pairs.map((pair) => service.sourceOf(pair));
    const members = pairs.filter((pair) => !joining.isJoining(pair)).map((pair) => service.sourceOf(pair));
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
      joining: pairs.filter((pair) => joining.isJoining(pair)).map((pair) => pair.id),
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

  /** The rounds' peer requests this part serves (the target's dispatch table takes them in). */
  readonly peerHandlers: PeerHandlerTable<RoundsMethod> = {
    'mp.hold': ({ params }) => {
      const session = this.participantSession(params);
      return { result: this.hold(session, params.round, params.epoch, params.committed) };
    },
    'mp.cut': ({ params }) => {
      this.cut(this.participantSession(params), params.round, params.time);
      return {};
    },
    'mp.release': ({ params }) => {
      this.shipperOf(this.participantSession(params))?.endHold(params.round);
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

  /** The session of a participant's request: only another primary agent of the session takes part in its rounds remotely. */
  private participantSession(params: { session: string }): SessionRecord {
    return this.service.multiPrimary.memberSession(params);
  }

  private secondarySession(params: { session: string }): SessionRecord {
    const session = this.service.session(params.session);
    if (this.service.role(session).source || session.state === 'target-available' || session.state === 'recovering') {
      throw new ProblemError('invalid-state', `session ${session.name} is ${session.state} here; consistency groups are refused`);
    }
    return session;
  }


  /** Stops the rounds and waits for a round in progress to end. */
  async close(): Promise<void> {
    const coordinators = [...this.coordinators.values()];
    this.coordinators.clear();
    await Promise.all(coordinators.map((coordinator) => coordinator.stop()));
  }
}
