import { z } from 'zod';
import { AgentEventSchema, AuditEntrySchema, ClusterHistorySchema, ClusterInfoSchema, JournalViewSchema, SessionHistorySchema, SessionInfoSchema } from '@tandem/contract';

/**
 * The console API for mirroring (peers, sessions, clusters, reports),
 * beside console-api.ts. Imports nothing from Node, Electron or the DOM.
 */

/** Pair the site in the path with another site this console knows (by its console id). */
export const PairSitesRequestSchema = z.object({ otherSiteId: z.string().min(1) });
export type PairSitesRequest = z.infer<typeof PairSitesRequestSchema>;

/** A session's recent events at one site, oldest first. */
export const SessionEventsSchema = z.object({ events: z.array(AgentEventSchema) });
export type SessionEvents = z.infer<typeof SessionEventsSchema>;

export const ReportFormatSchema = z.enum(['csv', 'json', 'pdf']);
export type ReportFormat = z.infer<typeof ReportFormatSchema>;

/** A built report, ready for the save dialog or a browser download. */
export const ReportFileSchema = z.object({
  fileName: z.string(),
  mimeType: z.string(),
  /** `base64` for binary formats (PDF). */
  encoding: z.enum(['utf8', 'base64']),
  content: z.string(),
});
export type ReportFile = z.infer<typeof ReportFileSchema>;

/** The report's range of exposure history, seconds back from now (default 24 h, at most 8 days: what agents keep). */
export const ReportQuerySchema = z.object({
  format: ReportFormatSchema,
  historySeconds: z.coerce.number().int().min(60).max(8 * 86_400).default(86_400),
});
export type ReportQuery = z.infer<typeof ReportQuerySchema>;

/**
 * A site the report needed and whether the backend reached it when it
 * built the report. An unreachable site is named with the time, never left
 * out: what it would have contributed (its events, its history, its flash
 * copies, its view of the session) is missing from the report.
 */
export const ReportSiteSchema = z.object({
  site: z.string(),
  reachable: z.boolean(),
  /** When the backend asked it (ISO). */
  checkedAt: z.string(),
  /** Unreachable: since when the console has not reached it (its connection's state since), or checkedAt when a call failed. */
  unreachableSince: z.string().nullable(),
  /** Why it was not reached (problem code and message); null when reachable. */
  problem: z.string().nullable(),
});
export type ReportSite = z.infer<typeof ReportSiteSchema>;

/** The last verify as it concerns one copy set. */
export const ReportVerifySchema = z.object({
  finishedAt: z.string(),
  trigger: z.enum(['failback', 'request']),
  comparedTracks: z.number(),
  differingTracks: z.number(),
  unverifiedTracks: z.number(),
  ok: z.boolean(),
});
export type ReportVerify = z.infer<typeof ReportVerifySchema>;

/** A copy set named by its volumes and sites (`alpha:db -> beta:db-copy`), with its state and last verify. */
export const ReportCopySetSchema = z.object({
  name: z.string(),
  id: z.string(),
  h1Site: z.string(),
  h1Volume: z.string(),
  h2Site: z.string(),
  h2Volume: z.string(),
  state: z.string(),
  reason: z.string().nullable(),
  outOfSyncTracks: z.number(),
  outOfSyncBytes: z.number(),
  targetChangedTracks: z.number(),
  trackCount: z.number(),
  trackSize: z.number(),
  syncedPercent: z.number().nullable(),
  /** Null: never verified (or verified before agents kept per-copy-set results). */
  lastVerify: ReportVerifySchema.nullable(),
});
export type ReportCopySet = z.infer<typeof ReportCopySetSchema>;

/** An event with the site that recorded it. */
export const ReportEventSchema = AgentEventSchema.extend({ site: z.string() });
export type ReportEvent = z.infer<typeof ReportEventSchema>;

/** An audit trail entry (a state-changing call that named the session) with the site whose agent recorded it. */
export const ReportAuditEntrySchema = AuditEntrySchema.extend({ site: z.string() });
export type ReportAuditEntry = z.infer<typeof ReportAuditEntrySchema>;

/** A flash copy session at a site with a pair whose source or target is one of the session's volumes there. */
export const ReportFlashSessionSchema = z.object({
  site: z.string(),
  name: z.string(),
  state: z.string(),
  pointInTime: z.string().nullable(),
  withdrawnAt: z.string().nullable(),
  pairs: z.array(z.object({ source: z.string(), target: z.string(), state: z.string(), percent: z.number(), remoteTarget: z.string().nullable() })),
});
export type ReportFlashSession = z.infer<typeof ReportFlashSessionSchema>;

/** A bookmark of the session's journal as a report lists it. */
export const ReportBookmarkSchema = z.object({ name: z.string(), time: z.string(), seq: z.number() });
export type ReportBookmark = z.infer<typeof ReportBookmarkSchema>;

/**
 * Continuous data protection of a session: its journal at the receiving
 * site (policy, window covered against the one required, space used,
 * warnings) and its bookmarks. `journal` null: the site could not be asked
 * (`problem` says why), the state is unknown.
 */
export const ReportProtectionSchema = z.object({
  site: z.string(),
  journal: JournalViewSchema.nullable(),
  bookmarks: z.array(ReportBookmarkSchema),
  problem: z.string().nullable(),
});
export type ReportProtection = z.infer<typeof ReportProtectionSchema>;

/** One session as a report shows it (JSON reports are exactly this shape). */
export const SessionReportSchema = z.object({
  /** The site whose view `session` is (the current source's when reached). */
  site: z.string(),
  session: SessionInfoSchema,
  /** Every site of the session (H1 sites, H2 site) and whether it was reached. */
  sites: z.array(ReportSiteSchema),
  copySets: z.array(ReportCopySetSchema),
  /** The newest events about the session at every reached site, oldest first. */
  events: z.array(ReportEventSchema),
  /** Exposure history as each reached site sampled it (agents' GET /v1/sessions/:name/history). */
  history: z.array(SessionHistorySchema),
  flashSessions: z.array(ReportFlashSessionSchema),
  /** The audit trail of every reached site: state-changing calls whose route named the session (newest up to the limit per site), oldest first. */
  audit: z.array(ReportAuditEntrySchema),
  /** The journal at the receiving site; null when that site keeps none for the session. */
  protection: ReportProtectionSchema.nullable(),
});
export type SessionReport = z.infer<typeof SessionReportSchema>;

/** A member session of the cluster the report could not include, and why. */
export const ReportMissingSessionSchema = z.object({ session: z.string(), site: z.string(), reason: z.string() });
export type ReportMissingSession = z.infer<typeof ReportMissingSessionSchema>;

export const ReportDocumentSchema = z.object({
  kind: z.enum(['session', 'cluster']),
  title: z.string(),
  generatedAt: z.string(),
  /** The range of the exposure history (ISO). */
  historyFrom: z.string(),
  historyTo: z.string(),
  /** Every site the report needed, reached or not. */
  sites: z.array(ReportSiteSchema),
  cluster: ClusterInfoSchema.nullable(),
  /** The cluster's master data set, as its processor's site keeps it (cluster reports). */
  clusterHistory: ClusterHistorySchema.nullable(),
  sessions: z.array(SessionReportSchema),
  /** Cluster members at sites the report could not reach. */
  missing: z.array(ReportMissingSessionSchema),
});
export type ReportDocument = z.infer<typeof ReportDocumentSchema>;
