import type { Logger } from 'pino';
import { ProblemError, type AgentEvent, type SessionHistory, type SessionHistoryQuery, type SessionInfo } from '@tandem/contract';
import type { Catalog } from '../../storage/catalog.ts';
import type { SessionReader } from '../session-reader.ts';
import { readHistory } from './history-read.ts';
import { HistoryStore, type HistorySample } from './history-store.ts';

/** Seconds between samples (TANDEM_HISTORY_INTERVAL_MS overrides, for tests). */
export const DEFAULT_SAMPLE_INTERVAL_MS = 10_000;
/** Samples are kept 8 days: at least 7 days at full resolution, whatever the moment of the question. */
export const DEFAULT_RETENTION_MS = 8 * 24 * 3600_000;
/** The retention is applied this often. */
const PRUNE_EVERY_MS = 3600_000;

export interface SessionHistoryOptions {
  intervalMs?: number;
  retentionMs?: number;
}

/** What a sample keeps of a session view. */
export function sampleOf(info: SessionInfo): HistorySample {
  const time = Date.parse(info.observedAt);
  return {
    time,
    state: info.state,
    health: info.health,
    consistency: info.consistencyTime === null ? null : Date.parse(info.consistencyTime),
    exposure: info.exposureSeconds === null ? null : Math.round(info.exposureSeconds * 1000),
    outOfSyncTracks: info.pairs.reduce((sum, pair) => sum + pair.outOfSyncTracks, 0),
    outOfSyncBytes: info.pairs.reduce((sum, pair) => sum + pair.outOfSyncTracks * pair.trackSize, 0),
    peers: info.peers.map((peer) => ({ site: peer.site, link: peer.link, unreachableSince: peer.unreachableSince })),
    detail: info.detail,
  };
}

/**
 * The agent's own time series of every session: each interval it takes the
 * view `GET /v1/sessions/:name` would give (state, health, consistency time,
 * exposure, out-of-sync tracks and bytes, the peer links) and records it in
 * the catalog, compacted into runs (history-store.ts). Each state change
 * is sampled as it happens too, so a state shorter than the interval (a
 * suspension resumed within seconds) is in the history all the same. Nobody
 * has to watch for the history to exist, and it survives restarts; while
 * the agent is down there are no samples, which readers see as gaps.
 */
export class SessionHistoryRecorder {
  readonly store: HistoryStore;
  readonly intervalMs: number;
  readonly retentionMs: number;
  private timer: NodeJS.Timeout | null = null;
  private lastPrune = 0;
  private readonly onEvent = (event: AgentEvent) => {
    if (event.type === 'session.state' && event.subject !== null) this.sampleSession(event.subject);
  };

  constructor(
    private readonly service: SessionReader,
    private readonly catalog: Catalog,
    private readonly logger: Logger,
    options: SessionHistoryOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? (Number(process.env.TANDEM_HISTORY_INTERVAL_MS) || DEFAULT_SAMPLE_INTERVAL_MS);
    this.retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
    // A sample may come late on a busy agent; more than 2.5 intervals (at least 2 s) without one is a gap.
    this.store = new HistoryStore(catalog, this.intervalMs, Math.max(2.5 * this.intervalMs, this.intervalMs + 2000));
  }

  start(): void {
    if (this.timer) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
    this.catalog.events.on('event', this.onEvent);
  }

  /** Samples one session now (its state just changed); a session gone or not answering is left to the next interval. */
  private sampleSession(name: string): void {
    try {
      const session = this.service.session(name);
      this.store.record([{ sessionId: session.id, sample: sampleOf(this.service.info(session)) }]);
    } catch (error) {
      this.logger.debug({ session: name, error: error instanceof Error ? error.message : String(error) }, 'state change not sampled');
    }
  }

  /** Takes one sample of every session now (one broken session never keeps the others from being sampled). */
  sample(): void {
    const samples: Array<{ sessionId: string; sample: HistorySample }> = [];
    for (const session of this.service.sessions.values()) {
      try {
        samples.push({ sessionId: session.id, sample: sampleOf(this.service.info(session)) });
      } catch (error) {
        this.logger.debug({ session: session.name, error: error instanceof Error ? error.message : String(error) }, 'session not sampled');
      }
    }
    try {
      this.store.record(samples);
      const now = Date.now();
      if (now - this.lastPrune >= PRUNE_EVERY_MS) {
        this.lastPrune = now;
        this.store.prune(now - this.retentionMs);
      }
    } catch (error) {
      this.logger.warn({ error: error instanceof Error ? error.message : String(error) }, 'session history not recorded');
    }
  }

  /** A session's history as `GET /v1/sessions/:name/history` answers it. */
  history(name: string, query: SessionHistoryQuery): SessionHistory {
    const session = this.service.session(name);
    const now = Date.now();
    const to = query.to === undefined ? now : Date.parse(query.to);
    const from = query.from === undefined ? to - 3600_000 : Date.parse(query.from);
    if (!(from < to)) throw new ProblemError('bad-request', 'query.from: from must be before to');
    const answer = readHistory(this.store, session.id, { from, to, maxPoints: query.maxPoints, intervalMs: this.intervalMs, now });
    return {
      session: session.name,
      sessionId: session.id,
      site: this.service.site,
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      sampleIntervalSeconds: this.intervalMs / 1000,
      resolutionSeconds: answer.resolutionMs / 1000,
      retentionSeconds: this.retentionMs / 1000,
      points: answer.points,
      gaps: answer.gaps,
    };
  }

  close(): void {
    this.catalog.events.off('event', this.onEvent);
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
