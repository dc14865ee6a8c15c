import { z } from 'zod';
import { SessionHealthSchema, SessionPeerSchema, SessionStateSchema } from './replication.ts';

/**
 * Session history: every agent samples each of its sessions by itself
 * (default every 10 s) and keeps the samples in its catalog for at least 7
 * days at full resolution, compacted into runs of equal samples. What an
 * agent serves is its own view of the session (the same one `GET
 * /v1/sessions/:name` gives at that moment); times when it took no samples
 * (it was not running) are gaps, never filled in.
 */

/** A peer of the session as a sample keeps it: the link state and since when it is unreachable. */
export const HistoryPeerSchema = SessionPeerSchema.pick({ site: true, link: true, unreachableSince: true });
export type HistoryPeer = z.infer<typeof HistoryPeerSchema>;

/**
 * One point of a session's history. At full resolution a point is one
 * sample; a point standing for several samples (`samples` > 1, a range
 * longer than `maxPoints` samples) shows the worst of them: the largest
 * exposure and out-of-sync counts, the worst health, the oldest consistency
 * time, and the state, peers and detail of its worst-health sample (the
 * latest of those).
 */
export const HistoryPointSchema = z.object({
  /** When the agent took the (last) sample of this point, ISO. */
  time: z.string(),
  /** How many samples the point stands for. */
  samples: z.number(),
  state: SessionStateSchema,
  health: SessionHealthSchema,
  consistencyTime: z.string().nullable(),
  exposureSeconds: z.number().nullable(),
  outOfSyncTracks: z.number(),
  outOfSyncBytes: z.number(),
  peers: z.array(HistoryPeerSchema),
  detail: z.string().nullable(),
});
export type HistoryPoint = z.infer<typeof HistoryPointSchema>;

/** A span in which the agent took no sample (it was not running, or stalled): nothing is known of it from this agent. */
export const HistoryGapSchema = z.object({ from: z.string(), to: z.string() });
export type HistoryGap = z.infer<typeof HistoryGapSchema>;

/** `GET /v1/sessions/:name/history`. */
export const SessionHistorySchema = z.object({
  session: z.string(),
  sessionId: z.string(),
  /** The site whose agent took the samples. */
  site: z.string(),
  from: z.string(),
  to: z.string(),
  /** Seconds between samples at the agent. */
  sampleIntervalSeconds: z.number(),
  /** Seconds each point stands for (the sample interval, or wider when the range holds more samples than `maxPoints`). */
  resolutionSeconds: z.number(),
  /** How long the agent keeps samples. */
  retentionSeconds: z.number(),
  /** Oldest first. */
  points: z.array(HistoryPointSchema),
  /** Spans inside [from, to] without samples, oldest first. */
  gaps: z.array(HistoryGapSchema),
});
export type SessionHistory = z.infer<typeof SessionHistorySchema>;

const isoTime = z.iso.datetime({ offset: true, message: 'is not an ISO time like 2026-01-01T12:00:00Z' });

/** The query of `GET /v1/sessions/:name/history`: from (default to - 1 h), to (default now), maxPoints (default 1000). */
export const SessionHistoryQuerySchema = z
  .object({
    from: isoTime.optional(),
    to: isoTime.optional(),
    maxPoints: z.coerce.number().int().min(1).max(10_000).default(1000),
  })
  .refine((query) => query.from === undefined || query.to === undefined || Date.parse(query.from) < Date.parse(query.to), {
    message: 'from must be before to',
    path: ['from'],
  });
export type SessionHistoryQuery = z.infer<typeof SessionHistoryQuerySchema>;
