import type { JournalPoint, JournalView } from '@tandem/contract';

export const GiB = 1024 ** 3;

/** A journal point `agoSeconds` before `now`. */
export function pointFixture(now: number, seq: number, agoSeconds: number, bookmark: string | null = null): JournalPoint {
  return { seq, time: new Date(now - agoSeconds * 1000).toISOString(), timeMs: now - agoSeconds * 1000, bookmark };
}

/** A session's journal as its secondary reports it: 120 points over 6 h, one bookmark, no warnings, no images. */
export function journalViewFixture(session: string, now: number, status: Partial<JournalView['status']> = {}, policy: Partial<JournalView['policy']> = {}): JournalView {
  return {
    session,
    journal: 1,
    volumes: ['db-replica'],
    policy: { budgetBytes: 10 * GiB, requiredWindowSeconds: 3600, bookmarkRetentionSeconds: null, ...policy },
    status: {
      usedBytes: GiB,
      budgetBytes: 10 * GiB,
      pendingBytes: 0,
      pendingRecords: 0,
      pointCount: 120,
      bookmarkCount: 1,
      oldestPoint: pointFixture(now, 1, 6 * 3600),
      newestPoint: pointFixture(now, 120, 1),
      coveredWindowSeconds: 6 * 3600,
      requiredWindowSeconds: 3600,
      predictedWindowSeconds: null,
      warnings: [],
      ...status,
    },
    images: [],
  };
}
