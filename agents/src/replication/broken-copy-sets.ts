import { ProblemError, type AgentEvent } from '@tandem/contract';
import { brokenHere, pairBroken } from './copy-set-volumes.ts';
import type { ReplicationHooks } from './hooks.ts';
import { problemMessage } from './problem-message.ts';
import type { HeldCopySet, SessionRecord } from './session-store.ts';

/** What broken-copy-sets uses of the service and the other parts (hooks.ts). */
export type CopySetVolumesHooks = Pick<
  ReplicationHooks,
  'engine' | 'logger' | 'mirroring' | 'pairLink' | 'pairs' | 'pairsOf' | 'refreshTaps' | 'role' | 'sessions' | 'setState' | 'site' | 'store'
>;

const VOLUME_EVENTS = new Set(['volume.deleted', 'volume.created', 'snapshot.deleted', 'snapshot.created']);

/** Finds broken copy sets, records them once, stops their sessions and tells the other site (what a broken copy set is and does: copy-set-volumes.ts). */
export class CopySetVolumes {
  private checking = false;

  constructor(private readonly service: CopySetVolumesHooks) {
    // Volumes come and go: a copy set's may be among them (deleted without its guard: an offline engine, say).
    service.engine.catalog.events.on('event', (event: AgentEvent) => {
      if (!VOLUME_EVENTS.has(event.type) || this.checking) return;
      this.checking = true;
      queueMicrotask(() => {
        this.checking = false;
        this.check();
      });
    });
  }

  isBroken(pair: HeldCopySet): boolean {
    return this.reasonOf(pair) !== null;
  }

  /** The session's copy sets here that are broken. */
  brokenOf(session: SessionRecord): HeldCopySet[] {
    return this.service.pairsOf(session).filter((pair) => this.isBroken(pair));
  }

  /** Why the copy set is broken (null: it is not). */
  reasonOf(pair: HeldCopySet): string | null {
    return pair.broken?.reason ?? brokenHere(this.service.engine, this.service.site, pair);
  }

  /** The `pair-broken` refusal naming the session's first broken copy set here, or null when none is. */
  refusal(session: SessionRecord): ProblemError | null {
    for (const pair of this.service.pairsOf(session)) {
      const reason = this.reasonOf(pair);
      if (reason) return pairBroken(pair, session.name, reason);
    }
    return null;
  }

  /** Refuses an action that would use every copy set of the session (start, resume, failback) while one is broken. */
  refuseIfBroken(session: SessionRecord): void {
    const refusal = this.refusal(session);
    if (refusal) throw refusal;
  }

  /** Checks every copy set's volume here (at start and whenever volumes come and go); records the newly broken ones. */
  check(): void {
    for (const pair of [...this.service.pairs.values()]) {
      if (pair.broken) continue;
      const reason = brokenHere(this.service.engine, this.service.site, pair);
      if (reason) this.markBroken(pair, reason);
    }
  }

  /**
   * The other site found the copy set broken (its `pair.broken`, or a
   * refusal with `pair-broken` naming it): recorded here too.
   */
  learn(error: unknown): boolean {
    if (!(error instanceof ProblemError) || error.problem !== 'pair-broken') return false;
    const id = error.detail?.pair;
    const pair = typeof id === 'string' ? this.service.pairs.get(id) : undefined;
    if (!pair) return false;
    const reason = typeof error.detail?.reason === 'string' ? error.detail.reason : error.message;
    this.markBroken(pair, reason, { suspend: false });
    return true;
  }

  /**
   * Records a copy set as broken (once): catalog, event, taps, the other
   * site; stops its session mirroring unless the caller does (`suspend: false`).
   */
  markBroken(pair: HeldCopySet, reason: string, options: { suspend?: boolean; tell?: boolean } = {}): void {
    const service = this.service;
    if (pair.broken || !service.pairs.has(pair.id)) return;
    pair.broken = { reason, since: new Date().toISOString() };
    service.store.saveCopySet(pair);
    service.refreshTaps();
    const session = service.sessions.get(pair.sessionId);
    const name = session?.name ?? pair.sessionId;
    service.engine.catalog.recordEvent(
      'pair.broken',
      'error',
      name,
      `copy set ${pair.h1Volume} -> ${pair.h2Volume} of session ${name} is broken: ${reason}; ` +
        `it mirrors nothing any more: remove it from the session (tandem-agent session remove ${name} ${pair.h1Volume}, at the session's H1 site)`,
      { pair: pair.id, h1Volume: pair.h1Volume, h2Volume: pair.h2Volume, reason, sessionState: session?.state ?? null },
    );
    if (!session) return;
    if (options.tell !== false) {
      void service
        .pairLink(session, pair)
        .call('pair.broken', { pair: pair.id, reason }, null, { waitForLinkMs: 2000, timeoutMs: 10_000 })
        .catch((error) => service.logger.debug({ pair: pair.id, error: problemMessage(error) }, 'could not tell the other site of a broken copy set'));
    }
    if (!service.role(session).source) return;
    const refusal = pairBroken(pair, session.name, reason);
    // Suspended already (a link failure, say): it stays suspended for this reason now, and says so.
    if (session.state === 'suspended') service.setState(session, 'suspended', { detail: refusal.message });
    if (options.suspend !== false && (session.state === 'preparing' || session.state === 'prepared')) {
      void service.mirroring
        .suspendSession(session, refusal.message, refusal)
        .catch((error) => service.logger.warn({ session: session.name, error: problemMessage(error) }, 'suspending for a broken copy set failed'));
    }
  }
}
