import { ProblemError } from '@tandem/contract';
import type { BlockDevice } from '../storage/block-device.ts';
import { problemMessage } from './pair-source.ts';
import type { ReplicationHooks } from './hooks.ts';
import type { HeldCopySet, SessionRecord } from './session-store.ts';

/** What arrival-writes uses of the service and the other parts (hooks.ts). */
export type ArrivalWritesHooks = Pick<
  ReplicationHooks,
  'engine' | 'faults' | 'link'
>;

/** How long `pair.codes` with `settle` waits for acknowledged semi-sync writes of its tracks to be applied. */
const SETTLE_WAIT_MS = 5000;
/**
 * Semi-sync backpressure: while this many bytes acknowledged on arrival are
 * not written here yet, a further write is acknowledged only once its own
 * write was attempted (the source then waits like a sync one), so a source
 * faster than this disk cannot pile up unbounded unapplied data.
 */
const ARRIVAL_BACKLOG_BYTES = 32 * 1024 * 1024;

/**
 * The target side of semi-sync mirroring: writes acknowledged on arrival,
 * before they are written here. Their local writes start in arrival order
 * once the acknowledgement is on its way; a flush, a verify's codes and a
 * stream fence wait until they were attempted; one that fails is repaired
 * from the source (its tracks marked and copied there), never reported to
 * the host. A backlog bound turns a source faster than this disk into a
 * synchronous one.
 */
export class ArrivalWrites {
  /** Tracks whose arrival was acknowledged but whose write failed, being repaired. */
  readonly repairing = new Set<string>();
  repaired = 0;
  /** Semi-sync writes acknowledged on arrival and not applied yet, per `pair:track`. */
  private readonly arriving = new Map<string, number>();
  /** Per pair: the write attempts of semi-sync writes acknowledged on arrival that have not ended. */
  private readonly attempts = new Map<string, Set<Promise<void>>>();
  /**
   * Semi-sync writes acknowledged on arrival whose local write has not
   * started yet, in arrival order. They start once their acknowledgement is
   * on its way (setImmediate), or before the next peer request is served, so
   * they start in arrival order relative to every later request.
   */
  private readonly unstarted: Array<() => void> = [];
  /** Bytes acknowledged on arrival whose write has not been attempted yet. */
  private unapplied = 0;

  constructor(private readonly service: ArrivalWritesHooks) {}

  /**
   * Acknowledges a write of `data` at `offset` of the copy set's volume on
   * arrival: it resolves at once (or, past the backlog bound, once the write
   * was attempted), and the write starts after the acknowledgement is sent.
   */
  async accept(session: SessionRecord, pair: HeldCopySet, device: BlockDevice, offset: number, data: Buffer, fua: boolean): Promise<void> {
    // Semi-sync: acknowledge arrival now; a failed write is repaired here, never reported to the host.
    // (The payload is a view of a socket chunk the link never reuses, so it may outlive the call; it may share that chunk with neighbouring frames.)
    const first = Math.floor(offset / device.trackSize);
    const end = Math.floor((offset + Math.max(data.length, 1) - 1) / device.trackSize) + 1;
    const keys: string[] = [];
    for (let track = first; track < end; track++) keys.push(`${pair.id}:${track}`);
    for (const key of keys) this.arriving.set(key, (this.arriving.get(key) ?? 0) + 1);
    const backlogged = this.unapplied > ARRIVAL_BACKLOG_BYTES;
    this.unapplied += data.length;
    // Settles once the write was attempted: written, or failed with its tracks listed as repairing (a flush then reports them).
    let attemptEnded!: () => void;
    const attempt = new Promise<void>((resolve) => (attemptEnded = resolve));
    let attempts = this.attempts.get(pair.id);
    if (!attempts) {
      attempts = new Set();
      this.attempts.set(pair.id, attempts);
    }
    const pending = attempts;
    pending.add(attempt);
    void attempt.then(() => {
      pending.delete(attempt);
      if (pending.size === 0 && this.attempts.get(pair.id) === pending) this.attempts.delete(pair.id);
    });
    // The local write starts after the acknowledgement is sent: it is no longer on the host's path.
    this.deferStart(async () => {
      try {
        try {
          if (this.service.faults.failArrivalWrites > 0) {
            this.service.faults.failArrivalWrites--;
            throw new ProblemError('internal-error', 'injected target write failure');
          }
          await device.write(offset, data, { fua });
        } finally {
          this.unapplied -= data.length;
        }
      } catch (error) {
        const repair = this.repair(session, pair, first, end, problemMessage(error));
        attemptEnded();
        await repair;
      } finally {
        attemptEnded();
        for (const key of keys) {
          const left = this.arriving.get(key)! - 1;
          if (left === 0) this.arriving.delete(key);
          else this.arriving.set(key, left);
        }
      }
    });
    if (backlogged) {
      // Too much unapplied already: this one is acknowledged once written (a failure still goes to repair, not to the host).
      this.startArrived();
      await attempt;
    }
  }

  /** The tracks of a copy set whose write acknowledged on arrival failed and is being repaired (not durable here). */
  repairingTracks(pair: string): number[] {
    const prefix = `${pair}:`;
    return [...this.repairing].filter((key) => key.startsWith(prefix)).map((key) => Number(key.slice(prefix.length)));
  }

  /** Waits until every write of the pair acknowledged on arrival so far was attempted (written, or failed and handed to repair). */
  async attempted(pair: string): Promise<void> {
    const pending = this.attempts.get(pair);
    if (!pending || pending.size === 0) return;
    this.startArrived();
    await Promise.all([...pending]);
  }

  private deferStart(start: () => Promise<void>): void {
    this.unstarted.push(() => void start());
    if (this.unstarted.length === 1) setImmediate(() => this.startArrived());
  }

  /** Starts the local writes of semi-sync writes acknowledged on arrival, in arrival order. */
  startArrived(): void {
    if (this.unstarted.length === 0) return;
    for (const start of this.unstarted.splice(0)) start();
  }

  /** Waits (bounded) until no semi-sync write acknowledged on arrival, nor its repair, is pending for these copy sets. */
  async settlePairs(pairs: string[]): Promise<void> {
    const prefixes = pairs.map((pair) => `${pair}:`);
    const pending = () => [...this.arriving.keys(), ...this.repairing].some((key) => prefixes.some((prefix) => key.startsWith(prefix)));
    const deadline = Date.now() + SETTLE_WAIT_MS;
    while (pending()) {
      if (Date.now() > deadline) throw new ProblemError('timeout', 'writes acknowledged on arrival are still being applied here');
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }

  /** Waits (bounded) until no acknowledged write or repair of these tracks is pending; returns those still pending. */
  async settle(pair: string, tracks: number[]): Promise<number[]> {
    const pending = () => tracks.filter((track) => this.arriving.has(`${pair}:${track}`) || this.repairing.has(`${pair}:${track}`));
    const deadline = Date.now() + SETTLE_WAIT_MS;
    let left = pending();
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      left = pending();
    }
    return left;
  }

  /**
   * A write acknowledged on arrival failed here: the source marks its tracks
   * out-of-sync and copies them with its resync (which copies again if a
   * host write races the copy, so no newer write is overwritten by an older
   * copy). The host never sees the error.
   */
  private async repair(session: SessionRecord, pair: HeldCopySet, first: number, end: number, why: string): Promise<void> {
    const service = this.service;
    const catalog = service.engine.catalog;
    const tracks = Array.from({ length: end - first }, (_, i) => first + i);
    const keys = tracks.map((track) => `${pair.id}:${track}`);
    for (const key of keys) this.repairing.add(key);
    catalog.recordEvent('pair.repair', 'warning', session.name, `write to ${pair.localVolume} failed (${why}); repairing ${tracks.length} track(s) from the source`, {
      pair: pair.id,
      tracks,
    });
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const answer = await service.link(session).call('pair.repair', { pair: pair.id, tracks }, null, { waitForLinkMs: 5000, timeoutMs: 120_000 });
          const repaired = answer.result.repaired === true;
          this.repaired++;
          catalog.recordEvent(
            'pair.repaired',
            'info',
            session.name,
            repaired
              ? `repaired ${tracks.length} track(s) of ${pair.localVolume}`
              : `${tracks.length} track(s) of ${pair.localVolume} are marked out-of-sync at the source; its resync copies them`,
            { pair: pair.id, tracks, copied: repaired },
          );
          return;
        } catch (error) {
          if (attempt >= 40) {
            catalog.recordEvent('pair.repair', 'error', session.name, `tracks ${first}..${end - 1} of ${pair.localVolume} could not be repaired: ${problemMessage(error)}`, {
              pair: pair.id,
              tracks,
            });
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
    } finally {
      for (const key of keys) this.repairing.delete(key);
    }
  }
}
