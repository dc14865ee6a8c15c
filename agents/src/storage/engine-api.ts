import type {
  PoolStats,
  TrackDetail,
  TrackMap,
  TrackMapQuery,
  VolumeInfo,
} from '@tandem/contract';
import type { BlockDevice, ExportCatalog } from './block-device.ts';
import type { Catalog } from './catalog.ts';

/**
 * What the rest of the agent (API routes, CLI, NBD, replication) may ask of
 * the storage engine. Implemented by `StorageEngine` in engine.ts; opened
 * with `StorageEngine.open(dataDir)` after `initDataDir` made the layout.
 * Every method that can fail throws a ProblemError with a stable code.
 */
export interface Engine {
  readonly trackSize: number;
  /** The SQLite catalog (volumes, events, pairing tokens, clients). */
  readonly catalog: Catalog;
  listVolumes(): VolumeInfo[];
  getVolume(name: string): VolumeInfo;
  createVolume(name: string, sizeBytes: number): Promise<VolumeInfo>;
  /** Grows a volume; shrinking is refused with `invalid-size`. */
  resizeVolume(name: string, sizeBytes: number): Promise<VolumeInfo>;
  /** Refused with `volume-busy` while exported, `volume-has-snapshots` never (snapshots outlive sources). */
  deleteVolume(name: string): Promise<void>;
  createSnapshot(source: string, name: string, options?: { readOnly?: boolean }): Promise<VolumeInfo>;
  poolStats(): Promise<PoolStats>;
  trackMap(name: string, query: TrackMapQuery): TrackMap;
  trackDetail(name: string, track: number): TrackDetail;
  /** The volume as a block device (what NBD and the splitter use). */
  device(name: string): BlockDevice;
  /** Exports for the NBD listener. */
  readonly exports: ExportCatalog;
  /** Makes everything durable, writes a checkpoint and closes files. */
  close(): Promise<void>;
}
