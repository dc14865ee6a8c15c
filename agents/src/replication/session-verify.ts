import { ProblemError, type VerifyPairReport, type VerifyReport } from '@tandem/contract';
import { problemMessage } from './pair-source.ts';
import type { ReplicationService } from './service.ts';
import { verifyPair } from './verify.ts';

/** Online verify of duplex sessions by segment codes. */
export class SessionVerifier {
  private readonly verifying = new Set<string>();

  constructor(private readonly service: ReplicationService) {}

  /**
   * Online verify of a duplex session by segment codes, executed at its
   * source (forwarded there from the target). Real differences are marked
   * out-of-sync and copied by a resync; tracks that differed only because
   * writes were in flight are never reported (see verifyPair).
   */
  async verify(sessionName: string, options: { forwarded?: boolean } = {}): Promise<VerifyReport> {
    const service = this.service;
    const session = service.session(sessionName);
    if (!service.isSource(session)) {
      if (options.forwarded) throw new ProblemError('invalid-state', `neither site is the source of session ${session.name} now`);
      const forwarded = await service.link(session).call('session.verify', { session: session.id }, null, {
        waitForLinkMs: 3000,
        timeoutMs: 60 * 60_000,
      });
      return forwarded.result as VerifyReport;
    }
    if (session.state !== 'prepared') {
      throw new ProblemError('invalid-state', `session ${session.name} is ${session.state}; verify needs prepared (duplex)`);
    }
    if (session.type === 'snapshot-shipping') {
      throw new ProblemError('not-supported', `session ${session.name} ships snapshots: its target lags by design; verify after a suspend`);
    }
    if (this.verifying.has(session.id)) throw new ProblemError('conflict', `session ${session.name} is being verified already`);
    this.verifying.add(session.id);
    const startedAt = new Date().toISOString();
    const engine = service.engine;
    const catalog = engine.catalog;
    const pairs = service.pairsOf(session);
    const tracks = pairs.reduce((sum, pair) => sum + engine.getVolume(pair.localVolume).trackCount, 0);
    catalog.recordEvent('session.verify', 'info', session.name, `session ${session.name}: verifying ${tracks} track(s) of ${pairs.length} copy set(s) by segment codes`, {
      pairs: pairs.length,
      tracks,
    });
    try {
      const link = service.link(session);
      const reports: VerifyPairReport[] = [];
      let marked = 0;
      for (const pair of pairs) {
        const source = service.sourceOf(pair);
        const check = () => {
          if (session.state !== 'prepared' || !source?.mirroring) {
            throw new ProblemError('invalid-state', `session ${session.name} left duplex (${session.state}) during verify`);
          }
        };
        check();
        const { report, differing } = await verifyPair(engine, link, pair, source!, check);
        if (differing.length > 0) await source!.mark(differing);
        marked += differing.length;
        reports.push(report);
      }
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
      if (marked > 0 && session.state === 'prepared') {
        // The marked tracks are copied by the resync machinery, as after a resume.
        service.setState(session, 'preparing', { detail: `verify found ${marked} differing track(s); copying them` });
        void service.mirroring.runMirroring(session);
        report.resyncStarted = true;
      }
      catalog.recordEvent(
        'session.verified',
        report.differingTracks > 0 ? 'warning' : 'info',
        session.name,
        `session ${session.name}: verified ${report.comparedTracks} track(s), ${report.differingTracks} differ` +
          (report.unverifiedTracks ? `, ${report.unverifiedTracks} kept busy by writes` : ''),
        {
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
    } finally {
      this.verifying.delete(session.id);
    }
  }
}
