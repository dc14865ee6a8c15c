import type Database from 'better-sqlite3';
import {
  AlertSettingsSchema,
  defaultAlertSettings,
  type Alert,
  type AlertKind,
  type AlertSettings,
  type AlertSeverity,
  type AlertSubject,
  type SessionAlertThresholds,
  type SessionAlertThresholdsView,
  type SetAlertSettingsRequest,
  type SetSessionAlertThresholdsRequest,
} from '@tandem/contract';

/** A session's own thresholds as stored: null fields inherit the site defaults. */
export type OwnThresholds = SessionAlertThresholdsView['own'];

const noOwnThresholds: OwnThresholds = { rpoTargetSeconds: null, linkDownSeconds: null, backlogPercent: null, enabled: null };

/** Cleared alerts kept in the catalog; older ones are pruned. */
const CLEARED_RETENTION = 5000;

interface AlertRow {
  id: number;
  key: string;
  kind: string;
  severity: string;
  subject: string;
  message: string;
  raised_at: string;
  cleared_at: string | null;
  value: number | null;
  threshold: number | null;
}

/** What a raise writes (the rest is the row's id and, later, its clear). */
export interface NewAlert {
  key: string;
  kind: AlertKind;
  severity: AlertSeverity;
  subject: AlertSubject;
  message: string;
  raisedAt: string;
  value: number | null;
  threshold: number | null;
}

/**
 * The alerts' durable state in the catalog (migration 12): every raise with
 * its clear, per-session thresholds and the site settings. Active alerts are
 * the rows not cleared yet, so a restart finds them as it left them and the
 * evaluator carries them on (same id, same raise time) or clears them.
 */
export class AlertStore {
  constructor(
    private readonly db: Database.Database,
    private readonly site: () => string,
  ) {}

  private toAlert(row: AlertRow): Alert {
    return {
      id: row.id,
      key: row.key,
      kind: row.kind as AlertKind,
      severity: row.severity as AlertSeverity,
      site: this.site(),
      subject: JSON.parse(row.subject) as AlertSubject,
      message: row.message,
      raisedAt: row.raised_at,
      clearedAt: row.cleared_at,
      value: row.value,
      threshold: row.threshold,
    };
  }

  /** Active alerts, newest raise first. */
  active(): Alert[] {
    return (this.db.prepare('SELECT * FROM alerts WHERE cleared_at IS NULL ORDER BY id DESC').all() as AlertRow[]).map((row) => this.toAlert(row));
  }

  /** Cleared alerts, the `limit` cleared last, newest first. */
  recent(limit: number): Alert[] {
    if (limit <= 0) return [];
    return (this.db.prepare('SELECT * FROM alerts WHERE cleared_at IS NOT NULL ORDER BY cleared_at DESC, id DESC LIMIT ?').all(limit) as AlertRow[]).map((row) =>
      this.toAlert(row),
    );
  }

  raise(alert: NewAlert): Alert {
    const result = this.db
      .prepare('INSERT INTO alerts (key, kind, severity, subject, message, raised_at, cleared_at, value, threshold) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)')
      .run(alert.key, alert.kind, alert.severity, JSON.stringify(alert.subject), alert.message, alert.raisedAt, alert.value, alert.threshold);
    return { id: Number(result.lastInsertRowid), site: this.site(), clearedAt: null, ...alert };
  }

  /** The newest message and value of an active alert (no event: the alert is the same). */
  update(id: number, message: string, value: number | null): void {
    this.db.prepare('UPDATE alerts SET message = ?, value = ? WHERE id = ? AND cleared_at IS NULL').run(message, value, id);
  }

  clear(id: number, clearedAt: string): Alert | null {
    this.db.prepare('UPDATE alerts SET cleared_at = ? WHERE id = ? AND cleared_at IS NULL').run(clearedAt, id);
    const row = this.db.prepare('SELECT * FROM alerts WHERE id = ?').get(id) as AlertRow | undefined;
    if (id % 100 === 0) {
      this.db
        .prepare('DELETE FROM alerts WHERE cleared_at IS NOT NULL AND id NOT IN (SELECT id FROM alerts WHERE cleared_at IS NOT NULL ORDER BY id DESC LIMIT ?)')
        .run(CLEARED_RETENTION);
    }
    return row ? this.toAlert(row) : null;
  }

  settings(): AlertSettings {
    const row = this.db.prepare('SELECT settings FROM alert_settings WHERE id = 1').get() as { settings: string } | undefined;
    if (!row) return structuredClone(defaultAlertSettings);
    const parsed = AlertSettingsSchema.safeParse(JSON.parse(row.settings));
    return parsed.success ? parsed.data : structuredClone(defaultAlertSettings);
  }

  /** Merges `change` into the site settings and returns them. */
  setSettings(change: SetAlertSettingsRequest): AlertSettings {
    const current = this.settings();
    const next: AlertSettings = {
      poolFullPercent: change.poolFullPercent ?? current.poolFullPercent,
      webhookUrl: change.webhookUrl === undefined ? current.webhookUrl : change.webhookUrl,
      sessionDefaults: {
        rpoTargetSeconds:
          change.sessionDefaults?.rpoTargetSeconds === undefined ? current.sessionDefaults.rpoTargetSeconds : change.sessionDefaults.rpoTargetSeconds,
        linkDownSeconds: change.sessionDefaults?.linkDownSeconds ?? current.sessionDefaults.linkDownSeconds,
        backlogPercent: change.sessionDefaults?.backlogPercent ?? current.sessionDefaults.backlogPercent,
        enabled: change.sessionDefaults?.enabled ?? current.sessionDefaults.enabled,
      },
    };
    this.db
      .prepare('INSERT INTO alert_settings (id, settings, updated_at) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at')
      .run(JSON.stringify(next), new Date().toISOString());
    return next;
  }

  ownThresholds(sessionId: string): OwnThresholds {
    const row = this.db
      .prepare('SELECT rpo_target_seconds, link_down_seconds, backlog_percent, enabled FROM alert_thresholds WHERE session_id = ?')
      .get(sessionId) as { rpo_target_seconds: number | null; link_down_seconds: number | null; backlog_percent: number | null; enabled: number | null } | undefined;
    if (!row) return { ...noOwnThresholds };
    return {
      rpoTargetSeconds: row.rpo_target_seconds,
      linkDownSeconds: row.link_down_seconds,
      backlogPercent: row.backlog_percent,
      enabled: row.enabled === null ? null : row.enabled === 1,
    };
  }

  /** Every session's own thresholds, by session id (one read per evaluation). */
  allOwnThresholds(): Map<string, OwnThresholds> {
    const rows = this.db.prepare('SELECT session_id FROM alert_thresholds').all() as Array<{ session_id: string }>;
    return new Map(rows.map((row) => [row.session_id, this.ownThresholds(row.session_id)]));
  }

  /** Merges `change` into the session's own thresholds (null resets a field to the default). */
  setOwnThresholds(sessionId: string, change: SetSessionAlertThresholdsRequest): OwnThresholds {
    const current = this.ownThresholds(sessionId);
    const pick = <K extends keyof OwnThresholds>(key: K): OwnThresholds[K] => (change[key] === undefined ? current[key] : (change[key] as OwnThresholds[K]));
    const next: OwnThresholds = {
      rpoTargetSeconds: pick('rpoTargetSeconds'),
      linkDownSeconds: pick('linkDownSeconds'),
      backlogPercent: pick('backlogPercent'),
      enabled: pick('enabled'),
    };
    this.db
      .prepare(
        `INSERT INTO alert_thresholds (session_id, rpo_target_seconds, link_down_seconds, backlog_percent, enabled, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (session_id) DO UPDATE SET rpo_target_seconds = excluded.rpo_target_seconds, link_down_seconds = excluded.link_down_seconds,
           backlog_percent = excluded.backlog_percent, enabled = excluded.enabled, updated_at = excluded.updated_at`,
      )
      .run(sessionId, next.rpoTargetSeconds, next.linkDownSeconds, next.backlogPercent, next.enabled === null ? null : next.enabled ? 1 : 0, new Date().toISOString());
    return next;
  }
}

/** What is in effect: the session's own value, else the site default. */
export function effectiveThresholds(own: OwnThresholds, defaults: SessionAlertThresholds): SessionAlertThresholds {
  return {
    rpoTargetSeconds: own.rpoTargetSeconds ?? defaults.rpoTargetSeconds,
    linkDownSeconds: own.linkDownSeconds ?? defaults.linkDownSeconds,
    backlogPercent: own.backlogPercent ?? defaults.backlogPercent,
    enabled: own.enabled ?? defaults.enabled,
  };
}
