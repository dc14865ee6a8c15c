import { z } from 'zod';
import { VolumeNameSchema } from './volumes.ts';

/**
 * Alerts: rules the agent evaluates against its own live state (sessions,
 * copy sets, peer links, the pool) with thresholds the administrator sets
 * per session and per site. An alert is raised and cleared as an event
 * (`alert.raised`, `alert.cleared`, the alert in `data.alert`), listed by
 * `GET /v1/alerts` (active and recently cleared) and optionally posted to a
 * webhook. See PROTOCOL.md, *Alerts*.
 */

export const alertEventTypes = {
  raised: 'alert.raised',
  cleared: 'alert.cleared',
} as const;

export const AlertSeveritySchema = z.enum(['warning', 'critical']);
export type AlertSeverity = z.infer<typeof AlertSeveritySchema>;

/** What an alert watches. Kinds never change meaning once released; newer agents may add kinds. */
export const alertKinds = [
  /** The session's exposure (how far the targets lag) is above its RPO target. */
  'exposure',
  /** A peer link of a started session has been down longer than the session's link-down threshold. */
  'link-down',
  /** The session is suspended (mirroring stopped; changes are only marked). */
  'session-suspended',
  /** A copy set is broken (its volume at one site gone). */
  'copy-set-failed',
  /** The last online verify found tracks that differ between the sites. */
  'verify-differences',
  /** An async session's queue of unshipped consistency groups is above its share of the limit. */
  'backlog',
  /** The pool's file system is nearly full. */
  'pool-full',
  /** A session's CDP journal at this agent holds 90 % of its space or more (journal-feed.ts; `nearly-full`). */
  'journal-nearly-full',
  /** A session's CDP journal at this agent cannot hold the required window: under 85 % (warning) or 75 % (critical) of it. */
  'journal-window-short',
] as const;
export const AlertKindSchema = z.enum(alertKinds);
export type AlertKind = z.infer<typeof AlertKindSchema>;

/** What an alert is about: a session, one of its copy sets or peer links, or the pool. */
export const AlertSubjectSchema = z.object({
  kind: z.enum(['session', 'copy-set', 'link', 'pool']),
  /** The session (null for the pool). */
  session: z.string().nullable(),
  /** A copy set's id (`copy-set`), the other site (`link`); null otherwise. */
  name: z.string().nullable(),
});
export type AlertSubject = z.infer<typeof AlertSubjectSchema>;

export const AlertSchema = z.object({
  /** Unique per raise (the catalog row). */
  id: z.number().int(),
  /** Stable per condition: `link-down:gold:beta`; the same key raised again after a clear is a new alert (new id). */
  key: z.string(),
  kind: AlertKindSchema,
  severity: AlertSeveritySchema,
  /** The site whose agent raised it. */
  site: z.string(),
  subject: AlertSubjectSchema,
  message: z.string(),
  /** When the condition was first seen (ISO, the agent's clock). */
  raisedAt: z.string(),
  /** When the condition had stayed away long enough to clear (ISO); null while active. */
  clearedAt: z.string().nullable(),
  /** The measured value at raise (seconds, percent, tracks), null when the rule has none. */
  value: z.number().nullable(),
  /** The threshold it crossed, null when the rule has none. */
  threshold: z.number().nullable(),
});
export type Alert = z.infer<typeof AlertSchema>;

/** Thresholds a session's alerts use; null means the site's default (`AlertSettings.sessionDefaults`). */
const seconds = (what: string) =>
  z.number({ error: `${what} is a number of seconds` }).positive(`${what} must be above 0 seconds`).max(30 * 86_400, `${what} is at most 30 days`);
const percent = (what: string) =>
  z.number({ error: `${what} is a percentage` }).min(1, `${what} must be at least 1 %`).max(100, `${what} is at most 100 %`);

export const SessionAlertThresholdsSchema = z.object({
  /** RPO target: an `exposure` alert once the exposure is above it, seconds. Null in defaults: no exposure alert. */
  rpoTargetSeconds: seconds('rpoTargetSeconds').nullable(),
  /** A `link-down` alert once a peer link has been down this long, seconds. */
  linkDownSeconds: seconds('linkDownSeconds'),
  /** A `backlog` alert once an async session's queue passes this share of its limit, percent. */
  backlogPercent: percent('backlogPercent'),
  /** False: no alerts for this session at all. */
  enabled: z.boolean(),
});
export type SessionAlertThresholds = z.infer<typeof SessionAlertThresholdsSchema>;

/** `PUT /v1/sessions/:name/alert-thresholds`: every field optional; null resets a field to the site default. */
export const SetSessionAlertThresholdsRequestSchema = z
  .object({
    rpoTargetSeconds: seconds('rpoTargetSeconds').nullable().optional(),
    linkDownSeconds: seconds('linkDownSeconds').nullable().optional(),
    backlogPercent: percent('backlogPercent').nullable().optional(),
    enabled: z.boolean().nullable().optional(),
  })
  .strict();
export type SetSessionAlertThresholdsRequest = z.infer<typeof SetSessionAlertThresholdsRequestSchema>;

/** A session's thresholds: what it set (`own`, null fields inherit) and what is in effect. */
export const SessionAlertThresholdsViewSchema = z.object({
  session: z.string(),
  own: z.object({
    rpoTargetSeconds: z.number().nullable(),
    linkDownSeconds: z.number().nullable(),
    backlogPercent: z.number().nullable(),
    enabled: z.boolean().nullable(),
  }),
  effective: SessionAlertThresholdsSchema,
});
export type SessionAlertThresholdsView = z.infer<typeof SessionAlertThresholdsViewSchema>;

/** A webhook address: http or https. */
export const WebhookUrlSchema = z
  .string()
  .max(2048, 'webhookUrl is at most 2048 characters')
  .refine((text) => {
    try {
      const url = new URL(text);
      return url.protocol === 'http:' || url.protocol === 'https:';
    } catch {
      return false;
    }
  }, 'webhookUrl must be an http:// or https:// URL');

/** The site's alert settings. */
export const AlertSettingsSchema = z.object({
  /** A `pool-full` alert once the pool's file system is this full, percent. */
  poolFullPercent: percent('poolFullPercent'),
  /** Raises and clears are posted here as JSON (`AlertWebhookPayload`); null for none. */
  webhookUrl: WebhookUrlSchema.nullable(),
  /** Thresholds of every session that does not set its own. */
  sessionDefaults: SessionAlertThresholdsSchema,
});
export type AlertSettings = z.infer<typeof AlertSettingsSchema>;

/** `PUT /v1/alerts/settings`: the fields to change (a partial `sessionDefaults` merges). */
export const SetAlertSettingsRequestSchema = z
  .object({
    poolFullPercent: percent('poolFullPercent').optional(),
    webhookUrl: WebhookUrlSchema.nullable().optional(),
    sessionDefaults: z
      .object({
        rpoTargetSeconds: seconds('rpoTargetSeconds').nullable().optional(),
        linkDownSeconds: seconds('linkDownSeconds').optional(),
        backlogPercent: percent('backlogPercent').optional(),
        enabled: z.boolean().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type SetAlertSettingsRequest = z.infer<typeof SetAlertSettingsRequestSchema>;

/** The settings an agent starts with: alerts work with no configuration. */
export const defaultAlertSettings: AlertSettings = {
  poolFullPercent: 90,
  webhookUrl: null,
  sessionDefaults: { rpoTargetSeconds: null, linkDownSeconds: 30, backlogPercent: 80, enabled: true },
};

export const AlertListQuerySchema = z.object({
  /** Cleared alerts to include, newest first (default 100). */
  recent: z.coerce.number().int().min(0).max(1000).default(100),
  session: VolumeNameSchema.optional(),
});
export type AlertListQuery = z.output<typeof AlertListQuerySchema>;

/** `GET /v1/alerts`: active alerts (newest first) and recently cleared ones (newest cleared first). */
export const AlertListSchema = z.object({
  site: z.string(),
  active: z.array(AlertSchema),
  recent: z.array(AlertSchema),
  /** When the rules last ran (ISO), null before the first run. */
  evaluatedAt: z.string().nullable(),
});
export type AlertList = z.infer<typeof AlertListSchema>;

/** What the webhook receives (POST, JSON) on every raise and clear. */
export const AlertWebhookPayloadSchema = z.object({
  event: z.enum(['raised', 'cleared']),
  site: z.string(),
  agentId: z.string(),
  alert: AlertSchema,
  /** When the agent sent it (ISO); retries keep the first time. */
  sentAt: z.string(),
});
export type AlertWebhookPayload = z.infer<typeof AlertWebhookPayloadSchema>;

/** The alert an `alert.raised` / `alert.cleared` event carries (`data.alert`), or null for any other event. */
export function alertOfEvent(event: { type: string; data?: Record<string, unknown> }): Alert | null {
  if (event.type !== alertEventTypes.raised && event.type !== alertEventTypes.cleared) return null;
  const parsed = AlertSchema.safeParse(event.data?.alert);
  return parsed.success ? parsed.data : null;
}

/** How the subject reads in one line: `session gold`, `gold link to beta`, `gold copy set 3f…`, `pool`. */
export function alertSubjectText(subject: AlertSubject): string {
  switch (subject.kind) {
    case 'pool':
      return 'pool';
    case 'session':
      return `session ${subject.session ?? ''}`.trim();
    case 'link':
      return `${subject.session ?? ''} link to ${subject.name ?? '?'}`.trim();
    case 'copy-set':
      return `${subject.session ?? ''} copy set ${subject.name ?? '?'}`.trim();
  }
}
