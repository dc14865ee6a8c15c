import { ProblemError, type VolumeDependent } from '@tandem/contract';
import type { ReplicationHooks } from './hooks.ts';
import type { SessionRecord } from './session-store.ts';
import { DEFAULT_SHIP_INTERVAL_MS, SnapshotShipper, type CycleReport } from './shipping-source.ts';

/** What shipping-sessions uses of the service and the other parts (hooks.ts). */
export type ShippingSessionsHooks = Pick<
  ReplicationHooks,
  'engine' | 'link' | 'mirroring' | 'pairsOf' | 'refreshTaps' | 'role' | 'session' | 'sessions' | 'setState' | 'store'
>;

/**
 * Snapshot-shipping sessions at their source: host writes only mark tracks;
 * a cycle runner per session snapshots and ships the marked tracks, and each
 * committed cycle's snapshot instant becomes the session's consistency time.
 */
export class ShippingSessions {
  /** Snapshot-shipping sessions this site is the source of: their cycle runners. */
  private readonly shipping = new Map<string, SnapshotShipper>();

  constructor(private readonly service: ShippingSessionsHooks) {
    // The snapshots a shipper keeps (the last shipped cycle's image here) or ships from now are not deleted under it.
    service.engine.addVolumeGuard((name) => this.dependents(name));
  }

  /** The shipping sessions holding snapshot `name` (none for any other volume). */
  private dependents(name: string): VolumeDependent[] {
    const found: VolumeDependent[] = [];
    for (const [sessionId, shipper] of this.shipping) {
      if (!shipper.holds(name)) continue;
      const session = this.service.sessions.get(sessionId);
      const sessionName = session?.name ?? sessionId;
      found.push({
        kind: 'shipping-snapshot',
        session: sessionName,
        sessionState: session?.state ?? 'unknown',
        step: `let session ${sessionName} let go of it (its next shipped cycle replaces and deletes it; terminating the session deletes it now)`,
        action: `tandem-agent session ship-now ${sessionName}, or tandem-agent session terminate ${sessionName}`,
      });
    }
    return found;
  }

  /** A shipping cycle with this snapshot instant is complete at the target: the session's consistency time. */
  recordShippedTime(session: SessionRecord, time: number): void {
    session.consistencyTime = new Date(time).toISOString();
    this.service.store.saveSession(session);
  }

  /** Snapshot shipping, as mirroring run `run`: host writes only mark tracks; cycles ship the marked tracks from snapshots. */
  run(session: SessionRecord, run: string): void {
    const service = this.service;
    const mirroring = service.mirroring;
    const sources = service.pairsOf(session).map((pair) => mirroring.ensureSource(session, pair));
    for (const source of sources) source.startMirroring('snapshot-shipping', run);
    service.refreshTaps();
    let shipper = this.shipping.get(session.id);
    if (!shipper) {
      const interval = this.intervalOf(session);
      shipper = new SnapshotShipper(
        session.id,
        service.engine,
        service.link(session),
        () => service.pairsOf(session).map((pair) => mirroring.ensureSource(session, pair)),
        {
          onCycle: (report) => this.cycleShipped(session, report),
          onFailure: (error) => void mirroring.suspendForError(session, sources[0], error),
        },
        interval,
      );
      this.shipping.set(session.id, shipper);
    }
    const marked = sources.reduce((sum, source) => sum + source.outOfSyncTracks, 0);
    service.engine.catalog.recordEvent(
      'session.resync',
      'info',
      session.name,
      `session ${session.name}: shipping ${marked} marked track(s) every ${shipper.intervalMs / 1000} s`,
      { markedTracks: marked },
    );
    shipper.start(run);
  }

  private cycleShipped(session: SessionRecord, report: CycleReport): void {
    this.recordShippedTime(session, report.time);
    if (session.state === 'preparing') {
      this.service.engine.catalog.recordEvent('session.synced', 'info', session.name, `session ${session.name}: first cycle shipped ${report.tracks} track(s)`, {
        copiedTracks: report.tracks,
        bytesSent: report.bytesSent,
      });
      this.service.setState(session, 'prepared', { detail: null });
    }
  }

  /** Runs a snapshot-shipping cycle now (at the source; forwarded there from the target). Resolves when the target committed it. */
  async shipNow(sessionName: string): Promise<CycleReport> {
    const service = this.service;
    const session = service.session(sessionName);
    if (session.type !== 'snapshot-shipping') throw new ProblemError('invalid-state', `session ${session.name} is ${session.type}, not snapshot-shipping`);
    if (!service.role(session).source) {
      const forwarded = await service.link(session).call('session.ship-now', { session: session.id }, null, { waitForLinkMs: 3000, timeoutMs: 60 * 60_000 });
      return forwarded.result;
    }
    const shipper = this.shipping.get(session.id);
    if (!shipper?.active) throw new ProblemError('invalid-state', `session ${session.name} is ${session.state}; nothing is shipping`);
    const report = await shipper.shipNow();
    if (!report) throw new ProblemError('invalid-state', `session ${session.name} stopped shipping`);
    return report;
  }

  /** The time between cycles in effect, ms: the session's setting, else TANDEM_SHIP_INTERVAL_MS, else 30 s. */
  intervalOf(session: SessionRecord): number {
    return session.shipIntervalMs ?? (Number(process.env.TANDEM_SHIP_INTERVAL_MS) || DEFAULT_SHIP_INTERVAL_MS);
  }

  /**
   * Changes the time between cycles of a snapshot-shipping session, at both
   * sites (the other site first: if it cannot be told, nothing changes).
   * A running source counts the new interval from now.
   */
  async setInterval(sessionName: string, intervalMs: number): Promise<SessionRecord> {
    const service = this.service;
    const session = service.session(sessionName);
    if (session.type !== 'snapshot-shipping') {
      throw new ProblemError('bad-request', `session ${session.name} is ${session.type}; only snapshot-shipping sessions have a shipping interval`);
    }
    await service.link(session).call('session.settings', { session: session.id, shipIntervalMs: intervalMs }, null, { waitForLinkMs: 3000 });
    this.applyInterval(session, intervalMs);
    return session;
  }

  /** Records a session's shipping interval here and gives it to the running shipper (the `session.settings` peer request too). */
  applyInterval(session: SessionRecord, intervalMs: number): void {
    if (session.type !== 'snapshot-shipping') throw new ProblemError('bad-request', `session ${session.name} is not snapshot-shipping`);
    const previous = this.intervalOf(session);
    session.shipIntervalMs = intervalMs;
    session.updatedAt = new Date().toISOString();
    this.service.store.saveSession(session);
    this.shipping.get(session.id)?.setIntervalMs(intervalMs);
    this.service.engine.catalog.recordEvent(
      'session.settings',
      'info',
      session.name,
      `session ${session.name}: shipping interval ${previous / 1000} s -> ${intervalMs / 1000} s`,
      { shipIntervalMs: intervalMs, previousMs: previous },
    );
  }

  /** The cycle runner of a session this site is the source of, if any. */
  shipperOf(session: SessionRecord): SnapshotShipper | null {
    return this.shipping.get(session.id) ?? null;
  }

  /** Stops the session's cycles (the marks stay). */
  async stop(session: SessionRecord): Promise<void> {
    await this.shipping.get(session.id)?.stop();
  }

  /** Forgets the session's cycle runner (this site is no longer its source). */
  drop(session: SessionRecord): void {
    const shipper = this.shipping.get(session.id);
    if (shipper) void shipper.dispose().catch(() => {});
    this.shipping.delete(session.id);
  }

  /** Stops every session's cycles and waits for a cycle in progress to end. */
  async close(): Promise<void> {
    await Promise.all([...this.shipping.values()].map((shipper) => shipper.stop()));
  }
}
