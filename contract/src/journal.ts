import { z } from 'zod';
import { VolumeNameSchema } from './volumes.ts';

/**
 * Continuous data protection (issue 13): a journal per session at its
 * secondary agent, its points in time and bookmarks, and instant image
 * access at a point. Served by the session's secondary agent (where the
 * journal is).
 */

/** `PUT /v1/sessions/:name/journal`: enables the journal (or changes its policy). */
export const SetJournalRequestSchema = z
  .object({
    /** The journal's space in the pool, in bytes (do and undo data it may hold). */
    budgetBytes: z.number().int().positive(),
    /** The protection window the administrator requires, in seconds. */
    requiredWindowSeconds: z.number().positive(),
    /** How long bookmarks are kept, in seconds (default: until space runs out). */
    bookmarkRetentionSeconds: z.number().positive().nullable().optional(),
  })
  .strict();
export type SetJournalRequest = z.infer<typeof SetJournalRequestSchema>;

export const JournalPolicySchema = z.object({
  budgetBytes: z.number().int(),
  requiredWindowSeconds: z.number(),
  /** null: bookmarks are kept until space runs out. */
  bookmarkRetentionSeconds: z.number().nullable(),
});
export type JournalPolicy = z.infer<typeof JournalPolicySchema>;

/** A point in time of a journal: the image after record `seq`; a bookmark has a name. */
export const JournalPointSchema = z.object({
  seq: z.number().int(),
  time: z.string(),
  timeMs: z.number(),
  bookmark: z.string().nullable(),
});
export type JournalPoint = z.infer<typeof JournalPointSchema>;

export const JournalWarningSchema = z.object({
  level: z.enum(['warning', 'severe']),
  code: z.enum(['window-short', 'nearly-full']),
  message: z.string(),
});

export const JournalStatusSchema = z.object({
  usedBytes: z.number(),
  budgetBytes: z.number(),
  pendingBytes: z.number(),
  pendingRecords: z.number(),
  pointCount: z.number(),
  bookmarkCount: z.number(),
  oldestPoint: JournalPointSchema.nullable(),
  newestPoint: JournalPointSchema.nullable(),
  coveredWindowSeconds: z.number(),
  requiredWindowSeconds: z.number(),
  /** null: nothing used yet, no prediction. */
  predictedWindowSeconds: z.number().nullable(),
  warnings: z.array(JournalWarningSchema),
});
export type JournalStatus = z.infer<typeof JournalStatusSchema>;

/** An open image access: one NBD export per replica volume. */
export const ImageAccessInfoSchema = z.object({
  id: z.number().int(),
  session: z.string(),
  point: JournalPointSchema,
  openedAt: z.string(),
  exports: z.array(z.object({ volume: z.string(), export: z.string() })),
  /** Bytes the hosts wrote into the image so far (discarded at the end). */
  writtenBytes: z.number(),
});
export type ImageAccessInfo = z.infer<typeof ImageAccessInfoSchema>;

/** `GET /v1/sessions/:name/journal`. */
export const JournalViewSchema = z.object({
  session: z.string(),
  journal: z.number().int(),
  volumes: z.array(VolumeNameSchema),
  policy: JournalPolicySchema,
  status: JournalStatusSchema,
  images: z.array(ImageAccessInfoSchema),
});
export type JournalView = z.infer<typeof JournalViewSchema>;

/** `POST /v1/sessions/:name/journal/bookmarks`. */
export const BookmarkRequestSchema = z.object({ name: z.string().min(1).max(200) }).strict();
export type BookmarkRequest = z.infer<typeof BookmarkRequestSchema>;

/** `GET /v1/sessions/:name/journal/points?every=SECONDS` (coalesced: the last point of each interval, every bookmark). */
export const JournalPointsQuerySchema = z.object({
  every: z.coerce.number().min(0).default(1),
});
export const JournalPointListSchema = z.object({ session: z.string(), points: z.array(JournalPointSchema) });
export type JournalPointList = z.infer<typeof JournalPointListSchema>;

/** `POST /v1/sessions/:name/images`: one of a bookmark, a time (the newest point at or before it) or a point's seq. */
export const ImageAccessRequestSchema = z
  .object({
    bookmark: z.string().min(1).optional(),
    at: z.string().datetime({ offset: true }).optional(),
    seq: z.number().int().min(0).optional(),
  })
  .strict()
  .refine((body) => [body.bookmark, body.at, body.seq].filter((value) => value !== undefined).length === 1, {
    message: 'give exactly one of bookmark, at or seq',
  });
export type ImageAccessRequest = z.infer<typeof ImageAccessRequestSchema>;

export const ImageAccessListSchema = z.object({ images: z.array(ImageAccessInfoSchema) });
export type ImageAccessList = z.infer<typeof ImageAccessListSchema>;
