import { z } from 'zod';
import { maxVolumeBytes, volumeSizeGranule } from './sizes.ts';

/** Volume and snapshot names: what an NBD export name and a file name can both carry. */
export const VolumeNameSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/,
    'a name is 1 to 63 letters, digits, dots, dashes or underscores, starting with a letter or digit',
  );

export const VolumeSizeSchema = z
  .number()
  .int('the size is a whole number of bytes')
  .positive('the size must be above zero')
  .max(maxVolumeBytes, 'a volume is at most 64 TiB')
  .refine((n) => n % volumeSizeGranule === 0, 'the size must be a multiple of 4 KiB');

export const VolumeKindSchema = z.enum(['volume', 'snapshot']);

export const VolumeInfoSchema = z.object({
  id: z.number().int(),
  name: VolumeNameSchema,
  kind: VolumeKindSchema,
  /** For a snapshot: the volume it was taken from (null once that volume is deleted). */
  source: z.string().nullable(),
  sizeBytes: z.number(),
  trackSize: z.number(),
  trackCount: z.number(),
  /** Tracks backed by an extent, in bytes (allocated = shared + exclusive). */
  allocatedBytes: z.number(),
  /** Bytes in extents this volume shares with a snapshot or its source. */
  sharedBytes: z.number(),
  /** Bytes in extents only this volume references. */
  exclusiveBytes: z.number(),
  /** Names of the snapshots taken from this volume. */
  snapshots: z.array(z.string()),
  readOnly: z.boolean(),
  createdAt: z.string(),
});
export type VolumeInfo = z.infer<typeof VolumeInfoSchema>;

/**
 * Something a volume or snapshot is needed by, so deleting it (or resizing
 * it) is refused with `volume-busy`: the answer's `detail.dependents` lists
 * every one (`VolumeBusyDetailSchema`), its message names the first and the
 * step to take first. `step` says that step in words ("remove it from session
 * gold"), `action` how (a command, or what to do where no command does it).
 */
const DependentBase = { step: z.string(), action: z.string() };
export const VolumeDependentSchema = z.discriminatedUnion('kind', [
  /** A copy set of a mirroring session, in any state; `role`: the volume's side of it at this site. */
  z.object({
    kind: z.literal('copy-set'),
    session: z.string(),
    sessionState: z.string(),
    role: z.enum(['h1', 'h2']),
    h1Volume: z.string(),
    h2Volume: z.string(),
    ...DependentBase,
  }),
  /** A flash copy relationship that is not withdrawn, the volume its source or target. */
  z.object({ kind: z.literal('flash-copy'), session: z.string(), sessionState: z.string(), role: z.enum(['source', 'target']), ...DependentBase }),
  /** NBD clients have it open (delete only). */
  z.object({ kind: z.literal('nbd-export'), connections: z.number().int(), ...DependentBase }),
  /** A snapshot a snapshot-shipping session keeps: the source-side image of its last shipped cycle, or one it ships now. */
  z.object({ kind: z.literal('shipping-snapshot'), session: z.string(), sessionState: z.string(), ...DependentBase }),
  /** A replica volume of a session with a continuous data protection journal here (issue 13). */
  z.object({ kind: z.literal('cdp-journal'), session: z.string(), ...DependentBase }),
]);
export type VolumeDependent = z.infer<typeof VolumeDependentSchema>;
export const VolumeBusyDetailSchema = z.object({ dependents: z.array(VolumeDependentSchema).min(1) });
export type VolumeBusyDetail = z.infer<typeof VolumeBusyDetailSchema>;

export const VolumeListSchema = z.object({ volumes: z.array(VolumeInfoSchema) });
export type VolumeList = z.infer<typeof VolumeListSchema>;

export const CreateVolumeRequestSchema = z.object({
  name: VolumeNameSchema,
  sizeBytes: VolumeSizeSchema,
});
export type CreateVolumeRequest = z.infer<typeof CreateVolumeRequestSchema>;

export const ResizeVolumeRequestSchema = z.object({ sizeBytes: VolumeSizeSchema });
export type ResizeVolumeRequest = z.infer<typeof ResizeVolumeRequestSchema>;

export const CreateSnapshotRequestSchema = z.object({
  name: VolumeNameSchema,
  readOnly: z.boolean().optional(),
});
export type CreateSnapshotRequest = z.infer<typeof CreateSnapshotRequestSchema>;

export const VolumeParamsSchema = z.object({ name: VolumeNameSchema });

export const PoolStatsSchema = z.object({
  trackSize: z.number(),
  /** Extents the pool's files hold room for. */
  extentCount: z.number(),
  usedExtents: z.number(),
  freeExtents: z.number(),
  /** Extents referenced by more than one volume. */
  sharedExtents: z.number(),
  usedBytes: z.number(),
  /** Sum of the volumes' virtual sizes (thin provisioning ratio = provisioned / used). */
  provisionedBytes: z.number(),
  /** Bytes the pool's extent files occupy on disk (apparent size). */
  fileBytes: z.number(),
  /** Free bytes on the file system holding the pool. */
  filesystemFreeBytes: z.number(),
  volumes: z.number(),
  snapshots: z.number(),
});
export type PoolStats = z.infer<typeof PoolStatsSchema>;

/**
 * The VTT map of a volume as run-length summaries. The tracks [start,
 * start+count) are cut into buckets of `bucketTracks` tracks; each run is
 * `[repeat, allocated, shared]`: `repeat` consecutive buckets each holding
 * `allocated` allocated tracks of which `shared` are shared. With
 * bucketTracks = 1 this is the exact map. A 16M-track volume is never sent
 * as 16M objects: ask for the resolution you draw.
 */
export const TrackMapQuerySchema = z.object({
  start: z.coerce.number().int().min(0).default(0),
  count: z.coerce.number().int().min(1).optional(),
  buckets: z.coerce.number().int().min(1).max(65536).default(4096),
});
export type TrackMapQuery = z.infer<typeof TrackMapQuerySchema>;

export const TrackMapSchema = z.object({
  volume: z.string(),
  trackSize: z.number(),
  trackCount: z.number(),
  start: z.number(),
  count: z.number(),
  bucketTracks: z.number(),
  buckets: z.number(),
  runs: z.array(z.tuple([z.number(), z.number(), z.number()])),
});
export type TrackMap = z.infer<typeof TrackMapSchema>;

export const TrackStateSchema = z.enum(['unallocated', 'exclusive', 'shared']);
export type TrackState = z.infer<typeof TrackStateSchema>;

/** One track in detail: where it lives and who else references its extent. */
export const TrackDetailSchema = z.object({
  volume: z.string(),
  track: z.number(),
  offset: z.number(),
  state: TrackStateSchema,
  extent: z.number().nullable(),
  references: z.number(),
  sharedWith: z.array(z.string()),
});
export type TrackDetail = z.infer<typeof TrackDetailSchema>;
