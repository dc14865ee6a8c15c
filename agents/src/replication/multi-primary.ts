import { ProblemError, type PairInfo, type PeerMethod, type PeerParamsIn, type PeerResult } from '@tandem/contract';
import type { GroupEntry } from './async-groups.ts';
import { copySetState } from './copy-set-state.ts';
import type { PeerHandlerTable } from './link/peer-protocol.ts';
import { problemMessage } from './pair-source.ts';
import type { ReplicationHooks } from './hooks.ts';
import { stagePart, type PartPayload } from './parts.ts';
import { type CopySetRecord, type HeldCopySet, type SessionRecord } from './session-store.ts';
import { localVolumeId } from './copy-set-volumes.ts';

/** What multi-primary uses of the service and the other parts (hooks.ts). */
export type MultiPrimaryHooks = Pick<
  ReplicationHooks,
  'agentId' | 'copySets' | 'engine' | 'mirroring' | 'pairs' | 'pairsOf' | 'peers' | 'role' | 'rounds' | 'session' | 'sessions' | 'setState' | 'site' | 'store'
>;

/** The multi-primary methods this part serves itself (running changes, rounds and failback have their own tables). */
type MultiPrimaryMethod = `mp.${'join' | 'secondary-pair' | 'run' | 'stop'}`;

/**
 * A primary agent that hears nothing from the control agent for this long while mirroring suspends itself
 * (`TANDEM_MP_CONTROL_SILENCE_MS`; the earlier name `TANDEM_MP_MASTER_SILENCE_MS` is still read).
 */
const CONTROL_SILENCE_MS = Number(process.env.TANDEM_MP_CONTROL_SILENCE_MS ?? process.env.TANDEM_MP_MASTER_SILENCE_MS) || 5000;
/**
 * Async sessions whose copy sets have their primary volumes on several
 * agents. Roles, per session:
 * - the control agent: the agent where the session was defined (its H1 site). It
 *   keeps every copy set (the others' without local fields, see
 *   session-store.ts), drives the state machine and the session's rounds
 *   (rounds.ts: every primary agent takes part, a two-phase cut);
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
 * a secondary that stages its copy sets' parts (`stageAtTargets`) and applies them when a round
 * is committed at all of them. Failback, and the recover of every H1 agent
 * rolled forward to one cut, are session-failback.ts's.
 *
 * What each agent keeps (so that a restart of any agent resumes): the
 * session record with its direction (every agent), the copy sets' bitmaps
 * (the source side: out-of-sync; the recovered side: target-changed), and
 * every copy set's primary agent in `copy_sets`. The agent driving the
 * rounds in the session's direction resumes mirroring at its start; the
 * others are targets (or, H1->H2, members run again by the control agent).
 *
 * This part keeps what is particular to other primary agents: their copy
 * sets at the control agent, adding and removing them, a member's start and
 * stop, and its watch over the control agent.
 */
export class MultiPrimarySessions {
  private watchdog: NodeJS.Timeout | null = null;

  constructor(private readonly service: MultiPrimaryHooks) {}

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

  /**
   * The agent holding the other volume of a copy set, seen from here: at the
   * secondary site the copy set's primary agent (the control agent or a member), at
   * a primary agent the secondary site.
   */
  pairAgent(session: SessionRecord, pair: HeldCopySet): string {
    return this.service.role(session).secondary ? pair.primaryAgentId : pair.secondaryAgentId;
  }

  /**
   * H2->H1 at the secondary site: stages a sealed part at every H1 agent,
   * each getting the entries of the copy sets whose H1 volume it holds (agents
   * without changes in the part get nothing: a commit applies what is staged).
   */
  async stageAtTargets(
    session: SessionRecord,
    part: { run: string; epoch: string; from: string; round: number; time: number; entries: GroupEntry[] },
    payload: PartPayload,
  ): Promise<void> {
    const pairs = new Map(this.service.pairsOf(session).map((pair) => [pair.id, pair]));
    const byAgent = new Map<string, GroupEntry[]>();
    for (const entry of part.entries) {
      const pair = pairs.get(entry.pair);
      if (!pair) throw new ProblemError('not-found', `a consistency group of ${session.name} names an unknown copy set ${entry.pair}`);
      const agent = this.pairAgent(session, pair);
      const entries = byAgent.get(agent) ?? [];
      if (entries.length === 0) byAgent.set(agent, entries);
      entries.push(entry);
    }
    // Each agent's share goes in pieces (a write's data, or a marker's payload: a coordinated flash's fixup data).
    const header = { session: session.id, run: part.run, epoch: part.epoch, from: part.from, round: part.round, time: part.time };
    await Promise.all([...byAgent].map(([agent, entries]) => stagePart(this.service.peers.link(agent), header, entries, payload)));
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

  /**
   * Control agent: asks every member the same, at the same time (the session
   * named for it); the answers in the members' order. A member not reached, or
   * refusing, fails the whole, with its site named.
   */
  async askMembers<M extends PeerMethod>(
    session: SessionRecord,
    method: M,
    params: Omit<PeerParamsIn<M>, 'session'>,
    timeoutMs: number,
  ): Promise<Array<{ agent: string; result: PeerResult<M> }>> {
    return Promise.all(
      this.memberAgents(session).map(async (agent) => {
        const wire = { session: session.id, ...params } as PeerParamsIn<M>;
        try {
          const answer = await this.service.peers.link(agent).call(method, wire, null, { waitForLinkMs: 3000, timeoutMs });
          return { agent, result: answer.result };
        } catch (error) {
          throw new ProblemError(error instanceof ProblemError ? error.problem : 'internal-error', `at ${this.siteOf(agent)}: ${problemMessage(error)}`);
        }
      }),
    );
  }

  /** Every link the agent driving the rounds needs: every other agent's of the session. */
  links(session: SessionRecord) {
    return this.otherAgents(session).map((agent) => this.service.peers.link(agent));
  }

  // --- control agent: running the session ---

  siteOf(agentId: string): string {
    if (agentId === this.service.agentId) return this.service.site;
    try {
      return this.service.peers.get(agentId).site;
    } catch {
      return agentId;
    }
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

  /** Control agent: the copy sets on member agents, as the members last reported them. */
  memberPairInfos(session: SessionRecord): PairInfo[] {
    const coordinator = this.service.rounds.coordinatorOf(session);
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
  primarySiteOf(pair: CopySetRecord): string | undefined {
    const session = this.service.session(pair.sessionId);
    const elsewhere = pair.primaryAgentId !== session.controlAgentId && pair.primaryAgentId !== this.service.agentId;
    return elsewhere ? this.siteOf(pair.primaryAgentId) : undefined;
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
    this.service.rounds.heard.set(session.id, Date.now());
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
        const heard = this.service.rounds.heard.get(session.id) ?? 0;
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
      const joining = service.pairs.get(pair.id)?.joining === true;
      service.copySets.adoptPair({ ...pair, ...(joining ? { joining } : {}) });
      return {};
    },
    'mp.run': async ({ params }) => {
      await this.runHere(this.memberSession(params));
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
  };

  /** The session of a member request, refusing requests about sessions this agent is not a member of. */
  memberSession(params: { session: string }): SessionRecord {
    const session = this.service.session(params.session);
    if (!this.service.role(session).member) {
      throw new ProblemError('bad-request', `this agent is not a member (primary agent) of session ${session.name}`);
    }
    return session;
  }

  /** Stops watching the control agents. */
  close(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
  }
}
