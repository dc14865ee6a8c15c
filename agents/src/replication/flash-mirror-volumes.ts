import type { StorageEngine } from '../storage/engine.ts';
import type { PairSource } from './pair-source.ts';
import type { SessionRole } from './role.ts';
import type { HeldCopySet, SessionRecord } from './session-store.ts';

/** Which mirror copy sets a flash's volumes belong to, and the `flash.mirror` request shapes. */

/** The `flash.mirror` request shapes: the peer protocol's schemas (contract/src/peer.ts). */
export type { MirrorPairParams, FlashMirrorPerform as PerformParams } from '@tandem/contract';

/**
 * What finding a volume's copy set reads (the replication service provides
 * it): the copy sets, their sessions, this agent's role in them and the
 * mirroring sources.
 */
export interface CopySetLookup {
  readonly engine: Pick<StorageEngine, 'volumeIdOrNull'>;
  readonly pairs: ReadonlyMap<string, HeldCopySet>;
  session(nameOrId: string): SessionRecord;
  role(session: SessionRecord): SessionRole;
  sourceOf(pair: HeldCopySet): PairSource | undefined;
}

/** A local volume that is the primary volume of a copy set (this site is its session's source). */
export interface MirroredPrimary {
  session: SessionRecord;
  pair: HeldCopySet;
  source: PairSource | undefined;
  agent: string;
}

/** The copy set in which this local volume is the primary (this site the source), if any. */
export function primaryOf(service: CopySetLookup, volume: string): MirroredPrimary | null {
  const id = service.engine.volumeIdOrNull(volume);
  for (const pair of service.pairs.values()) {
    // By id: a volume made again under a broken copy set's name is not its volume.
    if (pair.localVolume !== volume || pair.localVolumeId !== id || pair.broken) continue;
    const session = service.session(pair.sessionId);
    if (session.state === 'defined' || !service.role(session).source) continue;
    return { session, pair, source: service.sourceOf(pair), agent: service.role(session).otherAgent };
  }
  return null;
}

/** The copy set in which this local volume is the secondary (this site the target), if any. */
export function secondaryOf(service: CopySetLookup, volume: string): { session: SessionRecord; pair: HeldCopySet } | null {
  const id = service.engine.volumeIdOrNull(volume);
  for (const pair of service.pairs.values()) {
    if (pair.localVolume !== volume || pair.localVolumeId !== id || pair.broken) continue;
    const session = service.session(pair.sessionId);
    if (session.state === 'defined' || service.role(session).source) continue;
    return { session, pair };
  }
  return null;
}

/** Duplex: mirroring, nothing left to resync, not snapshot shipping (whose target lags by cycles). */
export function isDuplex(primary: MirroredPrimary): boolean {
  return (
    primary.session.state === 'prepared' &&
    primary.session.type !== 'snapshot-shipping' &&
    primary.source !== undefined &&
    primary.source.mirroring &&
    !primary.source.isResyncing
  );
}
