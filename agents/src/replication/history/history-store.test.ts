import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SessionHealth, SessionState } from '@tandem/contract';
import { Catalog, CATALOG_VERSION, migrateCatalogTo } from '../../storage/catalog.ts';
import { readHistory } from './history-read.ts';
import { HistoryStore, type HistorySample } from './history-store.ts';

const INTERVAL = 10_000;
const GAP = 25_000;
const T0 = Date.parse('2026-03-01T00:00:00Z');

let dir: string;
let catalog: Catalog;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-history-'));
  catalog = new Catalog(path.join(dir, 'catalog.sqlite'));
});
afterEach(async () => {
  catalog.close();
  await fs.rm(dir, { recursive: true, force: true });
});

function sample(time: number, changes: Partial<HistorySample> = {}): HistorySample {
  return {
    time,
    state: 'prepared',
    health: 'normal',
    consistency: time,
    exposure: 0,
    outOfSyncTracks: 0,
    outOfSyncBytes: 0,
    peers: [{ site: 'beta', link: 'connected', unreachableSince: null }],
    detail: null,
    ...changes,
  };
}

const read = (store: HistoryStore, from: number, to: number, maxPoints = 10_000) =>
  readHistory(store, 's1', { from, to, maxPoints, intervalMs: INTERVAL, now: to });

/**
 * A session's life as the sampler would see it, one sample per step: the
 * mirror keeps up (exposure steady), stops (consistency time frozen, exposure
 * growing), or lags by a varying amount (async); now and then something else
 * changes, and now and then the agent is down for a while (no samples).
 */
type Mode = { kind: 'duplex' } | { kind: 'suspended'; since: number } | { kind: 'async'; lagMs: number };
const step = fc.record({
  mode: fc.constantFrom<'same' | 'duplex' | 'suspended' | 'async'>('same', 'same', 'same', 'same', 'duplex', 'suspended', 'async'),
  lagMs: fc.integer({ min: 0, max: 30 }).map((tenths) => tenths * 100),
  // null: as before (most steps change nothing).
  outOfSync: fc.constantFrom(null, null, null, null, null, null, 0, 3, 17),
  health: fc.constantFrom<SessionHealth | null>(null, null, null, null, null, null, 'normal', 'warning', 'severe'),
  downSteps: fc.constantFrom(0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 5, 200),
});

type Step = typeof step extends fc.Arbitrary<infer T> ? T : never;

function timeline(steps: Step[]): { samples: HistorySample[]; downs: Array<[number, number]> } {
  let mode: Mode = { kind: 'duplex' };
  let health: SessionHealth = 'normal';
  let outOfSync = 0;
  let time = T0;
  const samples: HistorySample[] = [];
  const downs: Array<[number, number]> = [];
  for (const each of steps) {
    if (each.downSteps > 0 && samples.length > 0) {
      const last = time;
      time += each.downSteps * INTERVAL;
      downs.push([last, time + INTERVAL]);
    }
    time += INTERVAL;
    if (each.mode === 'duplex') mode = { kind: 'duplex' };
    else if (each.mode === 'suspended' && mode.kind !== 'suspended') mode = { kind: 'suspended', since: time - 1500 };
    else if (each.mode === 'async') mode = { kind: 'async', lagMs: each.lagMs };
    health = each.health ?? health;
    outOfSync = each.outOfSync ?? outOfSync;
    const state: SessionState = mode.kind === 'suspended' ? 'suspended' : 'prepared';
    const consistency = mode.kind === 'duplex' ? time : mode.kind === 'suspended' ? mode.since : time - mode.lagMs;
    samples.push(
      sample(time, {
        state,
        health,
        consistency,
        exposure: time - consistency,
        outOfSyncTracks: outOfSync,
        outOfSyncBytes: outOfSync * 65536,
        peers: [{ site: 'beta', link: health === 'warning' ? 'down' : 'connected', unreachableSince: health === 'warning' ? new Date(T0).toISOString() : null }],
      }),
    );
  }
  return { samples, downs };
}

describe('session history store', () => {
  it('a catalog of the release before the history gains the history table and keeps what it held', async () => {
    const file = path.join(dir, 'old.sqlite');
    const old = new Database(file);
    // Schema version 8: the history's migration is the ninth.
    migrateCatalogTo(old, 8);
    old.prepare("INSERT INTO volumes (id, name, kind, size_bytes, created_at) VALUES (1, 'prod', 'volume', 1048576, 'then')").run();
    old.prepare("INSERT INTO sessions (id, name, type, control_agent_id, peer_agent_id, state, direction, created_at, updated_at) VALUES ('s1', 'gold', 'sync', 'a', 'b', 'prepared', 'h1-h2', 'then', 'then')").run();
    old.close();

    const upgraded = new Catalog(file);
    try {
      expect(upgraded.db.pragma('user_version', { simple: true })).toBe(CATALOG_VERSION);
      expect(upgraded.listVolumeRows().map((row) => row.name)).toEqual(['prod']);
      expect(upgraded.db.prepare('SELECT name, state FROM sessions').all()).toEqual([{ name: 'gold', state: 'prepared' }]);
      const store = new HistoryStore(upgraded, INTERVAL, GAP);
      store.record([{ sessionId: 's1', sample: sample(T0) }]);
      expect(read(store, T0 - 1, T0 + 1).points).toHaveLength(1);
    } finally {
      upgraded.close();
    }
  });

  it('keeps a week of unchanged 10 s samples as one row and answers any hour of it at full resolution', () => {
    const store = new HistoryStore(catalog, INTERVAL, GAP);
    const week = 7 * 24 * 360;
    store.record(Array.from({ length: week }, (_, index) => ({ sessionId: 's1', sample: sample(T0 + index * INTERVAL) })));
    expect(store.rowCount('s1')).toBe(1);
    const hourStart = T0 + 3 * 24 * 3600_000;
    const hour = read(store, hourStart, hourStart + 3600_000);
    expect(hour.resolutionMs).toBe(INTERVAL);
    expect(hour.points).toHaveLength(361);
    expect(hour.points[0]).toMatchObject({ time: new Date(hourStart).toISOString(), samples: 1, state: 'prepared', exposureSeconds: 0 });
    expect(hour.gaps).toEqual([]);
    const whole = read(store, T0, T0 + week * INTERVAL, 500);
    expect(whole.points.length).toBeLessThanOrEqual(500);
    expect(whole.points.reduce((sum, point) => sum + point.samples, 0)).toBe(week);
  });

  it('a suspended stretch is one row whose exposure grows with the clock; the resync after it starts another', () => {
    const store = new HistoryStore(catalog, INTERVAL, GAP);
    const stoppedAt = T0 + 5 * INTERVAL + 3000;
    const samples = [
      ...Array.from({ length: 6 }, (_, index) => sample(T0 + index * INTERVAL)),
      ...Array.from({ length: 30 }, (_, index) => {
        const time = T0 + (6 + index) * INTERVAL;
        return sample(time, { state: 'suspended', health: 'severe', consistency: stoppedAt, exposure: time - stoppedAt, outOfSyncTracks: 4, outOfSyncBytes: 4 * 65536, detail: 'link lost' });
      }),
      ...Array.from({ length: 6 }, (_, index) => sample(T0 + (36 + index) * INTERVAL)),
    ];
    store.record(samples.map((each) => ({ sessionId: 's1', sample: each })));
    expect(store.rowCount('s1')).toBe(3);
    const { points } = read(store, T0, T0 + 42 * INTERVAL);
    expect(points.map((point) => point.exposureSeconds)).toEqual(samples.map((each) => each.exposure! / 1000));
    expect(points[35]).toMatchObject({ state: 'suspended', health: 'severe', consistencyTime: new Date(stoppedAt).toISOString(), outOfSyncBytes: 262144, detail: 'link lost' });
  });

  it('answers exactly the samples it was given, with a gap wherever the agent took none (random timelines)', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 120 }), (steps) => {
        const { samples, downs } = timeline(steps);
        const store = new HistoryStore(catalog, INTERVAL, GAP);
        catalog.db.exec('DELETE FROM session_history');
        store.record(samples.map((each) => ({ sessionId: 's1', sample: each })));
        expect(store.rowCount('s1')).toBeLessThanOrEqual(samples.length);
        const from = T0;
        const to = samples[samples.length - 1].time;
        const answer = read(store, from, to);
        expect(answer.points).toHaveLength(samples.length);
        for (const [index, point] of answer.points.entries()) {
          const expected = samples[index];
          expect(point.time).toBe(new Date(expected.time).toISOString());
          expect(point).toMatchObject({ samples: 1, state: expected.state, health: expected.health, outOfSyncTracks: expected.outOfSyncTracks, outOfSyncBytes: expected.outOfSyncBytes, peers: expected.peers });
          // Exposure kept to 0.1 s; the consistency time moves with it.
          expect(Math.abs(point.exposureSeconds! * 1000 - expected.exposure!)).toBeLessThanOrEqual(50);
          expect(Math.abs(Date.parse(point.consistencyTime!) - expected.consistency!)).toBeLessThanOrEqual(50);
        }
        const gapsExpected = downs.filter(([start, end]) => end - start > GAP).map(([start, end]) => ({ from: new Date(start).toISOString(), to: new Date(end).toISOString() }));
        expect(answer.gaps).toEqual(gapsExpected);

        // Fewer points than samples: each point is the worst of its stretch, and together they cover every sample.
        const coarse = read(store, from, to, 7);
        expect(coarse.points.length).toBeLessThanOrEqual(7);
        expect(coarse.points.reduce((sum, point) => sum + point.samples, 0)).toBe(samples.length);
        let index = 0;
        for (const point of coarse.points) {
          const covered = samples.slice(index, index + point.samples);
          index += point.samples;
          expect(point.time).toBe(new Date(covered[covered.length - 1].time).toISOString());
          expect(Math.abs(point.exposureSeconds! * 1000 - Math.max(...covered.map((each) => each.exposure!)))).toBeLessThanOrEqual(50);
          expect(point.outOfSyncTracks).toBe(Math.max(...covered.map((each) => each.outOfSyncTracks)));
          const rank = { inactive: 0, normal: 1, warning: 2, severe: 3 };
          expect(rank[point.health]).toBe(Math.max(...covered.map((each) => rank[each.health])));
        }
      }),
      { numRuns: 60 },
    );
  });

  it('a range starting inside a down time shows the gap from its start; a silent end up to now is a gap too', () => {
    const store = new HistoryStore(catalog, INTERVAL, GAP);
    store.record([0, 1, 2].map((index) => ({ sessionId: 's1', sample: sample(T0 + index * INTERVAL) })));
    store.record([100, 101].map((index) => ({ sessionId: 's1', sample: sample(T0 + index * INTERVAL) })));
    const middle = read(store, T0 + 50 * INTERVAL, T0 + 101 * INTERVAL);
    expect(middle.points).toHaveLength(2);
    expect(middle.gaps).toEqual([{ from: new Date(T0 + 50 * INTERVAL).toISOString(), to: new Date(T0 + 100 * INTERVAL).toISOString() }]);
    const later = readHistory(store, 's1', { from: T0, to: T0 + 200 * INTERVAL, maxPoints: 100, intervalMs: INTERVAL, now: T0 + 150 * INTERVAL });
    expect(later.gaps.at(-1)).toEqual({ from: new Date(T0 + 101 * INTERVAL).toISOString(), to: new Date(T0 + 150 * INTERVAL).toISOString() });
  });

  it('forgets runs that ended before the retention limit and keeps the rest', () => {
    const store = new HistoryStore(catalog, INTERVAL, GAP);
    store.record([{ sessionId: 's1', sample: sample(T0) }]);
    store.record([{ sessionId: 's1', sample: sample(T0 + 100 * INTERVAL, { health: 'warning' }) }]);
    store.record([{ sessionId: 's2', sample: sample(T0 + 100 * INTERVAL) }]);
    expect(store.prune(T0 + 50 * INTERVAL)).toBe(1);
    expect(store.rowCount()).toBe(2);
    expect(read(store, T0 - 1, T0 + 200 * INTERVAL).points.map((point) => point.health)).toEqual(['warning']);
  });
});
