import { z } from 'zod';
import { VolumeNameSchema } from './volumes.ts';

/**
 * Flash copy: point-in-time relationships source volume -> target volume
 * (same size, one agent). Relationships are established in flash sessions: a
 * flash session is a named set of pairs flashed at one point in time (a
 * consistent group; a single pair is a session of one) with one mapping
 * state. See PROTOCOL.md, "Flash copy".
 */

/**
 * Mapping states (per session and per pair):
 * - `idle-copied`: no copy is running — every track of the target is
 *   physically its own (background copy finished) or the session was never
 *   started; an incremental session stays here between refreshes.
 * - `preparing`: establishing — source writes of the group are being held.
 * - `prepared`: every pair of the group is ready; the point in time is
 *   taken the instant the group leaves this state (writes are still held).
 * - `copying`: the relationship is active: the target reads the point in
 *   time; background copy (if any) runs; source writes copy old data first.
 * - `stopping`: a withdraw that finishes the copy first is running.
 * - `stopped`: withdrawn before the copy finished.
 * - `suspended`: the background copy is paused (by the administrator or an
 *   error, with a reason); the point-in-time image stays intact.
 */
export const FlashStateSchema = z.enum([
  'idle-copied',
  'preparing',
  'prepared',
  'copying',
  'stopping',
  'stopped',
  'suspended',
]);
export type FlashState = z.infer<typeof FlashStateSchema>;

export const FlashSessionNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, dot, dash and underscore; starts with a letter or digit');

/** How a flash copy of a target that is a mirrored primary reaches the secondary. */
export const FlashMirrorHandlingSchema = z.enum([
  /** The target is not a mirrored primary. */
  'none',
  /** The secondary performed the same flash copy itself; the pair stayed duplex. */
  'preserved',
  /** The target's changed tracks were marked out-of-sync and are shipped. */
  'shipped',
]);
export type FlashMirrorHandling = z.infer<typeof FlashMirrorHandlingSchema>;

export const FlashPairRequestSchema = z.object({
  source: VolumeNameSchema,
  target: VolumeNameSchema,
  /**
   * Coordinated point in time at both sites: the volume at the source's
   * mirror secondary site that receives the same flash copy of the
   * source's secondary volume, taken at the matching point of the mirror
   * stream. Only with `coordinated: true`.
   */
  remoteTarget: VolumeNameSchema.optional(),
});
export type FlashPairRequest = z.infer<typeof FlashPairRequestSchema>;

export const FlashOptionsSchema = z.object({
  /** Copy every track to the target in the background (false = no-copy). */
  backgroundCopy: z.boolean().default(true),
  /** Background copy rate in MiB/s; null = as fast as the disks go. */
  rateMiBps: z.number().positive().max(100_000).nullable().default(null),
  /** Record changes on both sides so refresh and reverse copy only those tracks. */
  incremental: z.boolean().default(false),
  /** The target refuses host writes while the relationship exists. */
  writeInhibitTarget: z.boolean().default(false),
  /**
   * When source and target are primaries mirrored to the same secondary
   * agent, ask the secondary to perform the same flash copy so the pairs
   * stay duplex; otherwise the target's changed tracks are shipped.
   */
  preserveMirror: z.boolean().default(false),
});
export type FlashOptions = z.infer<typeof FlashOptionsSchema>;

export const EstablishFlashRequestSchema = FlashOptionsSchema.extend({
  /** Session name; generated (`flash-<n>`) when omitted. */
  name: FlashSessionNameSchema.optional(),
  /** Several pairs = one consistent group flashed at one point in time. */
  pairs: z.array(FlashPairRequestSchema).min(1).max(256),
  /** Longest time source writes may be held while the group is established; on timeout nothing is established. */
  holdTimeoutMs: z.number().int().min(10).max(60_000).default(2_000),
  /** Also flash at the mirror secondary at the matching point of the mirror stream (needs `remoteTarget` per pair). */
  coordinated: z.boolean().default(false),
});
export type EstablishFlashRequest = z.infer<typeof EstablishFlashRequestSchema>;

export const FlashPairInfoSchema = z.object({
  id: z.string(),
  source: z.string(),
  target: z.string(),
  state: FlashStateSchema,
  trackSize: z.number(),
  totalTracks: z.number(),
  /** Tracks the target holds physically on its own (copied by background copy, copy-on-write or a target write). */
  copiedTracks: z.number(),
  /** copiedTracks / totalTracks in percent, 0..100. */
  percent: z.number(),
  /** Incremental only: tracks changed since the last establish/refresh at the source and at the target. */
  changedTracks: z.object({ source: z.number(), target: z.number() }).nullable(),
  mirror: FlashMirrorHandlingSchema,
  remoteTarget: z.string().nullable(),
  reason: z.string().nullable(),
});
export type FlashPairInfo = z.infer<typeof FlashPairInfoSchema>;

export const FlashSessionInfoSchema = z.object({
  name: z.string(),
  state: FlashStateSchema,
  options: FlashOptionsSchema,
  coordinated: z.boolean(),
  pairs: z.array(FlashPairInfoSchema),
  /** The point in time the targets hold (ISO), null before the first establish. */
  pointInTime: z.string().nullable(),
  /** How long source writes were held at the last establish/refresh, ms. */
  holdMs: z.number().nullable(),
  /** Background copy throughput right now, bytes per second (0 when idle). */
  copyBytesPerSecond: z.number(),
  /** Estimated seconds until the background copy completes, null when unknown or not copying. */
  etaSeconds: z.number().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  /**
   * When the relationships were withdrawn (ISO); null or absent while they
   * exist. A withdrawn session is kept (state `stopped` or `idle-copied`)
   * until removed; its targets keep their point-in-time images.
   */
  withdrawnAt: z.string().nullable().optional(),
});
export type FlashSessionInfo = z.infer<typeof FlashSessionInfoSchema>;

export const FlashSessionListSchema = z.object({ sessions: z.array(FlashSessionInfoSchema) });
export type FlashSessionList = z.infer<typeof FlashSessionListSchema>;

/** Refresh an incremental session: a new point in time, copying only changed tracks. */
export const FlashRefreshRequestSchema = z.object({
  holdTimeoutMs: z.number().int().min(10).max(60_000).default(2_000),
});
export type FlashRefreshRequest = z.infer<typeof FlashRefreshRequestSchema>;

/** Reverse restore: the targets' images back onto the sources (only changed tracks when incremental). */
export const FlashReverseRequestSchema = z.object({
  holdTimeoutMs: z.number().int().min(10).max(60_000).default(2_000),
});
export type FlashReverseRequest = z.infer<typeof FlashReverseRequestSchema>;

export const FlashWithdrawRequestSchema = z.object({
  /** Finish the background copy first (state `stopping` until done), else stop now. */
  finishCopy: z.boolean().default(false),
});
export type FlashWithdrawRequest = z.infer<typeof FlashWithdrawRequestSchema>;

/** Change a running session's background copy. */
export const FlashUpdateRequestSchema = z.object({
  backgroundCopy: z.boolean().optional(),
  rateMiBps: z.number().positive().max(100_000).nullable().optional(),
  /** Pause (`suspended`) or resume (`copying`) the background copy. */
  paused: z.boolean().optional(),
});
export type FlashUpdateRequest = z.infer<typeof FlashUpdateRequestSchema>;

/**
 * Copied / not-yet-copied tracks of a pair's target as run-length buckets
 * (same resolution rules as the volume TrackMap): each run is
 * `[repeat, copied]` — `repeat` consecutive buckets of `bucketTracks`
 * tracks each holding `copied` copied tracks.
 */
export const FlashTrackMapSchema = z.object({
  session: z.string(),
  pair: z.string(),
  target: z.string(),
  trackSize: z.number(),
  trackCount: z.number(),
  start: z.number(),
  count: z.number(),
  bucketTracks: z.number(),
  buckets: z.number(),
  runs: z.array(z.tuple([z.number(), z.number()])),
});
export type FlashTrackMap = z.infer<typeof FlashTrackMapSchema>;

/** Event types of flash copy (catalog + event stream). */
export const flashEventTypes = {
  /** A session or pair changed mapping state: data {session, pair?, from, to}. */
  state: 'flash.state',
  established: 'flash.established',
  refreshed: 'flash.refreshed',
  reversed: 'flash.reversed',
  withdrawn: 'flash.withdrawn',
  /** A consistent group could not be established within its hold timeout; nothing was changed. */
  holdTimeout: 'flash.hold-timeout',
  copyProgress: 'flash.copy-progress',
} as const;
