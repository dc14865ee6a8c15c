import { ProblemError, type AgentEvent } from '@tandem/contract';
import type { StorageEngine } from '../storage/engine.ts';
import { problemMessage } from './problem-message.ts';
import type { ReplicationService } from './service.ts';
import type { HeldCopySet, SessionRecord } from './session-store.ts';

/**
 * Copy sets hold their volumes by immutable id.
 *
 * A copy set keeps its volume here by name (what commands and the other site
 * say) and by the engine's volume id, which is never reused. While the
 * volume of that name has that id, the copy set uses it; otherwise the
 * volume was deleted some other way than through the guarded calls (an
 * older agent, the storage engine opened offline, a restored catalog),
 * perhaps created again under the same name, and no longer holds the copy
 * set's data: the copy set is *broken*. A broken copy set
 * - is recorded once (`pair.broken`, an error event, and `pairs.broken_*` in
 *   the catalog, so a restart does not report it again) and told to the
 *   other site, which records it too;
 * - takes no part in anything from then on: no splitter tap (a volume made
 *   again under its name is an ordinary volume), no I/O (`localVolumeName`
 *   refuses with `pair-broken`), and the target refuses its stream requests
 *   and fences of its session with `pair-broken`;
 * - stops its session's mirroring (the session is one consistency group; an
 *   image without one of its volumes is no consistent image): a running
 *   session suspends once with the reason, and neither resumes by itself nor
 *   is started or resumed or failed back by hand until the copy set is
 *   removed (`session remove`), which works in every state that takes copy
 *   sets. A recover still proceeds for the other copy sets;
 * - shows as pair state `failed` with its reason, the session's health as
 *   `severe`; listing sessions never fails because of it.
 */

/** Why a copy set cannot use its volume here, or null when the volume of its name is its own. */
function brokenHere(engine: StorageEngine, site: string, pair: HeldCopySet): string | null {
  const id = engine.volumeIdOrNull(pair.localVolume);
  if (pair.localVolumeId === null) {
    return id === null
      ? `its volume ${pair.localVolume} at ${site} was already gone when the catalog learned volume ids`
      : `its volume ${pair.localVolume} at ${site} was deleted and made again under the copy set before the catalog learned volume ids`;
  }
  if (id === pair.localVolumeId) return null;
  if (id === null) return `its volume ${pair.localVolume} (id ${pair.localVolumeId}) at ${site} was deleted`;
  return `its volume ${pair.localVolume} (id ${pair.localVolumeId}) at ${site} was deleted and another volume was made under that name (id ${id}); that one holds none of the copy set's data`;
}

/** The refusal of anything a broken copy set would do: `pair-broken`, naming the copy set (detail.pair) and the step first. */
export function pairBroken(pair: HeldCopySet, sessionName: string | null, reason: string): ProblemError {
  const session = sessionName ?? 'SESSION';
  return new ProblemError(
    'pair-broken',
    `copy set ${pair.h1Volume} -> ${pair.h2Volume}${sessionName ? ` of session ${sessionName}` : ''} is broken: ${reason}; ` +
      `remove it from the session first (tandem-agent session remove ${session} ${pair.h1Volume}, at the session's H1 site)`,
    { pair: pair.id, h1Volume: pair.h1Volume, h2Volume: pair.h2Volume, ...(sessionName ? { session: sessionName } : {}), reason },
  );
}

/**
 * The name of a copy set's volume here, for I/O: only while it is the copy
 * set's own (same id) and the copy set is not broken; else `pair-broken`.
 */
export function localVolumeName(engine: StorageEngine, pair: HeldCopySet): string {
  if (!pair.broken && pair.localVolumeId !== null && engine.volumeIdOrNull(pair.localVolume) === pair.localVolumeId) return pair.localVolume;
  throw pairBroken(pair, null, pair.broken?.reason ?? brokenHere(engine, engine.identity.site, pair) ?? 'its volume is not usable');
}

/** The engine id of a copy set's volume here (bitmaps are made for it), checked as `localVolumeName` does. */
export function localVolumeId(engine: StorageEngine, pair: HeldCopySet): number {
  return engine.volumeId(localVolumeName(engine, pair));
}

const VOLUME_EVENTS = new Set(['volume.deleted', 'volume.created', 'snapshot.deleted', 'snapshot.created']);

/** Finds broken copy sets, records them once, stops their sessions and tells the other site (see above). */
export class CopySetVolumes {
  private checking = false;

  constructor(private readonly service: ReplicationService) {
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
