import { ProblemError, type AgentEvent, type FailbackPreflight } from '@tandem/contract';
import { problemMessage } from './pair-source.ts';
import { planPair, summarizePlans, type PairPlan } from './failback.ts';
import type { ReplicationService } from './service.ts';
import type { SessionRecord } from './session-store.ts';

type FailbackPlanOptions = { verifyCodes: boolean; fullCompare: boolean };

/**
 * Failback orchestration: the preflight (counts before anything moves), the
 * failback itself at the production site, and the old source becoming the
 * target.
 */
export class SessionFailback {
  constructor(private readonly service: ReplicationService) {}

  async preflight(sessionName: string, options: FailbackPlanOptions): Promise<FailbackPreflight> {
    const service = this.service;
    const session = service.session(sessionName);
    if (session.state !== 'target-available') {
      throw new ProblemError('invalid-state', `session ${session.name} is ${session.state}; failback needs target-available`);
    }
    if (service.isSource(session)) {
      const forwarded = await service.link(session).call('session.preflight', { session: session.id, options }, null, {
        waitForLinkMs: 3000,
        timeoutMs: 10 * 60_000,
      });
      return forwarded.result as FailbackPreflight;
    }
    const plans = await this.plan(session, options);
    return summarizePlans(session.name, plans, service.engine.trackSize, options);
  }

  private async plan(session: SessionRecord, options: FailbackPlanOptions): Promise<PairPlan[]> {
    const link = this.service.link(session);
    await link.ready(3000);
    const plans: PairPlan[] = [];
    for (const pair of this.service.pairsOf(session)) plans.push(await planPair(this.service.engine, link, pair, options));
    return plans;
  }

  /**
   * Failback, executed at the production site (the current target): plan the
   * copy, make this site the source with exactly the planned tracks marked,
   * make the other site the target, and resync.
   */
  async failbackHere(session: SessionRecord, options: FailbackPlanOptions): Promise<void> {
    const service = this.service;
    const engine = service.engine;
    const plans = await this.plan(session, options);
    for (const plan of plans) {
      const pair = plan.pair;
      const bitmap = await engine.bitmaps.create(engine.volumeId(pair.localVolume), 'clear');
      for (const track of plan.tracks) await engine.bitmaps.set(bitmap, track, 1);
      if (pair.outOfSyncBitmap !== null) await engine.bitmaps.delete(pair.outOfSyncBitmap);
      if (pair.targetChangedBitmap !== null) await engine.bitmaps.delete(pair.targetChangedBitmap);
      pair.outOfSyncBitmap = bitmap;
      pair.targetChangedBitmap = null;
      service.store.savePair(pair);
    }
    const direction = session.direction === 'h1-h2' ? 'h2-h1' : 'h1-h2';
    const copied = plans.reduce((sum, plan) => sum + plan.tracks.length, 0);
    await service.link(session).call('session.become-target', { session: session.id, direction }, null, { waitForLinkMs: 3000 });
    service.setState(session, 'preparing', {
      direction,
      detail: `failback: copying ${copied} track(s)`,
    });
    engine.catalog.recordEvent('session.failback', 'info', session.name, `failback of ${session.name} copies ${copied} track(s)`, {
      tracks: copied,
      pairs: plans.map((plan) => ({ pair: plan.pair.id, tracks: plan.tracks.length, candidates: plan.candidates.length })),
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
