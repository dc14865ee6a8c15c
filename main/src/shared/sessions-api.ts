import { z } from 'zod';
import { AgentEventSchema, ClusterInfoSchema, SessionInfoSchema } from '@tandem/contract';

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

export const ReportQuerySchema = z.object({ format: ReportFormatSchema });

/** A built report, ready for the save dialog or a browser download. */
export const ReportFileSchema = z.object({
  fileName: z.string(),
  mimeType: z.string(),
  /** `base64` for binary formats (PDF). */
  encoding: z.enum(['utf8', 'base64']),
  content: z.string(),
});
export type ReportFile = z.infer<typeof ReportFileSchema>;

/** One session as a report shows it (JSON reports are exactly this shape). */
export const SessionReportSchema = z.object({
  site: z.string(),
  session: SessionInfoSchema,
  events: z.array(AgentEventSchema),
});
export type SessionReport = z.infer<typeof SessionReportSchema>;

export const ReportDocumentSchema = z.object({
  kind: z.enum(['session', 'cluster']),
  title: z.string(),
  generatedAt: z.string(),
  cluster: ClusterInfoSchema.nullable(),
  sessions: z.array(SessionReportSchema),
});
export type ReportDocument = z.infer<typeof ReportDocumentSchema>;
