import { ProblemError, type AgentEvent, type LastVerify, type VerifyPairReport, type VerifyReport } from '@tandem/contract';
import { problemMessage } from './pair-source.ts';
import type { ReplicationHooks } from './hooks.ts';
import type { SessionRecord } from './session-store.ts';
import { primarySiteFor } from './session-reports.ts';
import { verifyPair } from './verify.ts';
import { localVolumeName } from './copy-set-volumes.ts';

/** What session-verify uses of the service and the other parts (hooks.ts). */
export type SessionVerifierHooks = Pick<
  ReplicationHooks,
  'agentId' | 'engine' | 'link' | 'mirroring' | 'multiPrimary' | 'pairLink' | 'pairsOf' | 'role' | 'session' | 'setState' | 'sourceOf'
>;

/**
 * Online verify of duplex sessions by segment codes. One verify runs per
 * session at a time: a request while one runs (say the console's, right
 * after the agent began verifying a failback by itself) gets that verify's
 * report. A request while the session is Preparing only because the last
 * verify's own repair resync copies what it found gets that verify's report
 * too (it answers "is it verified?": N tracks differed and are being copied);
 * any other Preparing (initial copy, resume, failback copy) is invalid-state.
 * Every result is recorded with the session (`lastVerify`).
 */
export class SessionVerifier {
  private readonly running = new Map<string, Promise<VerifyReport>>();
  /** Sessions in Preparing for a verify's repair resync, with that verify's report; dropped at the next state change. */
  private readonly repairing = new Map<string, VerifyReport>();

  constructor(private readonly service: SessionVerifierHooks) {}

  /**
   * Online verify of a duplex session by segment codes, executed at its
   * source (forwarded there from the target). Real differences are marked
   * out-of-sync and copied by a resync; tracks that differed only because
   * writes were in flight are never reported (see verifyPair).
   */
  async verify(sessionName: string, options: { forwarded?: boolean; trigger?: LastVerify['trigger'] } = {}): Promise<VerifyReport> {
    const service = this.service;
    const session = service.session(sessionName);
    const pending = this.running.get(session.id);
    if (pending) return pending;
    if (!service.role(session).source) {
      if (options.forwarded) throw new ProblemError('invalid-state', `neither site is the source of session ${session.name} now`);
      const forwarded = await service.link(session).call('session.verify', { session: session.id }, null, {
        waitForLinkMs: 3000,
        timeoutMs: 60 * 60_000,
      });
      return forwarded.result;
    }
    const repair = this.repairing.get(session.id);
    if (repair && session.state === 'preparing') return repair;
    if (session.state !== 'prepared') {
      throw new ProblemError('invalid-state', `session ${session.name} is ${session.state}; verify needs prepared (duplex)`);
    }
    if (session.type === 'snapshot-shipping') {
      throw new ProblemError('not-supported', `session ${session.name} ships snapshots: its target lags by design; verify after a suspend`);
    }
    const run = this.run(session, options.trigger ?? 'request').finally(() => this.running.delete(session.id));
    this.running.set(session.id, run);
    return run;
  }

  /** Remembers the report while the session stays in the Preparing of its repair resync (any state change ends it). */
  private holdRepair(session: SessionRecord, report: VerifyReport): void {
    const events = this.service.engine.catalog.events;
    const previous = this.repairing.get(session.id);
    this.repairing.set(session.id, report);
    if (previous) return; // its listener is still there and drops this one at the next change
    const listener = (event: AgentEvent) => {
      if (event.type !== 'session.state' || event.subject !== session.name) return;
      events.off('event', listener);
      this.repairing.delete(session.id);
    };
    events.on('event', listener);
  }

  /**
   * The members' parts of a multi-primary control agent's verify (H1->H2, asked
   * or after the way back): every member verifies its own copy sets against the
   * secondary site; its pairs are reported with its site. A member that fails
   * fails the verify.
   */
  private async verifyMembers(session: SessionRecord, trigger: LastVerify['trigger']): Promise<VerifyReport[]> {
    const service = this.service;
    const multi = service.multiPrimary;
    if (!service.role(session).controlsMembers || session.direction !== 'h1-h2') return [];
    const answers = await multi.askMembers(session, 'mp.verify', { trigger }, 60 * 60_000);
    return answers.map(({ agent, result: report }) => ({ ...report, pairs: report.pairs.map((pair) => ({ ...pair, primarySite: multi.siteOf(agent) })) }));
  }

  private async run(session: SessionRecord, trigger: LastVerify['trigger']): Promise<VerifyReport> {
    const service = this.service;
    const startedAt = new Date().toISOString();
    const engine = service.engine;
    const catalog = engine.catalog;
    const pairs = service.pairsOf(session);
    const tracks = pairs.reduce((sum, pair) => sum + engine.getVolume(localVolumeName(engine, pair)).trackCount, 0);
    catalog.recordEvent('session.verify', 'info', session.name, `session ${session.name}: verifying ${tracks} track(s) of ${pairs.length} copy set(s) by segment codes`, {
      pairs: pairs.length,
      tracks,
    });
    try {
      const reports: VerifyPairReport[] = [];
      let marked = 0;
      // A multi-primary control agent (H1->H2) covers every copy set: each member verifies its own, at the same time
      // (`mp.verify`; differences are marked and copied at the member, the copy set's source).
      const members = this.verifyMembers(session, trigger);
      members.catch(() => undefined);
      for (const pair of pairs) {
        const source = service.sourceOf(pair);
        const check = () => {
          if (session.state !== 'prepared' || !source?.mirroring) {
            throw new ProblemError('invalid-state', `session ${session.name} left duplex (${session.state}) during verify`);
          }
        };
        check();
        // The agent holding the copy set's other volume (one per copy set at a multi-primary session's secondary site).
        const { report, differing } = await verifyPair(engine, service.pairLink(session, pair), pair, source!, check);
        if (differing.length > 0) await source!.mark(differing);
        marked += differing.length;
        // The site holding its H1 volume (multi-primary: the control agent's, a member's, also when verified at the secondary site).
        const primarySite = primarySiteFor(service, session, pair);
        reports.push(primarySite ? { ...report, primarySite } : report);
      }
      const memberReports = await members;
      for (const member of memberReports) reports.push(...member.pairs);
      const sum = (key: 'comparedTracks' | 'differingCount' | 'unverifiedCount') => reports.reduce((total, r) => total + r[key], 0);
      const report: VerifyReport = {
        session: session.name,
        startedAt,
        finishedAt: new Date().toISOString(),
        pairs: reports,
        comparedTracks: sum('comparedTracks'),
        differingTracks: sum('differingCount'),
        unverifiedTracks: sum('unverifiedCount'),
        resyncStarted: false,
      };
      report.resyncStarted = (marked > 0 && session.state === 'prepared') || memberReports.some((member) => member.resyncStarted);
      const lastVerify: LastVerify = {
        startedAt,
        finishedAt: report.finishedAt,
        trigger,
        comparedTracks: report.comparedTracks,
        differingTracks: report.differingTracks,
        unverifiedTracks: report.unverifiedTracks,
        ok: report.differingTracks === 0 && report.unverifiedTracks === 0,
        resyncStarted: report.resyncStarted,
        pairs: reports.map((r) => ({
          pair: r.pair,
          h1Volume: r.h1Volume,
          h2Volume: r.h2Volume,
          ...(r.primarySite ? { primarySite: r.primarySite } : {}),
          comparedTracks: r.comparedTracks,
          differingTracks: r.differingCount,
          unverifiedTracks: r.unverifiedCount,
        })),
      };
      if (marked > 0 && session.state === 'prepared') {
        // The marked tracks are copied by the resync machinery, as after a resume.
        service.setState(session, 'preparing', { detail: `verify found ${marked} differing track(s); copying them`, lastVerify });
        this.holdRepair(session, report);
        void service.mirroring.runMirroring(session);
      } else {
        // Recorded here and pushed to the other site with the (unchanged) state.
        service.setState(session, session.state, { lastVerify });
      }
      catalog.recordEvent(
        'session.verified',
        report.differingTracks > 0 ? 'warning' : 'info',
        session.name,
        `session ${session.name}: verified ${report.comparedTracks} track(s)${trigger === 'failback' ? ' after failback' : ''}, ${report.differingTracks} differ` +
          (report.unverifiedTracks ? `, ${report.unverifiedTracks} kept busy by writes` : ''),
        {
          trigger,
          ok: lastVerify.ok,
          comparedTracks: report.comparedTracks,
          differingTracks: report.differingTracks,
          unverifiedTracks: report.unverifiedTracks,
          recheckedTracks: reports.reduce((total, r) => total + r.recheckedTracks, 0),
          tracks: reports.flatMap((r) => r.differingTracks).slice(0, 64),
        },
      );
      return report;
    } catch (error) {
      catalog.recordEvent('session.verify-failed', 'warning', session.name, `session ${session.name}: verify stopped: ${problemMessage(error)}`);
      throw error;
    }
  }
}
