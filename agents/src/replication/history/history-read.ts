import type { HistoryGap, HistoryPoint, SessionHealth } from '@tandem/contract';
import { sampleOfRun, sampleTimes, type HistorySample, type HistoryStore } from './history-store.ts';

export interface HistoryRange {
  from: number;
  to: number;
  maxPoints: number;
  /** The agent's sample interval (the finest resolution). */
  intervalMs: number;
  /** The agent's clock now: no gap is claimed beyond it. */
  now: number;
}

export interface HistoryAnswer {
  points: HistoryPoint[];
  gaps: HistoryGap[];
  resolutionMs: number;
}

/** Worst first when compared: severe > warning > normal > inactive (as a cluster consolidates health). */
const healthRank: Record<SessionHealth, number> = { inactive: 0, normal: 1, warning: 2, severe: 3 };

const iso = (ms: number) => new Date(ms).toISOString();

function toPoint(sample: HistorySample, samples: number): HistoryPoint {
  return {
    time: iso(sample.time),
    samples,
    state: sample.state,
    health: sample.health,
    consistencyTime: sample.consistency === null ? null : iso(sample.consistency),
    exposureSeconds: sample.exposure === null ? null : sample.exposure / 1000,
    outOfSyncTracks: sample.outOfSyncTracks,
    outOfSyncBytes: sample.outOfSyncBytes,
    peers: sample.peers,
    detail: sample.detail,
  };
}

/**
 * A bucket's samples as one point: the worst of them (largest exposure and
 * out-of-sync counts, worst health, oldest consistency time; state, peers
 * and detail of the latest worst-health sample), at its last sample's time.
 */
function worstOf(samples: HistorySample[]): HistoryPoint {
  let worst = samples[0];
  for (const sample of samples) if (healthRank[sample.health] >= healthRank[worst.health]) worst = sample;
  const max = (values: Array<number | null>) => values.reduce<number | null>((found, value) => (value === null ? found : found === null ? value : Math.max(found, value)), null);
  const min = (values: Array<number | null>) => values.reduce<number | null>((found, value) => (value === null ? found : found === null ? value : Math.min(found, value)), null);
  return toPoint(
    {
      ...worst,
      time: samples[samples.length - 1].time,
      exposure: max(samples.map((sample) => sample.exposure)),
      consistency: min(samples.map((sample) => sample.consistency)),
      outOfSyncTracks: max(samples.map((sample) => sample.outOfSyncTracks)) ?? 0,
      outOfSyncBytes: max(samples.map((sample) => sample.outOfSyncBytes)) ?? 0,
    },
    samples.length,
  );
}

/**
 * A session's history in [from, to]: its samples expanded from the runs, as
 * points (one per sample, or the worst of each bucket when there are more
 * than `maxPoints`), and the gaps: spans longer than the store's gap
 * threshold without a sample, also one reaching into the range from the
 * last sample before it, or from the last sample to `to` (up to now).
 */
export function readHistory(store: HistoryStore, sessionId: string, range: HistoryRange): HistoryAnswer {
  const { from, to } = range;
  const { runs, endBefore } = store.runs(sessionId, from, to);
  const samples: HistorySample[] = [];
  for (const run of runs) {
    for (const time of sampleTimes(run)) if (time >= from && time <= to) samples.push(sampleOfRun(run, time));
  }
  samples.sort((a, b) => a.time - b.time);

  const gaps: HistoryGap[] = [];
  let previous = endBefore;
  for (const sample of samples) {
    if (previous !== null && sample.time - previous > store.gapMs) gaps.push({ from: iso(Math.max(previous, from)), to: iso(sample.time) });
    previous = sample.time;
  }
  const end = Math.min(to, range.now);
  if (previous !== null && end - previous > store.gapMs) gaps.push({ from: iso(Math.max(previous, from)), to: iso(end) });

  if (samples.length <= range.maxPoints) {
    return { points: samples.map((sample) => toPoint(sample, 1)), gaps, resolutionMs: range.intervalMs };
  }
  // Buckets of whole sample intervals from `from`, few enough that the range needs at most maxPoints of them.
  const resolutionMs = Math.ceil((to - from) / range.maxPoints / range.intervalMs) * range.intervalMs;
  const points: HistoryPoint[] = [];
  let bucket: HistorySample[] = [];
  let bucketIndex = -1;
  for (const sample of samples) {
    const index = Math.min(range.maxPoints - 1, Math.floor((sample.time - from) / resolutionMs));
    if (index !== bucketIndex && bucket.length > 0) {
      points.push(worstOf(bucket));
      bucket = [];
    }
    bucketIndex = index;
    bucket.push(sample);
  }
  if (bucket.length > 0) points.push(worstOf(bucket));
  return { points, gaps, resolutionMs };
}
