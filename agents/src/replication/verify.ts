import { VERIFY_LISTED_TRACKS, type VerifyPairReport } from '@tandem/contract';
import type { StorageEngine } from '../storage/engine.ts';
import { localCodes } from './failback.ts';
import type { PeerLinkClient } from './link/peer-link.ts';
import type { PairSource } from './pair-source.ts';
import type { HeldCopySet } from './session-store.ts';
import { localVolumeName } from './copy-set-volumes.ts';

/** Tracks compared per round trip (small: computing codes holds writes to the batch's tracks back briefly). */
const VERIFY_BATCH = 128;
/** Re-checks of a track that writes keep touching before it is reported unverified. */
const MAX_RECHECKS = 20;
/** How long a re-check waits for the track's writes in flight to settle. */
const SETTLE_MS = 2000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Online verify of one duplex pair, at its source: compares the segment
 * codes of every track at both sites while host writes go on, without
 * reporting a track that only differed because a write was in flight.
 *
 * A batch is compared under a watch of the source: a differing track counts
 * as a real difference only if no host change of it was unsettled when the
 * compare began (local write and mirror both done), none began until both
 * codes were computed (the watch saw nothing), no resync copy touched it, it
 * carries no real out-of-sync mark already, and the target had applied
 * every write it had acknowledged on arrival (semi-sync; it waits for them
 * and reports the ones still pending as busy). Every other differing track
 * is compared again once its writes settled, up to MAX_RECHECKS times; one
 * that writes keep busy throughout is reported unverified, never differing.
 *
 * `check` throws when the verify must stop (the session left duplex).
 */
export async function verifyPair(
  engine: StorageEngine,
  link: PeerLinkClient,
  pair: HeldCopySet,
  source: PairSource,
  check: () => void,
): Promise<{ report: VerifyPairReport; differing: number[] }> {
  const trackCount = engine.getVolume(localVolumeName(engine, pair)).trackCount;
  const differing: number[] = [];
  const unverified: number[] = [];
  let compared = 0;
  let rechecked = 0;
  let codesComputed = 0;

  /** Compares one list of tracks; returns the differing ones that may differ only because of writes. */
  const compare = async (tracks: number[]): Promise<number[]> => {
    const watch = source.watch();
    try {
      const busyAtStart = new Set(tracks.filter((track) => source.isBusy(track) || source.isMarked(track)));
      const [mine, theirs] = await Promise.all([
        localCodes(engine, localVolumeName(engine, pair), tracks),
        link.call('pair.codes', { pair: pair.id, tracks, settle: true }, null, { waitForLinkMs: 2000, timeoutMs: 60_000 }),
      ]);
      check();
      const payload = theirs.payload!;
      const remote = new BigUint64Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.length));
      const answer = (theirs.result ?? {}) as { computed?: number; busy?: number[] };
      const busyThere = new Set(answer.busy ?? []);
      codesComputed += mine.computed + Number(answer.computed ?? 0);
      const suspects: number[] = [];
      for (let i = 0; i < tracks.length; i++) {
        const track = tracks[i];
        if (mine.codes[i] === remote[i]) {
          compared++;
          continue;
        }
        if (watch.has(track) || busyAtStart.has(track) || busyThere.has(track) || source.isMarked(track)) {
          suspects.push(track);
        } else {
          differing.push(track);
          compared++;
        }
      }
      return suspects;
    } finally {
      source.unwatch(watch);
    }
  };

  for (let start = 0; start < trackCount; start += VERIFY_BATCH) {
    check();
    const batch = Array.from({ length: Math.min(VERIFY_BATCH, trackCount - start) }, (_, i) => start + i);
    let suspects = await compare(batch);
    for (let round = 1; suspects.length > 0 && round <= MAX_RECHECKS; round++) {
      rechecked += suspects.length;
      // Let the writes in flight settle (bounded: a track written without pause stays busy).
      const deadline = Date.now() + SETTLE_MS;
      await sleep(Math.min(2 * round, 20));
      while (suspects.some((track) => source.isBusy(track)) && Date.now() < deadline) await sleep(2);
      check();
      suspects = await compare(suspects);
    }
    unverified.push(...suspects);
  }
  differing.sort((a, b) => a - b);
  unverified.sort((a, b) => a - b);
  return {
    differing,
    report: {
      pair: pair.id,
      h1Volume: pair.h1Volume,
      h2Volume: pair.h2Volume,
      trackCount,
      comparedTracks: compared,
      differingCount: differing.length,
      differingTracks: differing.slice(0, VERIFY_LISTED_TRACKS),
      recheckedTracks: rechecked,
      unverifiedCount: unverified.length,
      unverifiedTracks: unverified.slice(0, VERIFY_LISTED_TRACKS),
      codesComputed,
    },
  };
}
