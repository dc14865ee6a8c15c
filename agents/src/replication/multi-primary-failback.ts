import { ProblemError, type FailbackOptions, type RoundCommit } from '@tandem/contract';
import type { GroupEntry } from './async-groups.ts';
import { stagePart, type PartPayload } from './parts.ts';
import { planPair, planSummary, type PairPlan, type PlanSummary } from './failback.ts';
import type { PeerHandlerTable } from './link/peer-protocol.ts';
import type { MultiPrimaryPart, ReplicationHooks } from './hooks.ts';
import type { SessionRecord } from './session-store.ts';
import { localVolumeId } from './copy-set-volumes.ts';

/** What multi-primary-failback uses of the service and the other parts (hooks.ts). */
export type MultiPrimaryFailbackHooks = Pick<
  ReplicationHooks,
  'agentId' | 'applier' | 'engine' | 'failback' | 'joining' | 'mirroring' | 'multiPrimary' | 'pairLink' | 'pairsOf' | 'peers' | 'refreshTaps' | 'setState' | 'site' | 'sourceOf' | 'store' | 'verifier'
>;

type FailbackPlanOptions = Pick<FailbackOptions, 'verifyCodes' | 'fullCompare'>;
/** A member's detail between marking its failback plan and the control agent's `mp.run` (the way back to H1->H2). */
const WAITING_FOR_CONTROL_AGENT = 'failback: waiting for the control agent to start';
/** A commit of the secondary site's rounds at an H1 agent (H2->H1). */
type Commit = RoundCommit;

/**
 * Failover and failback of multi-primary async sessions: copy sets whose H1
 * volumes live on several agents (the control agent and members), one secondary
 * site H2.
 *
 * Roles per direction:
 * - H1->H2 (as defined): the control agent drives the rounds; every primary agent
 *   (control agent and members) cuts its part; the secondary site stages and applies.
 * - H2->H1 (after failback): the secondary site is the only source and
 *   drives the rounds with itself as the only participant; every H1 agent
 *   (control agent and members) is a secondary of the cut coordinator: each stages
 *   the part of its own copy sets (`stageAtTargets` splits every sealed part
 *   per agent) and a round is committed only once every H1 agent staged it,
 *   so the H1 sites together move from one consistent image to the next.
 *
 * What each agent keeps (so that a restart of any agent resumes): the session
 * record with its direction (every agent), the copy sets' bitmaps (the source
 * side: out-of-sync; the recovered side: target-changed), and every copy
 * set's primary agent (the one holding its H1 volume) in `copy_sets`. The agent driving the rounds in the
 * session's direction resumes mirroring at its start; the others are targets
 * (or, H1->H2, members run again by the control agent).
 *
 * Actions: Recover and Start H2->H1 run at the secondary site when it is the
 * target (H1->H2): the failback plans every copy set against the agent that
 * holds its H1 volume and makes every H1 agent a target (`session.become-target`).
 * The way back (H2->H1 suspended or recovered at H1, then Start H1->H2) runs
 * at the control agent: members recover (`mp.recover`) and plan their own copy sets
 * against the secondary site (`mp.failback-plan`), then the control agent resumes
 * the H1->H2 run (`mp.run` at every member).
 */
export class MultiPrimaryFailback {
  constructor(
    private readonly service: MultiPrimaryFailbackHooks,
    private readonly multi: Pick<MultiPrimaryPart, 'pairAgent' | 'askMembers' | 'memberSession'>,
  ) {}

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
    const service = this.service;
    const pairs = new Map(service.pairsOf(session).map((pair) => [pair.id, pair]));
    const byAgent = new Map<string, GroupEntry[]>();
    for (const entry of part.entries) {
      const pair = pairs.get(entry.pair);
      if (!pair) throw new ProblemError('not-found', `a consistency group of ${session.name} names an unknown copy set ${entry.pair}`);
      const agent = this.multi.pairAgent(session, pair);
      let entries = byAgent.get(agent);
      if (!entries) {
        entries = [];
        byAgent.set(agent, entries);
      }
      entries.push(entry);
    }
    // Each agent's share goes in pieces (a write's data, or a marker's payload: a coordinated flash's fixup data).
    const header = { session: session.id, run: part.run, epoch: part.epoch, from: part.from, round: part.round, time: part.time };
    await Promise.all([...byAgent].map(([agent, entries]) => stagePart(service.peers.link(agent), header, entries, payload)));
  }

  /**
   * Control agent, H2->H1 recovered here, before staged parts are dropped: the
   * newest round committed at any H1 agent is committed here too. The
   * secondary site commits a round at every H1 agent only once all of them
   * staged it, but its commits reach them one by one: if it stopped in
   * between (or one agent refused), some applied the round and others hold
   * it staged. Rolling every agent forward to the newest commit leaves the
   * H1 volumes together the image of one cut. Returns that commit (null: none).
   */
  async rollForward(session: SessionRecord): Promise<Commit | null> {
    const answers = (await this.multi.askMembers(session, 'mp.last-commit', {}, 30_000)).map((answer) => answer.result);
    const commits = [await this.service.applier.lastCommit(session.id), ...answers].filter((commit): commit is Commit => commit !== null);
    if (commits.length === 0) return null;
    const newest = commits.reduce((best, commit) => (commit.time > best.time ? commit : best));
    await this.commitIfBehind(session, newest);
    return newest;
  }

  /** Applies `commit` here unless this agent's last commit is it (or newer). */
  private async commitIfBehind(session: SessionRecord, commit: Commit): Promise<void> {
    const service = this.service;
    const mine = await service.applier.lastCommit(session.id);
    if (mine && (mine.time > commit.time || (mine.epoch === commit.epoch && mine.through >= commit.through))) return;
    await service.applier.commit(session.id, commit.epoch, commit.through, commit.time);
    service.engine.catalog.recordEvent(
      'session.rolled-forward',
      'info',
      session.name,
      `session ${session.name}: round ${commit.through} committed at another H1 agent is applied at ${service.site} too`,
      { epoch: commit.epoch, through: commit.through, time: new Date(commit.time).toISOString() },
    );
  }

  /**
   * Control agent, H2->H1 recovered here: every member recovers too (rolled forward
   * to `commit`, staged parts dropped, target-changed tracking on,
   * writable). A member that cannot be reached fails the recover: it would
   * stay write-inhibited.
   */
  async recoverMembers(session: SessionRecord, commit: Commit | null): Promise<void> {
    await this.multi.askMembers(session, 'mp.recover', { commit }, 30_000);
  }

  /**
   * Control agent, the way back (Start H1->H2 from H2->H1): every member plans its
   * copy sets against the secondary site; with `apply` it also marks exactly
   * the planned tracks out-of-sync and takes the H1->H2 direction (the control agent
   * then runs it with `mp.run`).
   */
  async memberPlans(session: SessionRecord, options: FailbackPlanOptions, apply: boolean): Promise<PlanSummary[]> {
    const answers = await this.multi.askMembers(session, 'mp.failback-plan', { options, apply }, 10 * 60_000);
    return answers.flatMap((answer) => answer.result.plans as PlanSummary[]);
  }

  /** Plans this agent's copy sets of a session against the agents holding their other volumes. */
  async planLocal(session: SessionRecord, options: FailbackPlanOptions): Promise<PairPlan[]> {
    const service = this.service;
    const plans: PairPlan[] = [];
    for (const pair of service.pairsOf(session)) {
      const link = service.pairLink(session, pair);
      await link.ready(3000);
      // Recovered during its initial copy: every candidate track (not yet copied, or changed here) is copied; equal
      // codes prove nothing about a volume that was never a consistent image.
      const whole = service.joining.initialCopyPending(pair);
      plans.push(await planPair(service.engine, link, pair, whole ? { verifyCodes: false, fullCompare: false } : options));
    }
    return plans;
  }

  /** The session of a failback request from its control agent (only the control agent of a session asks a member these). */
  private fromControlAgent(params: { session: string }, peerAgentId: string): SessionRecord {
    const session = this.multi.memberSession(params);
    if (peerAgentId !== session.controlAgentId) throw new ProblemError('access-denied', `only the control agent of ${session.name} asks this`);
    return session;
  }

  /** Failover and failback at a member: this part's peer requests. */
  readonly peerHandlers: PeerHandlerTable<'mp.recover' | 'mp.verify' | 'mp.last-commit' | 'mp.failback-plan'> = {
    'mp.recover': async ({ params, peerAgentId }) => {
      const service = this.service;
      const session = this.fromControlAgent(params, peerAgentId);
      // The secondary site was the source (H2->H1); this member's volumes become writable.
      if (session.direction !== 'h2-h1') {
        throw new ProblemError('invalid-state', `session ${session.name} runs H1->H2; recover it at its secondary site`);
      }
      if (session.state !== 'target-available') {
        service.setState(session, 'recovering', {}, false);
        const commit = params.commit;
        if (commit) await this.commitIfBehind(session, commit);
        await service.applier.discardParts(session.id);
        for (const pair of service.pairsOf(session)) {
          if (pair.targetChangedBitmap === null) {
            pair.targetChangedBitmap = await service.engine.bitmaps.create(localVolumeId(service.engine, pair), 'clear');
            service.store.saveCopySet(pair);
          }
        }
        service.setState(session, 'target-available', { detail: null }, false);
      }
      return {};
    },
    'mp.verify': async ({ params, peerAgentId }) => {
      const session = this.fromControlAgent(params, peerAgentId);
      // This member's own copy sets, once it is duplex: back to H1->H2 after a failback, or part of the control agent's verify.
      const deadline = Date.now() + 60_000;
      while (session.state === 'preparing' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      const trigger = params.trigger === 'request' ? 'request' : 'failback';
      return { result: await this.service.verifier.verify(session.name, { forwarded: true, trigger }) };
    },
    'mp.last-commit': async ({ params, peerAgentId }) => {
      const session = this.fromControlAgent(params, peerAgentId);
      return { result: await this.service.applier.lastCommit(session.id) };
    },
    'mp.failback-plan': async ({ params, peerAgentId }) => {
      const service = this.service;
      const session = this.fromControlAgent(params, peerAgentId);
      // Asked again after a failback that marked here but could not make the secondary site the target: plan again.
      const marked = session.state === 'suspended' && session.direction === 'h1-h2' && session.detail === WAITING_FOR_CONTROL_AGENT;
      if (!marked && (session.state !== 'target-available' || session.direction !== 'h2-h1')) {
        throw new ProblemError('invalid-state', `session ${session.name} is ${session.state} (${session.direction}) at ${service.site}; failback needs target-available`);
      }
      const options = params.options ?? {};
      const plans = await this.planLocal(session, { verifyCodes: options.verifyCodes !== false, fullCompare: options.fullCompare === true });
      if (params.apply === true && marked) {
        // Already the source: its out-of-sync bitmaps hold the first plan's tracks and every host write since; the
        // new plan's tracks are added (nothing is dropped: a write landing while this planned stays marked).
        for (const plan of plans) await service.sourceOf(plan.pair)?.mark(plan.tracks);
      } else if (params.apply === true) {
        await service.failback.adoptPlans(plans);
        // Source again: host writes mark out-of-sync from now until the control agent runs the copy sets (mp.run).
        service.setState(session, 'suspended', { direction: 'h1-h2', detail: WAITING_FOR_CONTROL_AGENT, recoverable: true }, false);
        service.mirroring.dropSources(session);
        for (const pair of service.pairsOf(session)) service.mirroring.ensureSource(session, pair);
        service.refreshTaps();
      }
      return { result: { plans: plans.map((plan) => planSummary(plan, service.multiPrimary.siteOf(service.agentId))) } };
    },
  };
}
