import type { PairSource } from './pair-source.ts';
import type { ReplicationService } from './service.ts';
import type { PairRecord, SessionRecord } from './session-store.ts';
import type { FlashMirrorChange } from '../flash/service.ts';

/** Which mirror copy sets a flash's volumes belong to, and the `flash.mirror` request shapes. */

/** The `flash.mirror` request shapes: the peer protocol's schemas (contract/src/peer.ts). */
export type { MirrorPairParams, FlashMirrorPerform as PerformParams } from '@tandem/contract';

/** A local volume that is the primary of a mirror pair (this site is its session's source). */
export interface MirroredPrimary {
  session: SessionRecord;
  pair: PairRecord;
  source: PairSource | undefined;
  agent: string;
}

/** The copy set in which this local volume is the primary (this site the source), if any. */
export function primaryOf(service: ReplicationService, volume: string): MirroredPrimary | null {
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
export function secondaryOf(service: ReplicationService, volume: string): { session: SessionRecord; pair: PairRecord } | null {
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
