import type { FlashMirrorHandling, FlashOptions } from '@tandem/contract';

/** A run of tracks [start, start+count). */
export interface TrackRange {
  start: number;
  count: number;
}

/** One pair's part of a flash change the mirror hooks are told about. */
export interface FlashMirrorPairChange {
  /** Pair id (FlashPairInfo.id). */
  id: string;
  source: string;
  target: string;
  remoteTarget: string | null;
  /** The volume whose content changes: the target (establish, refresh) or the source (reverse). */
  changed: string;
  /** The volume whose image `changed` receives. */
  from: string;
  /** Tracks of `changed` whose content may change, or 'all'. */
  tracks: TrackRange[] | 'all';
}

/** A point-in-time change of a flash session, as the mirror hooks see it. */
export interface FlashMirrorChange {
  kind: 'establish' | 'refresh' | 'reverse';
  session: string;
  options: FlashOptions;
  coordinated: boolean;
  pairs: FlashMirrorPairChange[];
  /** Date.now() by which the held host writes must be released; hooks should finish well before. */
  deadline: number;
}

/**
 * What mirroring plugs into flash copy. `beforeTargetChange` runs while the
 * host writes of every source and target of the session are held (queued),
 * after every pair was validated and BEFORE the metadata change that gives
 * the changed volumes their new content is logged, so anything the hook
 * makes durable (out-of-sync marks) is durable no later than the change.
 * It answers per pair (same order) how the mirror handles the change. A
 * throw aborts the change: nothing is changed, the writes are released and
 * the caller sees the hook's problem. `afterTargetChange` runs once the
 * change is durable (writes released). `withdrawn` runs after pairs were
 * withdrawn (relationships gone; the targets keep their images).
 */
export interface FlashMirrorHooks {
  beforeTargetChange(change: FlashMirrorChange): Promise<FlashMirrorHandling[]>;
  afterTargetChange?(change: FlashMirrorChange): Promise<void> | void;
  withdrawn?(session: string, pairs: Array<{ id: string; source: string; target: string }>): Promise<void> | void;
}

/** Hooks of an agent without mirror interplay: every pair is `none`. */
export const noMirrorHooks: FlashMirrorHooks = {
  beforeTargetChange: async (change) => change.pairs.map(() => 'none' as const),
};
