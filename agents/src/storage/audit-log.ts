import type Database from 'better-sqlite3';
import { RoleSchema, type AuditEntry, type ProblemCode, type Role } from '@tandem/contract';

/** How the audit trail is bounded: the newest `maxRows` entries, none older than `maxDays` days. */
export interface AuditRetention {
  maxRows: number;
  maxDays: number;
}

/** Generous defaults: a year, a million calls (a few hundred MB at most). */
export const defaultAuditRetention: AuditRetention = { maxRows: 1_000_000, maxDays: 366 };

/** What `record` takes: an entry without its id. */
export type AuditRecord = Omit<AuditEntry, 'id'>;

export interface AuditQuery {
  /** ISO time: entries at or after it. */
  since?: string;
  limit: number;
  session?: string;
}

/**
 * The audit trail in the catalog's `audit_log` table (migration 11): one row
 * per state-changing control API call, written in its own transaction
 * before the call is answered (the catalog runs with `synchronous = FULL`),
 * so a caller that got an answer finds the call here, across a crash.
 */
export class AuditLog {
  private readonly insert: Database.Statement;
  private readonly pruneRows: Database.Statement;
  private readonly pruneAge: Database.Statement;

  constructor(
    private readonly db: Database.Database,
    readonly retention: AuditRetention = defaultAuditRetention,
  ) {
    this.insert = db.prepare(
      `INSERT INTO audit_log (time, time_ms, client_subject, client_serial, client_fingerprint, client_role, user_name, remote_address, method,
         route, url, target, session, params, status, problem, message, duration_ms)
       VALUES (@time, @timeMs, @clientSubject, @clientSerial, @clientFingerprint, @clientRole, @user, @remoteAddress, @method,
         @route, @url, @target, @session, @params, @status, @problem, @message, @durationMs)`,
    );
    this.pruneRows = db.prepare('DELETE FROM audit_log WHERE id <= ?');
    this.pruneAge = db.prepare('DELETE FROM audit_log WHERE time_ms < ?');
    this.prune();
  }

  record(entry: AuditRecord): number {
    // The row and the pruning it allows in one transaction: one fsync per call, the bound exact at all times.
    return this.db.transaction(() => {
      const result = this.insert.run({
        time: entry.time,
        timeMs: Date.parse(entry.time),
        clientSubject: entry.client?.subject ?? null,
        clientSerial: entry.client?.serial ?? null,
        clientFingerprint: entry.client?.fingerprint ?? null,
        clientRole: entry.client?.role ?? null,
        user: entry.user,
        remoteAddress: entry.remoteAddress,
        method: entry.method,
        route: entry.route,
        url: entry.url,
        target: entry.target,
        session: entry.session,
        params: entry.params === null ? null : JSON.stringify(entry.params),
        status: entry.status,
        problem: entry.problem,
        message: entry.message,
        durationMs: entry.durationMs,
      });
      const id = Number(result.lastInsertRowid);
      this.pruneRows.run(id - this.retention.maxRows);
      this.pruneAge.run(Date.now() - this.retention.maxDays * 86_400_000);
      return id;
    })();
  }

  /** Drops the entries beyond the retention: older than `maxDays`, or beyond the newest `maxRows`. */
  prune(now = Date.now()): void {
    this.pruneAge.run(now - this.retention.maxDays * 86_400_000);
    const newest = this.db.prepare('SELECT MAX(id) AS id FROM audit_log').get() as { id: number | null };
    if (newest.id !== null) this.pruneRows.run(newest.id - this.retention.maxRows);
  }

  /** The newest `limit` entries matching, oldest first; `truncated` when more matched. */
  list(query: AuditQuery): { entries: AuditEntry[]; truncated: boolean } {
    const where: string[] = [];
    const values: unknown[] = [];
    if (query.since !== undefined) {
      where.push('time_ms >= ?');
      values.push(Date.parse(query.since));
    }
    if (query.session !== undefined) {
      where.push('session = ?');
      values.push(query.session);
    }
    const rows = this.db
      .prepare(`SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`)
      .all(...values, query.limit + 1) as Array<Record<string, unknown>>;
    const truncated = rows.length > query.limit;
    if (truncated) rows.pop();
    rows.reverse();
    return { entries: rows.map(toEntry), truncated };
  }

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM audit_log').get() as { n: number }).n;
  }
}

const roleOf = (value: unknown): Role | null => {
  const parsed = RoleSchema.safeParse(value);
  return parsed.success ? parsed.data : null;
};

const text = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));

function toEntry(row: Record<string, unknown>): AuditEntry {
  return {
    id: Number(row.id),
    time: String(row.time),
    client:
      row.client_serial === null
        ? null
        : {
            subject: String(row.client_subject ?? ''),
            serial: String(row.client_serial),
            fingerprint: String(row.client_fingerprint ?? ''),
            role: roleOf(row.client_role),
          },
    user: text(row.user_name),
    remoteAddress: text(row.remote_address),
    method: String(row.method),
    route: text(row.route),
    url: String(row.url),
    target: text(row.target),
    session: text(row.session),
    params: typeof row.params === 'string' ? (JSON.parse(row.params) as Record<string, unknown>) : null,
    status: Number(row.status),
    problem: text(row.problem) as ProblemCode | null,
    message: text(row.message),
    durationMs: Number(row.duration_ms),
  };
}
