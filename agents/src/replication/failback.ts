import type { FailbackPreflight } from '@tandem/contract';
import type { StorageEngine } from '../storage/engine.ts';
import type { PeerLinkClient } from './link/peer-link.ts';
import type { HeldCopySet } from './session-store.ts';
import { localVolumeName } from './copy-set-volumes.ts';

/** Codes are asked for and compared this many tracks at a time. */
const CODE_BATCH = 4096;

export interface PairPlan {
  pair: HeldCopySet;
  targetChangedTracks: number;
  outOfSyncTracks: number;
  candidates: number[];
  /** Tracks to copy (candidates, filtered by differing codes when verifying). */
  tracks: number[];
  differingTracks: number | null;
  codesComputed: number;
}

/** Set bits of a bitmap's bytes. */
export function bitsToTracks(bits: Uint8Array, limit: number): number[] {
  const tracks: number[] = [];
  for (let index = 0; index < bits.length; index++) {
    const byte = bits[index];
    if (byte === 0) continue;
    for (let bit = 0; bit < 8; bit++) {
      const track = index * 8 + bit;
      if (byte & (1 << bit) && track < limit) tracks.push(track);
    }
  }
  return tracks;
}

/** A bitmap's set tracks below `trackCount` as bits of bytes (track t: bit t%8 of byte t/8), or'ed into `into`. */
export function bitmapBytes(engine: StorageEngine, id: number | null, trackCount: number, into = new Uint8Array(Math.ceil(trackCount / 8))): Uint8Array<ArrayBuffer> {
  if (id === null) return into;
  const view = engine.bitmaps.view(id);
  for (let track = view.nextSet(0); track >= 0 && track < trackCount; track = view.nextSet(track + 1)) into[track >>> 3] |= 1 << (track & 7);
  return into;
}

/**
 * Plans the copy of one pair from this site (production since failover) to
 * the peer: the union of this site's target-changed bitmap and the peer's
 * out-of-sync bitmap, and with code verification only the tracks whose
 * segment codes differ between the sites (valid codes cost nothing; only
 * invalid ones are recomputed, at both sites). `fullCompare` compares every
 * track's code instead of the union.
 */
export async function planPair(
  engine: StorageEngine,
  link: PeerLinkClient,
  pair: HeldCopySet,
  options: { verifyCodes: boolean; fullCompare: boolean },
): Promise<PairPlan> {
  const volume = localVolumeName(engine, pair);
  const trackCount = engine.getVolume(volume).trackCount;
  const local = bitmapBytes(engine, pair.targetChangedBitmap, trackCount);
  const targetChangedTracks = bitsToTracks(local, trackCount).length;
  // Tracks already marked to send from here (a failback handed over to only some agents before it failed) stay candidates.
  bitmapBytes(engine, pair.outOfSyncBitmap, trackCount, local);
  const remote = await link.call('pair.bitmap', { pair: pair.id, which: 'out-of-sync' });
  const remoteBits = remote.payload ? new Uint8Array(remote.payload) : new Uint8Array(0);
  const outOfSyncTracks = bitsToTracks(remoteBits, trackCount).length;
  for (let index = 0; index < Math.min(local.length, remoteBits.length); index++) local[index] |= remoteBits[index];
  const candidates = bitsToTracks(local, trackCount);

  if (!options.verifyCodes && !options.fullCompare) {
    return { pair, targetChangedTracks, outOfSyncTracks, candidates, tracks: candidates, differingTracks: null, codesComputed: 0 };
  }
  const compare = options.fullCompare ? Array.from({ length: trackCount }, (_, t) => t) : candidates;
  const differing: number[] = [];
  let codesComputed = 0;
  for (let start = 0; start < compare.length; start += CODE_BATCH) {
    const batch = compare.slice(start, start + CODE_BATCH);
    const [mine, theirs] = await Promise.all([
      localCodes(engine, volume, batch),
      link.call('pair.codes', { pair: pair.id, tracks: batch }),
    ]);
    const remoteCodes = new BigUint64Array(
      theirs.payload!.buffer.slice(theirs.payload!.byteOffset, theirs.payload!.byteOffset + theirs.payload!.length),
    );
    codesComputed += mine.computed + Number(theirs.result?.computed ?? 0);
    for (let i = 0; i < batch.length; i++) if (mine.codes[i] !== remoteCodes[i]) differing.push(batch[i]);
  }
  return {
    pair,
    targetChangedTracks,
    outOfSyncTracks,
    candidates,
    tracks: differing,
    differingTracks: differing.length,
    codesComputed,
  };
}

/** Codes of a list of tracks of a local volume, in order. */
export async function localCodes(
  engine: StorageEngine,
  volume: string,
  tracks: number[],
): Promise<{ codes: BigUint64Array; computed: number }> {
  const out = new BigUint64Array(tracks.length);
  let computed = 0;
  // Consecutive tracks are asked for as one range.
  for (let i = 0; i < tracks.length; ) {
    let j = i + 1;
    while (j < tracks.length && tracks[j] === tracks[j - 1] + 1) j++;
    const range = await engine.segmentCodes(volume, tracks[i], j - i);
    out.set(range.codes, i);
    computed += range.computed;
    i = j;
  }
  return { codes: out, computed };
}

/** A plan's counts (what a multi-primary member reports of its copy sets; no track lists). */
export type PlanSummary = FailbackPreflight['pairs'][number] & { tracksToCopy: number };

/** The counts of a plan; `primarySite` names the agent holding the copy set's H1 volume (multi-primary sessions). */
export function planSummary(plan: PairPlan, primarySite?: string): PlanSummary {
  return {
    pair: plan.pair.id,
    h1Volume: plan.pair.h1Volume,
    ...(primarySite ? { primarySite } : {}),
    targetChangedTracks: plan.targetChangedTracks,
    outOfSyncTracks: plan.outOfSyncTracks,
    candidateTracks: plan.candidates.length,
    differingTracks: plan.differingTracks,
    codesComputed: plan.codesComputed,
    tracksToCopy: plan.tracks.length,
  };
}

/** Seconds to move `bytes`: a conservative 200 MiB/s across the link until measured figures exist. */
function estimateSeconds(bytes: number): number {
  return Math.round((bytes / (200 * 1024 * 1024)) * 10) / 10;
}

/** The preflight of a failback from its plans' counts (`planSummary`). */
export function summarizePlans(
  session: string,
  summaries: PlanSummary[],
  trackSize: number,
  options: { verifyCodes: boolean; fullCompare: boolean },
): FailbackPreflight {
  const tracksToCopy = summaries.reduce((sum, plan) => sum + plan.tracksToCopy, 0);
  const bytesToCopy = tracksToCopy * trackSize;
  return {
    session,
    pairs: summaries.map(({ tracksToCopy: tracks, ...pair }) => ({
      ...pair,
      tracksToCopy: tracks,
      bytesToCopy: tracks * trackSize,
      estimatedSeconds: estimateSeconds(tracks * trackSize),
    })),
    tracksToCopy,
    bytesToCopy,
    estimatedSeconds: estimateSeconds(bytesToCopy),
    verifyCodes: options.verifyCodes,
    fullCompare: options.fullCompare,
  };
}
