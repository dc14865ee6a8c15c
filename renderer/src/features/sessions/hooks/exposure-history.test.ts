import type { SessionHistory } from '@tandem/contract';
import { describe, expect, it } from 'vitest';
import { clockShiftOf, exposureChartModel, exposureUnit, formatExposureTick, inConsoleClock } from './exposure-history.ts';

const t0 = Date.parse('2026-03-01T12:00:00Z');
const at = (seconds: number) => new Date(t0 + seconds * 1000).toISOString();
const s = (seconds: number) => t0 / 1000 + seconds;

function history(site: string, points: Array<[number, number | null]>, gaps: Array<[number, number]> = []): SessionHistory {
  return {
    session: 'orders',
    sessionId: 's1',
    site,
    from: at(-3600),
    to: at(0),
    sampleIntervalSeconds: 10,
    resolutionSeconds: 10,
    retentionSeconds: 691_200,
    points: points.map(([offset, exposure]) => ({
      time: at(offset),
      samples: 1,
      state: 'prepared',
      health: 'normal',
      consistencyTime: exposure === null ? null : at(offset - exposure),
      exposureSeconds: exposure,
      outOfSyncTracks: 0,
      outOfSyncBytes: 0,
      peers: [],
      detail: null,
    })),
    gaps: gaps.map(([from, to]) => ({ from: at(from), to: at(to) })),
  };
}

describe('exposure chart model', () => {
  it('puts every site on one time axis: its values where it has points, null elsewhere, and a null inside each of its gaps', () => {
    const model = exposureChartModel([
      history('alpha', [[0, 1], [10, 2], [60, 5]], [[10, 60]]),
      history('beta', [[5, 0.5], [15, 0.5]]),
    ]);
    expect(model.sites).toEqual(['alpha', 'beta']);
    expect(model.data[0]).toEqual([s(0), s(5), s(10), s(15), s(35), s(60)]);
    expect(model.data[1]).toEqual([1, null, 2, null, null, 5]);
    expect(model.data[2]).toEqual([null, 0.5, null, 0.5, null, null]);
    expect(model.gaps).toEqual([{ site: 'alpha', seriesIndex: 1, from: s(10), to: s(60) }]);
    expect(model).toMatchObject({ maxExposure: 5, pointCount: 5 });
  });

  it('labels the y axis in seconds, minutes or hours by the largest exposure', () => {
    expect(exposureUnit(45)).toEqual({ label: 's', seconds: 1 });
    expect(exposureUnit(600)).toEqual({ label: 'min', seconds: 60 });
    expect(exposureUnit(3 * 3600)).toEqual({ label: 'h', seconds: 3600 });
    expect(formatExposureTick(30, exposureUnit(45))).toBe('30 s');
    expect(formatExposureTick(150, exposureUnit(600))).toBe('2.5 min');
    expect(formatExposureTick(7200, exposureUnit(3 * 3600))).toBe('2 h');
  });
});

describe('histories of sites whose clocks differ', () => {
  it("a site's samples are moved into the console's clock by the offset its views show, latency left alone", () => {
    // beta's agent composed a view 120 s ahead of the console's clock.
    expect(clockShiftOf(t0, at(120))).toBe(-120_000);
    expect(clockShiftOf(t0, at(2))).toBe(0);
    const beta = inConsoleClock(history('beta', [[110, 1], [120, 2]], [[0, 60]]), -120_000);
    expect(beta.points.map((point) => point.time)).toEqual([at(-10), at(0)]);
    expect(beta.gaps).toEqual([{ from: at(-120), to: at(-60) }]);
    expect(beta.to).toBe(at(-120));
    // On one axis with alpha's (the console's clock): the samples of one instant line up.
    const model = exposureChartModel([history('alpha', [[-10, 1], [0, 2]]), beta]);
    expect(model.data[0]).toContain(s(-10));
    expect(model.data[0]).toContain(s(0));
    expect(model.data[0]).not.toContain(s(110));
  });
});
