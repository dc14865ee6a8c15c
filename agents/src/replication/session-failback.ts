import { ProblemError, type AgentEvent, type FailbackPreflight } from '@tandem/contract';
import { problemMessage } from './pair-source.ts';
import { planSummary, summarizePlans, type PairPlan, type PlanSummary } from './failback.ts';
import type { ReplicationHooks } from './hooks.ts';
import type { SessionRecord } from './session-store.ts';
import { localVolumeId } from './copy-set-volumes.ts';

/** What session-failback uses of the service and the other parts (hooks.ts). */
export type SessionFailbackHooks = Pick<
  ReplicationHooks,
  'engine' | 'link' | 'logger' | 'mirroring' | 'multiPrimary' | 'pairs' | 'peers' | 'refreshTaps' | 'role' | 'session' | 'setState' | 'store' | 'verifier'
>;

type FailbackPlanOptions = { verifyCodes: boolean; fullCompare: boolean };

/**
 * Failback orchestration: the preflight (counts before anything moves), the
 * failback itself at the production site, and the old source becoming the
 * target.
 */
export class SessionFailback {
  constructor(private readonly service: SessionFailbackHooks) {}

  async preflight(sessionName: string, options: FailbackPlanOptions): Promise<FailbackPreflight> {
    const service = this.service;
    const session = service.session(sessionName);
    if (session.state !== 'target-available') {
      throw new ProblemError('invalid-state', `session ${session.name} is ${session.state}; failback needs target-available`);
    }
    // Executed where the failback runs: the target of the current direction (a multi-primary member asks its control agent).
    const multi = service.multiPrimary;
    if (service.role(session).source || service.role(session).member) {
      const to = service.role(session).member ? service.peers.link(session.controlAgentId) : service.link(session);
      const forwarded = await to.call('session.preflight', { session: session.id, options }, null, {
        waitForLinkMs: 3000,
        timeoutMs: 10 * 60_000,
      });
      return forwarded.result;
    }
    const { summaries } = await this.plan(session, options, false);
    return summarizePlans(session.name, summaries, service.engine.trackSize, options);
  }

  /**
   * Plans every copy set of the session: this site's against the agent
   * holding each one's other volume, and (a multi-primary control agent on the way
   * back to H1->H2) the members' own, which with `apply` also mark them.
   */
  private async plan(
    session: SessionRecord,
    options: FailbackPlanOptions,
    apply: boolean,
  ): Promise<{ plans: PairPlan[]; summaries: PlanSummary[] }> {
    const multi = this.service.multiPrimary;
    const plans = await multi.failback.planLocal(session, options);
    const summaries = plans.map((plan) => planSummary(plan, multi.primarySiteOf(plan.pair)));
    if (this.service.role(session).controlsMembers) summaries.push(...(await multi.failback.memberPlans(session, options, apply)));
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
   * make the other site the target, and resync.
   */
  async failbackHere(session: SessionRecord, options: FailbackPlanOptions): Promise<void> {
    const service = this.service;
    const engine = service.engine;
    const multi = service.multiPrimary;
    const direction = session.direction === 'h1-h2' ? 'h2-h1' : 'h1-h2';
    // A multi-primary control agent's members plan and mark their own copy sets (the way back to H1->H2).
    // The other side of every copy set becomes the target: the H1 agents of a multi-primary session from its secondary site.
    const targets = service.role(session).controlsMembers ? [session.peerAgentId] : multi.otherAgents(session);
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
   */
  private verifyWhenPrepared(session: SessionRecord): void {
    const service = this.service;
    const catalog = service.engine.catalog;
    if (session.type === 'snapshot-shipping') {
      catalog.recordEvent('session.verify', 'info', session.name, `session ${session.name}: a snapshot-shipping target lags by design; the failback is not verified by codes`);
      return;
    }
    const waiting = new Set(['preparing', 'suspending', 'suspended']);
    const listener = (event: AgentEvent) => {
      if (event.type !== 'session.state' || event.subject !== session.name) return;
      const to = String(event.data?.to ?? '');
      if (waiting.has(to)) return;
      catalog.events.off('event', listener);
      if (to !== 'prepared') return;
      // Called while the state change is recorded: the verify is registered before any request can ask for one.
      service.verifier.verify(session.name, { trigger: 'failback' }).catch((error) => {
        service.logger.warn({ session: session.name, error: problemMessage(error) }, 'verify after failback failed');
      });
    };
    catalog.events.on('event', listener);
  }

  /** The other site took over as source (failback): this site becomes the target. */
  async becomeTarget(session: SessionRecord, direction: SessionRecord['direction']): Promise<void> {
    const service = this.service;
    await service.mirroring.stopSource(session, null);
    service.mirroring.dropSources(session);
    await service.mirroring.dropBitmaps(session);
    service.setState(session, 'preparing', { direction }, false);
  }
}
