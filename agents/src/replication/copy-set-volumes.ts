import { ProblemError } from '@tandem/contract';
import type { StorageEngine } from '../storage/engine.ts';
import type { HeldCopySet } from './session-store.ts';

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
export function brokenHere(engine: StorageEngine, site: string, pair: HeldCopySet): string | null {
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
