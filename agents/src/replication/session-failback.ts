import { ProblemError, type AgentEvent, type FailbackOptions, type FailbackPreflight, type RoundCommit } from '@tandem/contract';
import { problemMessage } from './pair-source.ts';
import { planPair, planSummary, summarizePlans, type PairPlan, type PlanSummary } from './failback.ts';
import type { ReplicationHooks } from './hooks.ts';
import type { PeerHandlerTable } from './link/peer-protocol.ts';
import type { SessionRecord } from './session-store.ts';
import { localVolumeId } from './copy-set-volumes.ts';

/** What session-failback uses of the service and the other parts (hooks.ts). */
export type SessionFailbackHooks = Pick<
  ReplicationHooks,
  'actions' | 'applier' | 'engine' | 'joining' | 'logger' | 'mirroring' | 'multiPrimary' | 'pairLink' | 'pairs' | 'pairsOf' | 'peers' | 'refreshTaps' | 'role' | 'session' | 'setState' | 'site' | 'sourceOf' | 'store' | 'verifier'
>;

type FailbackPlanOptions = Pick<FailbackOptions, 'verifyCodes' | 'fullCompare'>;
/** A member's detail between marking its failback plan and the control agent's `mp.run` (the way back to H1->H2). */
const WAITING_FOR_CONTROL_AGENT = 'failback: waiting for the control agent to start';
/** A verify after failback that fails (the link broke during it, say) runs again this many times in all, this long apart at least. */
const VERIFY_ATTEMPTS = 5;
const VERIFY_RETRY_MS = Number(process.env.TANDEM_VERIFY_RETRY_MS) || 2000;

/**
 * Failback, and the roll-forward of a recover, as one path for every
 * session: a single-primary session is the case of one primary agent (the
 * control agent, no members).
 *
 * A failback runs at the production site, the target of the current
 * direction (`failbackHere`): every copy set is planned against the agent
 * holding its other volume (`plan`; `preflight` reports the counts before
 * anything moves), exactly the planned tracks are marked out-of-sync
 * (`adoptPlans`), the other side becomes the target (`session.become-target`)
 * and mirroring runs the other way, verified by codes once Prepared.
 * - H1->H2 recovered at the secondary site: it plans against every primary
 *   agent and makes each one a target (H2->H1, see multi-primary.ts).
 * - The way back (H2->H1 recovered at H1): the control agent plans its own
 *   copy sets, every member plans and marks its own (`mp.failback-plan` with
 *   `apply`; suspended H1->H2 until the control agent's `mp.run`), and the
 *   secondary site becomes the target.
 *
 * A recover at H1 (H2->H1) runs at every primary agent (session-actions.ts
 * `recoverHere`; a member's by `mp.recover`), each first rolled forward to
 * the newest round committed at any of them (`rollForward`).
 */
export class SessionFailback {
  constructor(private readonly service: SessionFailbackHooks) {}

  async preflight(sessionName: string, options: FailbackPlanOptions): Promise<FailbackPreflight> {
    const service = this.service;
    const session = service.session(sessionName);
    if (session.state !== 'target-available') {
      throw new ProblemError('invalid-state', `session ${session.name} is ${session.state}; failback needs target-available`);
    }
    // Executed where the failback runs: the target of the current direction.
    const executor = service.actions.executor(session, 'failback');
    if (executor !== null) {
      const forwarded = await service.peers.link(executor).call('session.preflight', { session: session.id, options }, null, {
        waitForLinkMs: 3000,
        timeoutMs: 10 * 60_000,
      });
      return forwarded.result;
    }
    const { summaries } = await this.plan(session, options, false);
    return summarizePlans(session.name, summaries, service.engine.trackSize, options);
  }

  /**
   * Plans this agent's copy sets against the agents holding their other
   * volumes and, at the control agent of members (the way back to H1->H2),
   * the members' own, which with `apply` also mark them.
   */
  private async plan(
    session: SessionRecord,
    options: FailbackPlanOptions,
    apply: boolean,
  ): Promise<{ plans: PairPlan[]; summaries: PlanSummary[] }> {
    const service = this.service;
    const multi = service.multiPrimary;
    const plans: PairPlan[] = [];
    for (const pair of service.pairsOf(session)) {
      const link = service.pairLink(session, pair);
      await link.ready(3000);
      // Recovered during its initial copy: every candidate track (not yet copied, or changed here) is copied; equal
      // codes prove nothing about a volume that was never a consistent image.
      const whole = service.joining.initialCopyPending(pair);
      plans.push(await planPair(service.engine, link, pair, whole ? { verifyCodes: false, fullCompare: false } : options));
    }
    // A copy set names its primary agent's site when that is not the control agent (a member names its own).
    const site = service.role(session).member ? service.site : undefined;
    const summaries = plans.map((plan) => planSummary(plan, site ?? multi.primarySiteOf(plan.pair)));
    if (service.role(session).controlsMembers) {
      const answers = await multi.askMembers(session, 'mp.failback-plan', { options, apply }, 10 * 60_000);
      summaries.push(...answers.flatMap((answer) => answer.result.plans as PlanSummary[]));
    }
    return { plans, summaries };
  }

  /** Makes exactly the planned tracks of these copy sets out-of-sync here (the site becomes their source); target-changed tracking ends. */
  async adoptPlans(plans: PairPlan[]): Promise<void> {
    const service = this.service;
    const engine = service.engine;
    for (const plan of plans) {
      const pair = plan.pair;
      const bitmap = await engine.bitmaps.create(localVolumeId(engine, pair), 'clear');
      for (const track of plan.tracks) await engine.bitmaps.set(bitmap, track, 1);
      if (pair.outOfSyncBitmap !== null) await engine.bitmaps.delete(pair.outOfSyncBitmap);
      if (pair.targetChangedBitmap !== null) await engine.bitmaps.delete(pair.targetChangedBitmap);
      pair.outOfSyncBitmap = bitmap;
      pair.targetChangedBitmap = null;
      // A copy set recovered during its initial copy: the failback copies it whole (planned without the code shortcut).
      pair.joining = false;
      service.store.saveCopySet(pair);
    }
  }

  /**
   * Failback, executed at the production site (the current target): plan the
   * copy, make this site the source with exactly the planned tracks marked,
   * make the other side the target, and resync.
   */
  async failbackHere(session: SessionRecord, options: FailbackPlanOptions): Promise<void> {
    const service = this.service;
    const engine = service.engine;
    const direction = session.direction === 'h1-h2' ? 'h2-h1' : 'h1-h2';
    // The other side of every copy set becomes the target: every primary agent from the secondary site, else the secondary.
    const targets = service.role(session).secondary ? service.multiPrimary.otherAgents(session) : [session.peerAgentId];
    // Every one of them is reachable before anything is marked or handed over (nothing changes when one is not).
    await Promise.all(targets.map((agent) => service.peers.link(agent).ready(3000)));
    const { plans, summaries } = await this.plan(session, options, true);
    await this.adoptPlans(plans);
    const copied = summaries.reduce((sum, plan) => sum + plan.tracksToCopy, 0);
    try {
      for (const agent of targets) {
        await service.peers.link(agent).call('session.become-target', { session: session.id, direction }, null, { waitForLinkMs: 3000 });
      }
    } catch (error) {
      // Still target-available here: host writes are tracked again (the planned tracks stay marked out-of-sync and
      // are candidates of the next plan with them), so asking again plans everything that changed.
      for (const plan of plans) {
        const pair = plan.pair;
        if (pair.targetChangedBitmap === null && service.pairs.has(pair.id)) {
          pair.targetChangedBitmap = await engine.bitmaps.create(localVolumeId(engine, pair), 'clear');
          service.store.saveCopySet(pair);
        }
      }
      service.refreshTaps();
      throw error;
    }
    service.setState(session, 'preparing', {
      direction,
      detail: `failback: copying ${copied} track(s)`,
    });
    engine.catalog.recordEvent('session.failback', 'info', session.name, `failback of ${session.name} copies ${copied} track(s)`, {
      tracks: copied,
      pairs: summaries.map((plan) => ({
        pair: plan.pair,
        ...(plan.primarySite ? { primarySite: plan.primarySite } : {}),
        tracks: plan.tracksToCopy,
        candidates: plan.candidateTracks,
      })),
    });
    void service.mirroring.runMirroring(session);
    this.verifyWhenPrepared(session);
  }

  /**
   * A failback is verified by the agent itself: once it reaches Prepared,
   * segment codes of every track are compared at both sites (the online
   * verify, differences marked and copied) and the result is recorded with
   * the session (`lastVerify`, event `session.verified`). Through a
   * suspension (link loss) it waits for Prepared; another state ends the wait.
   * A verify that fails (the link breaks during it, say) is said in an event
   * and runs again once the session is Prepared, up to VERIFY_ATTEMPTS times.
   */
  private verifyWhenPrepared(session: SessionRecord, attempt = 1): void {
    const service = this.service;
    const catalog = service.engine.catalog;
    if (session.type === 'snapshot-shipping') {
      catalog.recordEvent('session.verify', 'info', session.name, `session ${session.name}: a snapshot-shipping target lags by design; the failback is not verified by codes`);
      return;
    }
    const waiting = new Set(['preparing', 'suspending', 'suspended']);
    // A retry while the session is prepared runs now; a state other than these ends the wait.
    if (attempt > 1 && session.state === 'prepared') return this.verifyAfterFailback(session, attempt);
    if (attempt > 1 && !waiting.has(session.state)) return;
    const listener = (event: AgentEvent) => {
      if (event.type !== 'session.state' || event.subject !== session.name) return;
      const to = String(event.data?.to ?? '');
      if (waiting.has(to)) return;
      catalog.events.off('event', listener);
      if (to !== 'prepared') return;
      // Called while the state change is recorded: the verify is registered before any request can ask for one.
      this.verifyAfterFailback(session, attempt);
    };
    catalog.events.on('event', listener);
  }

  /** The verify after failback; a failure is said in an event and tried again after a pause (see verifyWhenPrepared). */
  private verifyAfterFailback(session: SessionRecord, attempt: number): void {
    const service = this.service;
    service.verifier.verify(session.name, { trigger: 'failback' }).catch((error) => {
      const again = attempt < VERIFY_ATTEMPTS;
      service.engine.catalog.recordEvent(
        'session.verify',
        'warning',
        session.name,
        `session ${session.name}: the verify after failback failed (${problemMessage(error)})${again ? `; it runs again once the session is prepared (attempt ${attempt + 1} of ${VERIFY_ATTEMPTS})` : ''}`,
        { trigger: 'failback', attempt, again },
      );
      if (again) setTimeout(() => this.verifyWhenPrepared(session, attempt + 1), VERIFY_RETRY_MS).unref();
    });
  }

  /** The other site took over as source (failback): this site becomes the target. */
  async becomeTarget(session: SessionRecord, direction: SessionRecord['direction']): Promise<void> {
    const service = this.service;
    await service.mirroring.stopSource(session, null);
    service.mirroring.dropSources(session);
    await service.mirroring.dropBitmaps(session);
    service.setState(session, 'preparing', { direction }, false);
  }

  /**
   * A recover at H1 (H2->H1), at every primary agent before staged parts are
   * dropped: the newest round committed at any H1 agent is committed here
   * too (the control agent asks every member, `mp.last-commit`; a member is
   * given the control agent's answer, `mp.recover`). The secondary site
   * commits a round at every H1 agent only once all of them staged it, but
   * its commits reach them one by one: if it stopped in between (or one
   * agent refused), some applied the round and others hold it staged.
   * Rolling every agent forward leaves the H1 volumes together the image of
   * one cut. Returns that commit (null: none, and with one primary agent).
   */
  async rollForward(session: SessionRecord, given: RoundCommit | null): Promise<RoundCommit | null> {
    const service = this.service;
    const controls = service.role(session).controlsMembers;
    if (!controls && given === null) return null;
    const answers = controls ? await service.multiPrimary.askMembers(session, 'mp.last-commit', {}, 30_000) : [];
    const mine = await service.applier.lastCommit(session.id);
    const commits = [given, mine, ...answers.map((answer) => answer.result)].filter((commit): commit is RoundCommit => commit !== null);
    if (commits.length === 0) return null;
    const newest = commits.reduce((best, commit) => (commit.time > best.time ? commit : best));
    // Applied here unless this agent's last commit is it (or newer).
    if (mine && (mine.time > newest.time || (mine.epoch === newest.epoch && mine.through >= newest.through))) return newest;
    await service.applier.commit(session.id, newest.epoch, newest.through, newest.time);
    service.engine.catalog.recordEvent(
      'session.rolled-forward',
      'info',
      session.name,
      `session ${session.name}: round ${newest.through} committed at another H1 agent is applied at ${service.site} too`,
      { epoch: newest.epoch, through: newest.through, time: new Date(newest.time).toISOString() },
    );
    return newest;
  }

  /**
   * Control agent, H2->H1 recovered here: every member recovers too (rolled
   * forward to `commit`; a member not reached fails the recover: it would
   * stay write-inhibited).
   */
  async recoverMembers(session: SessionRecord, commit: RoundCommit | null): Promise<void> {
    await this.service.multiPrimary.askMembers(session, 'mp.recover', { commit }, 30_000);
  }

  /** The session of a request only its control agent asks a member. */
  private fromControlAgent(params: { session: string }, peerAgentId: string): SessionRecord {
    const session = this.service.multiPrimary.memberSession(params);
    if (peerAgentId !== session.controlAgentId) throw new ProblemError('access-denied', `only the control agent of ${session.name} asks this`);
    return session;
  }

  /** Failover and failback at a member: what its control agent asks of it. */
  readonly peerHandlers: PeerHandlerTable<'mp.recover' | 'mp.verify' | 'mp.last-commit' | 'mp.failback-plan'> = {
    'mp.recover': async ({ params, peerAgentId }) => {
      const session = this.fromControlAgent(params, peerAgentId);
      // The secondary site was the source (H2->H1); this member recovers as its control agent did.
      if (session.direction !== 'h2-h1') {
        throw new ProblemError('invalid-state', `session ${session.name} runs H1->H2; recover it at its secondary site`);
      }
      if (session.state !== 'target-available') await this.service.actions.recoverHere(session, {}, params.commit ?? null);
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
      const { plans, summaries } = await this.plan(session, { verifyCodes: options.verifyCodes !== false, fullCompare: options.fullCompare === true }, false);
      if (params.apply === true && marked) {
        // Already the source: its out-of-sync bitmaps hold the first plan's tracks and every host write since; the
        // new plan's tracks are added (nothing is dropped: a write landing while this planned stays marked).
        for (const plan of plans) await service.sourceOf(plan.pair)?.mark(plan.tracks);
      } else if (params.apply === true) {
        await this.adoptPlans(plans);
        // Source again: host writes mark out-of-sync from now until the control agent runs the copy sets (mp.run).
        service.setState(session, 'suspended', { direction: 'h1-h2', detail: WAITING_FOR_CONTROL_AGENT, recoverable: true }, false);
        service.mirroring.dropSources(session);
        for (const pair of service.pairsOf(session)) service.mirroring.ensureSource(session, pair);
        service.refreshTaps();
      }
      return { result: { plans: summaries } };
    },
  };
}
