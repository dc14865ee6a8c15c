import type { HistoryPeer, SessionHealth, SessionState } from '@tandem/contract';
import type { Catalog } from '../../storage/catalog.ts';

/** One sample of a session as the agent saw it (times in ms since the epoch). */
export interface HistorySample {
  time: number;
  state: SessionState;
  health: SessionHealth;
  consistency: number | null;
  /** Exposure in ms (null without a consistency time). */
  exposure: number | null;
  outOfSyncTracks: number;
  outOfSyncBytes: number;
  peers: HistoryPeer[];
  detail: string | null;
}

/**
 * How the exposure moves inside a run. `frozen`: the consistency time is the
 * same in every sample (a suspended or silent mirror: exposure grows with
 * the clock, exactly). `steady`: the exposure is the same to 0.1 s (a
 * mirror keeping up: the consistency time moves with the clock). A run of
 * one sample has no trend yet: the second sample decides it.
 */
export type RunTrend = 'single' | 'frozen' | 'steady';

/** Samples of one session, equal but for time, taken back to back at the sample interval. */
export interface HistoryRun {
  id: number;
  sessionId: string;
  start: number;
  end: number;
  samples: number;
  trend: RunTrend;
  /** The first sample's (the others follow from the trend). */
  first: HistorySample;
}

/** Exposures equal to this many ms are the same for a steady run. */
const EXPOSURE_STEP_MS = 100;

const sameExposure = (a: number | null, b: number | null) =>
  a === null || b === null ? a === b : Math.round(a / EXPOSURE_STEP_MS) === Math.round(b / EXPOSURE_STEP_MS);

/**
 * Whether `sample` continues `run`, and with which trend: everything but the
 * time equal, the exposure as the trend says, and taken one step after the
 * run's last sample (the run's own step, or the sample interval, give or take
 * half of it: readers spread a run's samples evenly from its start to its end).
 */
function continues(run: HistoryRun, sample: HistorySample, peersJson: string, intervalMs: number): RunTrend | null {
  const first = run.first;
  const step = run.samples > 1 ? (run.end - run.start) / (run.samples - 1) : intervalMs;
  if (Math.abs(sample.time - run.end - step) > step / 2) return null;
  if (
    sample.state !== first.state ||
    sample.health !== first.health ||
    sample.outOfSyncTracks !== first.outOfSyncTracks ||
    sample.outOfSyncBytes !== first.outOfSyncBytes ||
    sample.detail !== first.detail ||
    peersJson !== JSON.stringify(first.peers)
  ) {
    return null;
  }
  const frozen = sample.consistency === first.consistency;
  const steady = sample.consistency !== null && first.consistency !== null && sameExposure(sample.exposure, first.exposure);
  if (run.trend === 'frozen') return frozen ? 'frozen' : null;
  if (run.trend === 'steady') return steady ? 'steady' : null;
  return frozen ? 'frozen' : steady ? 'steady' : null;
}

/** The sample at `time` inside a run (times between its first and last sample). */
export function sampleOfRun(run: HistoryRun, time: number): HistorySample {
  const first = run.first;
  if (run.trend === 'steady') return { ...first, time, consistency: first.exposure === null ? null : time - first.exposure };
  return { ...first, time, exposure: first.consistency === null ? null : Math.max(0, time - first.consistency) };
}

/** The times of a run's samples: evenly spread from its start to its end. */
export function sampleTimes(run: HistoryRun): number[] {
  if (run.samples === 1) return [run.start];
  const step = (run.end - run.start) / (run.samples - 1);
  return Array.from({ length: run.samples }, (_, index) => (index === run.samples - 1 ? run.end : Math.round(run.start + index * step)));
}

function toRun(row: Record<string, unknown>): HistoryRun {
  const start = Number(row.start_ms);
  return {
    id: Number(row.id),
    sessionId: String(row.session_id),
    start,
    end: Number(row.end_ms),
    samples: Number(row.samples),
    trend: row.trend as RunTrend,
    first: {
      time: start,
      state: row.state as SessionState,
      health: row.health as SessionHealth,
      consistency: row.consistency_ms === null ? null : Number(row.consistency_ms),
      exposure: row.exposure_ms === null ? null : Number(row.exposure_ms),
      outOfSyncTracks: Number(row.out_of_sync_tracks),
      outOfSyncBytes: Number(row.out_of_sync_bytes),
      peers: JSON.parse(String(row.peers)) as HistoryPeer[],
      detail: row.detail === null ? null : String(row.detail),
    },
  };
}

/**
 * Session samples in the catalog (`session_history`), compacted as they
 * arrive: a sample equal to the previous one but for its time (and a
 * consistency time or exposure that follows the run's trend), one step
 * later, extends that run instead of adding a row. Otherwise it starts a
 * new run; the reader reports more than `gapMs` between two samples as a
 * gap.
 */
export class HistoryStore {
  /** The open run of each session (the one a next sample may extend); a restart opens new ones. */
  private readonly open = new Map<string, HistoryRun>();

  constructor(
    private readonly catalog: Catalog,
    /** The sample interval. */
    readonly intervalMs: number,
    /** Longer than this without a sample is a gap (the agent was not running). */
    readonly gapMs: number,
  ) {}

  /** Records one sample per session, in one transaction. */
  record(samples: Array<{ sessionId: string; sample: HistorySample }>): void {
    const db = this.catalog.db;
    const insert = db.prepare(
      `INSERT INTO session_history (session_id, start_ms, end_ms, samples, trend, state, health, consistency_ms, exposure_ms,
         out_of_sync_tracks, out_of_sync_bytes, peers, detail) VALUES (?, ?, ?, 1, 'single', ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const extend = db.prepare('UPDATE session_history SET end_ms = ?, samples = ?, trend = ? WHERE id = ?');
    db.transaction(() => {
      for (const { sessionId, sample } of samples) {
        const peersJson = JSON.stringify(sample.peers);
        const run = this.open.get(sessionId);
        const trend = run ? continues(run, sample, peersJson, this.intervalMs) : null;
        if (run && trend) {
          run.end = sample.time;
          run.samples++;
          run.trend = trend;
          extend.run(run.end, run.samples, run.trend, run.id);
          continue;
        }
        const result = insert.run(
          sessionId,
          sample.time,
          sample.time,
          sample.state,
          sample.health,
          sample.consistency,
          sample.exposure,
          sample.outOfSyncTracks,
          sample.outOfSyncBytes,
          peersJson,
          sample.detail,
        );
        this.open.set(sessionId, { id: Number(result.lastInsertRowid), sessionId, start: sample.time, end: sample.time, samples: 1, trend: 'single', first: sample });
      }
    })();
  }

  /** A session's runs that reach into [from, to], oldest first, and the end of the last run before `from` (null: none). */
  runs(sessionId: string, from: number, to: number): { runs: HistoryRun[]; endBefore: number | null } {
    const db = this.catalog.db;
    const rows = db
      .prepare('SELECT * FROM session_history WHERE session_id = ? AND end_ms >= ? AND start_ms <= ? ORDER BY start_ms, id')
      .all(sessionId, from, to) as Array<Record<string, unknown>>;
    const before = db.prepare('SELECT MAX(end_ms) AS end FROM session_history WHERE session_id = ? AND end_ms < ?').get(sessionId, from) as {
      end: number | null;
    };
    return { runs: rows.map(toRun), endBefore: before.end === null ? null : Number(before.end) };
  }

  /** Forgets runs that ended before `before` (retention). Returns how many rows went. */
  prune(before: number): number {
    for (const [sessionId, run] of this.open) if (run.end < before) this.open.delete(sessionId);
    return this.catalog.db.prepare('DELETE FROM session_history WHERE end_ms < ?').run(before).changes;
  }

  /** How many rows (runs) a session has: what compaction leaves of its samples. */
  rowCount(sessionId?: string): number {
    const db = this.catalog.db;
    const row = (
      sessionId === undefined
        ? db.prepare('SELECT COUNT(*) AS count FROM session_history').get()
        : db.prepare('SELECT COUNT(*) AS count FROM session_history WHERE session_id = ?').get(sessionId)
    ) as { count: number };
    return Number(row.count);
  }
}
