import type { CdpPoint } from '../storage/cdp-meta.ts';
import { NO_EXTENT } from '../storage/metadata.ts';
import type { CdpJournal } from './journal.ts';

/**
 * Retention of a journal's points: which to keep (every point of the last
 * hour, one a minute for a day, one an hour for a week, by default;
 * bookmarks as long as the administrator says), the byte budget of the
 * journal's space in the pool, and the status an administrator watches
 * (usage, the window covered, warnings at 85 % and 75 % of the required
 * window and when the journal is nearly full).
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export interface RetentionTier {
  /** Points up to this age fall in the tier. */
  ageMs: number;
  /** Keep the last point of every interval this long (0: every point). */
  everyMs: number;
}

export interface RetentionPolicy {
  /** The protection window the administrator requires. */
  requiredWindowMs: number;
  /** The journal's space in the pool: do and undo extents it may hold. */
  budgetBytes: number;
  /** By age, youngest first; points older than the last tier are dropped. */
  tiers: RetentionTier[];
  /** Bookmarks are kept this long whatever the tiers say (Infinity: until space runs out). */
  bookmarkMs: number;
}

export const DEFAULT_TIERS: RetentionTier[] = [
  { ageMs: HOUR, everyMs: 0 },
  { ageMs: DAY, everyMs: MINUTE },
  { ageMs: 7 * DAY, everyMs: HOUR },
];

export interface RetentionResult {
  /** Points dropped by age or consolidation. */
  droppedPoints: number;
  /** Points dropped because the journal was over its budget. */
  droppedForSpace: number;
  /** Extents the journal held before and after (freed ones are reused once durable). */
  heldBefore: number;
  heldAfter: number;
}

/** The points the policy keeps at `nowMs` (the newest always). */
export function pointsToKeep(points: CdpPoint[], policy: RetentionPolicy, nowMs: number): Set<CdpPoint> {
  const keep = new Set<CdpPoint>();
  /** Per tier and interval: the last point seen (points come oldest first). */
  const lastInBucket = new Map<string, CdpPoint>();
  for (const point of points) {
    const age = Math.max(0, nowMs - point.timeMs);
    if (point.name !== null && age <= policy.bookmarkMs) {
      keep.add(point);
      continue;
    }
    const tier = policy.tiers.findIndex((t) => age <= t.ageMs);
    if (tier < 0) continue;
    const every = policy.tiers[tier].everyMs;
    if (every <= 0) {
      keep.add(point);
      continue;
    }
    lastInBucket.set(`${tier}:${Math.floor(point.timeMs / every)}`, point);
  }
  for (const point of lastInBucket.values()) keep.add(point);
  if (points.length > 0) keep.add(points[points.length - 1]);
  return keep;
}

/**
 * Points as an administrator lists them: every bookmark, and of the plain
 * points (sync and semi-sync mark one per write) the last of each `everyMs`.
 */
export function coalescePoints(points: CdpPoint[], everyMs: number): CdpPoint[] {
  const listed: CdpPoint[] = [];
  for (const point of points) {
    const last = listed[listed.length - 1];
    if (point.name === null && last && last.name === null && Math.floor(last.timeMs / everyMs) === Math.floor(point.timeMs / everyMs)) {
      listed[listed.length - 1] = point;
    } else {
      listed.push(point);
    }
  }
  return listed.map((point) => ({ ...point }));
}

/**
 * Applies the policy: consolidates between kept points over distributed
 * records, drops the points before the oldest kept one, then, while the
 * journal holds more than its budget, drops the oldest kept points too
 * (bookmarks included: the journal must not overflow). Points an open
 * image reads are never passed.
 */
export async function applyRetention(journal: CdpJournal, policy: RetentionPolicy, nowMs = Date.now()): Promise<RetentionResult> {
  const trackSize = journal.trackSize;
  const heldBefore = journal.meta.heldExtents;
  const before = journal.points().length;
  const points = journal.meta.points.slice();
  const keep = pointsToKeep(points, policy, nowMs);
  const kept = points.filter((point) => keep.has(point));
  // Consolidate each stretch between two kept points that drops some in between (one record, one pass).
  const ranges = [];
  let at = 0;
  for (let i = 0; i + 1 < kept.length; i++) {
    const from = kept[i].seq;
    const to = kept[i + 1].seq;
    while (at < points.length && points[at].seq <= from) at++;
    if (at < points.length && points[at].seq < to) ranges.push({ from, to });
  }
  if (ranges.length > 0) await journal.consolidate(ranges);
  // No point at all: no image needs any undo.
  await journal.release(kept.length > 0 ? kept[0].seq : journal.meta.lastSeq);
  const afterAge = journal.points().length;
  let droppedForSpace = 0;
  while (journal.meta.heldExtents * trackSize > policy.budgetBytes) {
    const current = journal.meta.points;
    const next = current.find((point) => point.seq > current[0].seq);
    if (!next) break;
    const count = current.length;
    await journal.release(next.seq);
    const dropped = count - journal.meta.points.length;
    // None dropped: an open image reads at the oldest point.
    if (dropped === 0) break;
    droppedForSpace += dropped;
    journal.spaceDropAtMs = nowMs;
  }
  return {
    droppedPoints: before - afterAge,
    droppedForSpace,
    heldBefore,
    heldAfter: journal.meta.heldExtents,
  };
}

export type JournalWarning =
  | { level: 'warning' | 'severe'; code: 'window-short'; percent: 85 | 75; message: string }
  | { level: 'warning'; code: 'nearly-full'; message: string };

export interface JournalStatus {
  usedBytes: number;
  budgetBytes: number;
  /** Of usedBytes: data not yet distributed to the replica. */
  pendingBytes: number;
  pendingRecords: number;
  pointCount: number;
  bookmarkCount: number;
  oldestPoint: CdpPoint | null;
  newestPoint: CdpPoint | null;
  /** How far back the oldest point reaches. */
  coveredWindowMs: number;
  requiredWindowMs: number;
  /**
   * The window the journal can hold: what it covers when retention had to
   * drop points for space, else what it covers scaled to the full budget
   * (the rate so far going on).
   */
  predictedWindowMs: number;
  warnings: JournalWarning[];
}

/** Fraction of the budget from which the journal counts as nearly full. */
export const NEARLY_FULL = 0.9;

export function journalStatus(journal: CdpJournal, policy: RetentionPolicy, nowMs = Date.now()): JournalStatus {
  const meta = journal.meta;
  const trackSize = journal.trackSize;
  const usedBytes = meta.heldExtents * trackSize;
  let pendingExtents = 0;
  const pendingSeqs = new Set<number>();
  for (const entry of meta.pending) {
    if (entry.extent !== NO_EXTENT) pendingExtents++;
    pendingSeqs.add(entry.seq);
  }
  const points = meta.points;
  const oldest = points[0] ?? null;
  const newest = points[points.length - 1] ?? null;
  const coveredWindowMs = oldest ? Math.max(0, nowMs - oldest.timeMs) : 0;
  const predictedWindowMs =
    journal.spaceDropAtMs > 0 ? coveredWindowMs : usedBytes > 0 ? (coveredWindowMs * policy.budgetBytes) / usedBytes : Infinity;
  const warnings: JournalWarning[] = [];
  const required = policy.requiredWindowMs;
  const fmt = (ms: number) => (ms >= HOUR ? `${(ms / HOUR).toFixed(1)} h` : `${Math.round(ms / MINUTE)} min`);
  if (predictedWindowMs < 0.75 * required) {
    warnings.push({ level: 'severe', code: 'window-short', percent: 75, message: `the journal holds about ${fmt(predictedWindowMs)}, under 75 % of the required ${fmt(required)}` });
  } else if (predictedWindowMs < 0.85 * required) {
    warnings.push({ level: 'warning', code: 'window-short', percent: 85, message: `the journal holds about ${fmt(predictedWindowMs)}, under 85 % of the required ${fmt(required)}` });
  }
  if (usedBytes >= NEARLY_FULL * policy.budgetBytes) {
    warnings.push({ level: 'warning', code: 'nearly-full', message: `the journal uses ${Math.round((100 * usedBytes) / policy.budgetBytes)} % of its space` });
  }
  return {
    usedBytes,
    budgetBytes: policy.budgetBytes,
    pendingBytes: pendingExtents * trackSize,
    pendingRecords: pendingSeqs.size,
    pointCount: points.length,
    bookmarkCount: points.filter((point) => point.name !== null).length,
    oldestPoint: oldest ? { ...oldest } : null,
    newestPoint: newest ? { ...newest } : null,
    coveredWindowMs,
    requiredWindowMs: required,
    predictedWindowMs,
    warnings,
  };
}
