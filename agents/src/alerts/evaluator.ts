import type { Logger } from 'pino';
import {
  alertEventTypes,
  type AgentEvent,
  type AgentInfo,
  type Alert,
  type AlertList,
  type PoolStats,
  type SessionInfo,
} from '@tandem/contract';
import type { SessionReader } from '../replication/session-reader.ts';
import type { SessionRecord } from '../replication/session-store.ts';
import type { Catalog } from '../storage/catalog.ts';
import { evaluateRules, type Backlog, type Condition, type JournalWarningInput } from './rules.ts';
import { AlertStore, effectiveThresholds } from './store.ts';
import { WebhookNotifier, type WebhookOptions } from './webhook.ts';

/**
 * Where the rules read the agent's state: the same views the control API
 * and the metrics read (metrics/state.ts StateSources), plus the async
 * backlog of a session's shipper.
 */
export interface AlertSources {
  agent(): AgentInfo;
  sessions: SessionReader;
  pool(): Promise<PoolStats>;
  /** An async session's queued bytes and its limit at this agent (undefined: none here). */
  backlog(session: SessionRecord): Backlog | undefined;
  /** The warnings of the session's CDP journal at this agent (undefined: none here). */
  journal?(session: SessionRecord): JournalWarningInput[] | undefined;
}

export interface AlertTiming {
  /** Time between evaluations, ms (default 5 s; TANDEM_ALERT_INTERVAL_MS). Relevant events also trigger one. */
  intervalMs: number;
  /** A condition must stay away this long before its alert clears, ms (default 10 s; TANDEM_ALERT_CLEAR_MS). */
  clearAfterMs: number;
  /** The clock the rules and the clear delay read (Date.now; tests pass their own). */
  now?: () => number;
}

export const defaultAlertTiming: AlertTiming = { intervalMs: 5000, clearAfterMs: 10_000 };

/** The timing from TANDEM_ALERT_INTERVAL_MS and TANDEM_ALERT_CLEAR_MS (tests run them fast), else the defaults. */
export function alertTimingFromEnv(env: NodeJS.ProcessEnv = process.env): AlertTiming {
  const read = (name: string, fallback: number) => {
    const value = Number(env[name]);
    return Number.isFinite(value) && value >= 10 ? value : fallback;
  };
  return { intervalMs: read('TANDEM_ALERT_INTERVAL_MS', defaultAlertTiming.intervalMs), clearAfterMs: read('TANDEM_ALERT_CLEAR_MS', defaultAlertTiming.clearAfterMs) };
}

/** Event families after which the rules run again at once (a state change, a link, a verify). */
const triggerPrefixes = ['session.', 'pair.', 'link.', 'peer.'];
/** Events within this much of each other make one evaluation. */
const TRIGGER_QUIET_MS = 100;

/**
 * Runs the alert rules periodically and after relevant events, and turns
 * their findings into alerts: a condition seen for the first time is raised
 * (a row, an `alert.raised` event, a webhook POST); an active alert whose
 * condition stays away for `clearAfterMs` is cleared (`alert.cleared`).
 * Between the two it is carried on unchanged (same id and raise time), also
 * across a restart: active alerts are rows, and a condition that still
 * holds after the restart keeps its alert. Value rules clear only once back
 * under their threshold by a band (rules.ts), and the clear delay absorbs
 * state that flaps, so a flapping link raises once.
 */
export class AlertEvaluator {
  readonly store: AlertStore;
  private readonly webhook: WebhookNotifier;
  private timer: NodeJS.Timeout | null = null;
  private triggerTimer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private closed = false;
  /** Active alert key -> when its condition was last missing from a run that saw it absent (cleared after clearAfterMs). */
  private readonly missingSince = new Map<string, number>();
  private evaluatedAt: string | null = null;
  private readonly onEvent = (event: AgentEvent) => {
    if (triggerPrefixes.some((prefix) => event.type.startsWith(prefix))) this.trigger();
  };

  constructor(
    private readonly catalog: Catalog,
    private readonly sources: AlertSources,
    private readonly logger: Logger,
    readonly timing: AlertTiming = defaultAlertTiming,
    webhookOptions: WebhookOptions = {},
  ) {
    this.store = new AlertStore(catalog.db, () => sources.agent().site);
    this.webhook = new WebhookNotifier(logger.child({ part: 'webhook' }), webhookOptions);
  }

  start(): void {
    this.catalog.events.on('event', this.onEvent);
    const tick = () => {
      this.timer = setTimeout(() => {
        void this.evaluate().finally(() => {
          if (!this.closed) tick();
        });
      }, this.timing.intervalMs);
      this.timer.unref();
    };
    tick();
    this.trigger();
  }

  /** An evaluation soon (events come in bursts: one run per burst). */
  trigger(): void {
    if (this.closed || this.triggerTimer) return;
    this.triggerTimer = setTimeout(() => {
      this.triggerTimer = null;
      void this.evaluate();
    }, TRIGGER_QUIET_MS);
    this.triggerTimer.unref();
  }

  /** Runs the rules once (one run at a time; a call during a run makes one more after it). */
  evaluate(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.evaluateOnce();
        } while (this.again && !this.closed);
      } catch (error) {
        this.logger.warn({ err: error }, 'alert evaluation failed');
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  private async evaluateOnce(): Promise<void> {
    const pool = await this.sources.pool().catch((error: unknown) => {
      this.logger.debug({ err: error }, 'alerts: pool not read');
      return null;
    });
    if (this.closed) return;
    const settings = this.store.settings();
    const own = this.store.allOwnThresholds();
    const unread = new Set<string>();
    const sessions: Parameters<typeof evaluateRules>[0]['sessions'] = [];
    for (const record of this.sources.sessions.sessions.values()) {
      let info: SessionInfo;
      try {
        info = this.sources.sessions.info(record);
      } catch (error) {
        // Not read this time: its alerts stay as they are (never cleared for want of a reading).
        unread.add(record.name);
        this.logger.debug({ err: error, session: record.name }, 'alerts: session not read');
        continue;
      }
      const thresholds = effectiveThresholds(own.get(record.id) ?? { rpoTargetSeconds: null, linkDownSeconds: null, backlogPercent: null, enabled: null }, settings.sessionDefaults);
      sessions.push({ info, thresholds, backlog: this.sources.backlog(record), journal: this.sources.journal?.(record) });
    }
    const activeAlerts = this.store.active();
    const active = new Map(activeAlerts.map((alert) => [alert.key, alert]));
    const now = (this.timing.now ?? Date.now)();
    const conditions = evaluateRules({ now, sessions, pool, poolFullPercent: settings.poolFullPercent, active: new Set(active.keys()) });
    const seen = new Map<string, Condition>(conditions.map((condition) => [condition.key, condition]));
    const nowIso = new Date(now).toISOString();

    for (const condition of seen.values()) {
      this.missingSince.delete(condition.key);
      const current = active.get(condition.key);
      if (current) {
        if (current.message !== condition.message || current.value !== condition.value) this.store.update(current.id, condition.message, condition.value);
        continue;
      }
      const alert = this.store.raise({ ...condition, raisedAt: nowIso });
      this.publish('raised', alert);
    }
    for (const alert of activeAlerts) {
      if (seen.has(alert.key)) continue;
      if (alert.subject.kind === 'pool' ? pool === null : alert.subject.session !== null && unread.has(alert.subject.session)) continue;
      const missing = this.missingSince.get(alert.key);
      if (missing === undefined) {
        this.missingSince.set(alert.key, now);
        continue;
      }
      if (now - missing < this.timing.clearAfterMs) continue;
      this.missingSince.delete(alert.key);
      const cleared = this.store.clear(alert.id, nowIso);
      if (cleared) this.publish('cleared', cleared);
    }
    // Keys no longer active need no clear timer.
    for (const key of this.missingSince.keys()) if (!active.has(key)) this.missingSince.delete(key);
    this.evaluatedAt = nowIso;
    // Waiting to clear: look again when the delay is over rather than at the next tick.
    if (this.missingSince.size > 0 && !this.closed) {
      const soonest = Math.min(...this.missingSince.values()) + this.timing.clearAfterMs - now;
      if (soonest < this.timing.intervalMs) setTimeout(() => this.trigger(), Math.max(soonest, 0) + 5).unref();
    }
  }

  private publish(event: 'raised' | 'cleared', alert: Alert): void {
    const type = event === 'raised' ? alertEventTypes.raised : alertEventTypes.cleared;
    const severity = event === 'cleared' ? 'info' : alert.severity === 'critical' ? 'error' : 'warning';
    const message = event === 'raised' ? `alert: ${alert.message}` : `alert cleared: ${alert.message}`;
    this.catalog.recordEvent(type, severity, alert.subject.session ?? alert.subject.kind, message, { alert });
    this.logger.info({ alert: alert.key, severity: alert.severity }, event === 'raised' ? 'alert raised' : 'alert cleared');
    const url = this.store.settings().webhookUrl;
    if (url) {
      const agent = this.sources.agent();
      this.webhook.send(url, { event, site: agent.site, agentId: agent.agentId, alert, sentAt: new Date().toISOString() });
    }
  }

  /** `GET /v1/alerts`: active alerts and the `recent` cleared last, of one session or all. */
  list(query: { recent: number; session?: string }): AlertList {
    const about = (alert: Alert) => query.session === undefined || alert.subject.session === query.session;
    return {
      site: this.sources.agent().site,
      active: this.store.active().filter(about),
      recent: this.store.recent(query.session === undefined ? query.recent : Math.max(query.recent * 10, 1000)).filter(about).slice(0, query.recent),
      evaluatedAt: this.evaluatedAt,
    };
  }

  /** Stops evaluating and sending; waits for a run under way. */
  async close(): Promise<void> {
    this.closed = true;
    this.catalog.events.off('event', this.onEvent);
    if (this.timer) clearTimeout(this.timer);
    if (this.triggerTimer) clearTimeout(this.triggerTimer);
    this.webhook.close();
    await this.running;
  }
}
