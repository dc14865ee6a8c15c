import type { PairSource } from './pair-source.ts';
import type { ReplicationService } from './service.ts';
import type { PairRecord, SessionRecord } from './session-store.ts';
import type { FlashMirrorChange } from '../flash/service.ts';
import type { FlashOptions } from '@tandem/contract';

/** Which mirror copy sets a flash's volumes belong to, and the `flash.mirror` request shapes. */

/** One `flash.mirror` pair: volumes named by the copy sets both sites know (pair ids are the same at both). */
export interface MirrorPairParams {
  /** Copy set whose secondary volume is the flash source there. */
  sourcePair: string;
  /** Preserve: copy set whose secondary volume is the flash target there. */
  targetPair?: string;
  /** Coordinated: the secondary site's own volume that receives the point in time. */
  remoteTarget?: string;
}

export interface PerformParams {
  op: 'perform';
  token: string;
  kind: FlashMirrorChange['kind'];
  session: string;
  options: FlashOptions;
  coordinated: boolean;
  pairs: MirrorPairParams[];
  /** Tracks the secondary writes into a pair's target after its flash, their data in the payload, in order. */
  fixups?: Array<{ pair: number; track: number }>;
}

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
    if (session.state === 'defined' || !service.isSource(session)) continue;
    return { session, pair, source: service.sourceOf(pair), agent: service.otherAgent(session) };
  }
  return null;
}

/** The copy set in which this local volume is the secondary (this site the target), if any. */
export function secondaryOf(service: ReplicationService, volume: string): { session: SessionRecord; pair: PairRecord } | null {
  const id = service.engine.volumeIdOrNull(volume);
  for (const pair of service.pairs.values()) {
    if (pair.localVolume !== volume || pair.localVolumeId !== id || pair.broken) continue;
    const session = service.session(pair.sessionId);
    if (session.state === 'defined' || service.isSource(session)) continue;
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
