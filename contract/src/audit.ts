import { z } from 'zod';
import { ProblemCodeSchema } from './problems.ts';
import { RoleSchema } from './roles.ts';

/**
 * Audit trail: every state-changing call to an agent's control API (POST,
 * PUT, PATCH, DELETE), accepted, refused or failed, is recorded durably by
 * the agent itself, in its catalog: who (the client certificate, and the
 * console user's name the caller declares), what (method, route, URL, the
 * body with secrets redacted), the result (status, problem code) and when.
 * See contract/PROTOCOL.md, *Audit trail*.
 */

/**
 * The request header a console (or any client) sets to name the person
 * using it, e.g. the OS user running the console. Informational: the client
 * certificate is the authority; the agent records the header as given
 * (trimmed, at most 128 characters).
 */
export const auditUserHeader = 'x-tandem-user';

/** Body fields whose values never reach the audit trail (matched by name, case-insensitive, at any depth). */
export const auditRedactedFields = ['token', 'password', 'passphrase', 'secret', 'psk', 'key', 'privatekey', 'keypem', 'clientkeypem', 'publickey', 'webhookurl'] as const;

/** What a redacted value is replaced with. */
export const auditRedacted = '[redacted]';

/** The client certificate a call came with; null for calls without one (pairing, refused calls). */
export const AuditClientSchema = z.object({
  /** The certificate's subject common name: `local-admin SITE` for the CLI, the label the console paired with. */
  subject: z.string(),
  serial: z.string(),
  /** SHA-256 of the certificate, `AB:CD:…`. */
  fingerprint: z.string(),
  /**
   * The role the certificate carries (`administrator` for one issued before
   * roles); null for entries recorded before roles, and for a certificate
   * naming a role this agent does not know.
   */
  role: RoleSchema.nullable().default(null),
});
export type AuditClient = z.infer<typeof AuditClientSchema>;

export const AuditEntrySchema = z.object({
  /** Increases by one per entry, never repeats. */
  id: z.number(),
  /** When the call arrived (ISO, the agent's clock). */
  time: z.string(),
  client: AuditClientSchema.nullable(),
  /** The `x-tandem-user` header as the caller sent it, else null. Informational only. */
  user: z.string().nullable(),
  /** The address the call came from. */
  remoteAddress: z.string().nullable(),
  method: z.string(),
  /** The route pattern, `/v1/sessions/:name/actions/:action`; null when no route matched. */
  route: z.string().nullable(),
  /** The path and query as sent (at most 2048 characters). */
  url: z.string(),
  /** What the call is about, for people: `session gold`, `volume prod`, else null. */
  target: z.string().nullable(),
  /** The session the route names (`/v1/sessions/NAME…`, or the name in `POST /v1/sessions`), else null. */
  session: z.string().nullable(),
  /** Route parameters and body, secrets redacted; null when the call had neither. */
  params: z.record(z.string(), z.unknown()).nullable(),
  /** HTTP status of the answer. */
  status: z.number(),
  /** The problem code of a refused or failed call; null when it succeeded. */
  problem: ProblemCodeSchema.nullable(),
  /** The problem message, for people; null when it succeeded. */
  message: z.string().nullable(),
  durationMs: z.number(),
});
export type AuditEntry = z.infer<typeof AuditEntrySchema>;

const isoTime = z.iso.datetime({ offset: true, message: 'is not an ISO time like 2026-01-01T12:00:00Z' });

/** The query of `GET /v1/audit`. */
export const AuditListQuerySchema = z.object({
  /** Only entries at or after this time. */
  since: isoTime.optional(),
  /** At most this many, the newest ones (answered oldest first); 1..10000, default 1000. */
  limit: z.coerce.number().int('limit is a whole number').min(1, 'limit is at least 1').max(10_000, 'limit is at most 10000').default(1000),
  /** Only entries whose route names this session. */
  session: z.string().min(1).max(256).optional(),
  /** `json` (default) or `csv` (text/csv, the columns of auditCsvColumns). */
  format: z.enum(['json', 'csv']).default('json'),
});
export type AuditListQuery = z.output<typeof AuditListQuerySchema>;

export const AuditListSchema = z.object({
  /** The site whose agent recorded the entries. */
  site: z.string(),
  /** Oldest first. */
  entries: z.array(AuditEntrySchema),
  /** True when more entries matched than `limit` (the oldest were left out). */
  truncated: z.boolean(),
  /** How the agent bounds its audit trail: the newest `maxRows` entries, none older than `maxDays` days. */
  retention: z.object({ maxRows: z.number(), maxDays: z.number() }),
});
export type AuditList = z.infer<typeof AuditListSchema>;

/** The columns of the audit trail as CSV (the agent's `format=csv`, the CLI's `--csv`, the console's export). */
export const auditCsvColumns = [
  'id',
  'time',
  'site',
  'client',
  'client_serial',
  'client_fingerprint',
  'client_role',
  'user',
  'remote_address',
  'method',
  'route',
  'url',
  'target',
  'session',
  'params',
  'status',
  'problem',
  'message',
  'duration_ms',
] as const;

/** One CSV field: quoted when it holds a comma, quote or line break; a leading `=+-@` is neutralized against spreadsheet formulas. */
export function csvField(value: string | number | null): string {
  if (value === null) return '';
  let text = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The audit trail as CSV (RFC 4180, CRLF line ends, a header line), one site's or several sites' entries. */
export function auditCsv(entries: Array<{ site: string; entry: AuditEntry }>): string {
  const lines = [auditCsvColumns.join(',')];
  for (const { site, entry } of entries) {
    lines.push(
      [
        entry.id,
        entry.time,
        site,
        entry.client?.subject ?? null,
        entry.client?.serial ?? null,
        entry.client?.fingerprint ?? null,
        entry.client?.role ?? null,
        entry.user,
        entry.remoteAddress,
        entry.method,
        entry.route,
        entry.url,
        entry.target,
        entry.session,
        entry.params === null ? null : JSON.stringify(entry.params),
        entry.status,
        entry.problem,
        entry.message,
        Math.round(entry.durationMs * 10) / 10,
      ]
        .map(csvField)
        .join(','),
    );
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** Who made a call, for people: `alice (console on alice-laptop)`, `local-admin alpha`, `no certificate`. */
export function auditWho(entry: Pick<AuditEntry, 'client' | 'user'>): string {
  const certificate = entry.client ? entry.client.subject || `serial ${entry.client.serial}` : 'no certificate';
  return entry.user ? `${entry.user} (${certificate})` : certificate;
}

/** What was called: `POST /v1/sessions/:name/actions/:action` (the URL when no route matched). */
export function auditAction(entry: Pick<AuditEntry, 'method' | 'route' | 'url'>): string {
  return `${entry.method} ${entry.route ?? entry.url.split('?')[0]}`;
}

/** The result: `201`, `409 invalid-state`. */
export function auditResult(entry: Pick<AuditEntry, 'status' | 'problem'>): string {
  return entry.problem ? `${entry.status} ${entry.problem}` : String(entry.status);
}
