import { useQueries } from '@tanstack/react-query';
import type { SessionHistory } from '@tandem/contract';
import { useApi } from '../../../app/api-context.tsx';
import { useSites } from '../../sites/hooks/use-sites.ts';
import { sessionKeys } from '../api/session-keys.ts';
import { sessionsApi } from '../api/sessions-api.ts';
import { primarySites, type MergedSession } from './session-model.ts';

export type ExposureRange = '1h' | '24h' | '7d';

/**
 * The chart's ranges. Agents sample every 10 s and answer at most
 * `maxPoints` points (the worst sample of each stretch beyond), so 1 h is at
 * full resolution and a week is at 10 min. No event announces a new sample:
 * a visible chart refetches about as often as its resolution changes.
 */
export const exposureRanges: Record<ExposureRange, { label: string; seconds: number; maxPoints: number; refreshMs: number }> = {
  '1h': { label: '1 h', seconds: 3600, maxPoints: 720, refreshMs: 10_000 },
  '24h': { label: '24 h', seconds: 86_400, maxPoints: 720, refreshMs: 60_000 },
  '7d': { label: '7 d', seconds: 7 * 86_400, maxPoints: 1008, refreshMs: 300_000 },
};

/** One site's part of the chart: its history, or why there is none. */
export interface SiteHistory {
  site: string;
  /** In this console's clock (shifted by `clockShiftMs` from the agent's). */
  history: SessionHistory | null;
  /** This console's clock minus the site agent's, when it is more than a few seconds (its samples are shifted by it); else 0. */
  clockShiftMs: number;
  /** Why nothing is shown from this site (not connected, or the call failed); null when it answered. */
  problem: string | null;
  isLoading: boolean;
}

/**
 * The session's exposure history from every connected site that holds it
 * (each agent samples its own view), and the session's other sites named as
 * unreachable: a site the console does not reach contributes nothing.
 */
export function useSessionHistories(entry: MergedSession, range: ExposureRange): SiteHistory[] {
  const api = useApi();
  const { seconds, maxPoints, refreshMs } = exposureRanges[range];
  // Each agent samples in its own clock: asked for the range in it, drawn in this console's (sites whose clocks differ line up).
  const shifts = entry.views.map((view) => clockShiftOf(view.receivedAt, view.session.observedAt));
  const results = useQueries({
    queries: entry.views.map((view, index) => ({
      queryKey: sessionKeys.history(view.siteId, entry.session.name, range),
      queryFn: () => {
        const to = new Date(Date.now() - shifts[index]);
        return sessionsApi.history(api, view.siteId, entry.session.name, { from: new Date(to.getTime() - seconds * 1000).toISOString(), to: to.toISOString(), maxPoints });
      },
      refetchInterval: refreshMs,
      staleTime: refreshMs,
    })),
  });
  const reached: SiteHistory[] = entry.views.map((view, index) => {
    const result = results[index];
    return {
      site: view.siteName,
      history: result?.data ? inConsoleClock(result.data, shifts[index]) : null,
      clockShiftMs: shifts[index],
      problem: result?.error ? (result.error instanceof Error ? result.error.message : String(result.error)) : null,
      isLoading: result?.isLoading ?? true,
    };
  });
  const known = new Set(entry.views.map((view) => view.siteName));
  const consoleSites = useSites().data?.sites ?? [];
  const session = entry.session;
  const missing = [...primarySites(session), session.h2Site]
    .filter((site, index, all) => all.indexOf(site) === index && !known.has(site))
    .map((site) => {
      const summary = consoleSites.find((each) => each.site === site);
      const problem = !summary
        ? 'not connected to this console'
        : `not reachable, ${summary.connection.state} since ${new Date(summary.connection.since).toLocaleString()}${summary.connection.lastProblem ? ` (${summary.connection.lastProblem.message})` : ''}`;
      return { site, history: null, clockShiftMs: 0, problem, isLoading: false };
    });
  return [...reached, ...missing];
}

/** A clock difference below this is latency, not worth shifting a chart by. */
const clockShiftNoticeMs = 5000;

/** This console's clock minus an agent's, from a view it composed (`observedAt`, its clock) and when it arrived (ours); 0 within latency. */
export function clockShiftOf(receivedAt: number, observedAt: string): number {
  const shift = receivedAt - Date.parse(observedAt);
  return Number.isFinite(shift) && Math.abs(shift) > clockShiftNoticeMs ? shift : 0;
}

/** A history sampled in an agent's clock, in this console's: every time moved by `shiftMs`. */
export function inConsoleClock(history: SessionHistory, shiftMs: number): SessionHistory {
  if (shiftMs === 0) return history;
  const move = (time: string) => new Date(Date.parse(time) + shiftMs).toISOString();
  return {
    ...history,
    from: move(history.from),
    to: move(history.to),
    points: history.points.map((point) => ({ ...point, time: move(point.time) })),
    gaps: history.gaps.map((gap) => ({ ...gap, from: move(gap.from), to: move(gap.to) })),
  };
}

/** y axis unit: seconds up to 2 min, minutes up to 2 h, hours beyond. */
export function exposureUnit(maxSeconds: number): { label: string; seconds: number } {
  if (maxSeconds <= 120) return { label: 's', seconds: 1 };
  if (maxSeconds <= 7200) return { label: 'min', seconds: 60 };
  return { label: 'h', seconds: 3600 };
}

/** `12 s`, `2.5 min`, `1 h`: an axis value in the unit. */
export function formatExposureTick(seconds: number, unit: { label: string; seconds: number }): string {
  const value = seconds / unit.seconds;
  return `${Number(value.toFixed(value < 10 && value % 1 !== 0 ? 1 : 0))} ${unit.label}`;
}

export interface ExposureChartModel {
  /** uPlot's aligned data: x in seconds since the epoch, then one exposure series (seconds, null where none) per site. */
  data: [number[], ...Array<Array<number | null>>];
  sites: string[];
  /** Spans without samples, per site (seconds since the epoch). */
  gaps: Array<{ site: string; seriesIndex: number; from: number; to: number }>;
  maxExposure: number;
  pointCount: number;
}

/**
 * The histories of several sites on one time axis: the union of their point
 * times, each site's exposure where it has a point and null elsewhere (the
 * chart bridges another site's times but breaks the line at a gap, where a
 * null is placed too so the line ends there), and each site's gaps.
 */
export function exposureChartModel(histories: SessionHistory[]): ExposureChartModel {
  const times = new Set<number>();
  const gaps: ExposureChartModel['gaps'] = [];
  histories.forEach((history, index) => {
    for (const point of history.points) times.add(Date.parse(point.time) / 1000);
    for (const gap of history.gaps) {
      const from = Date.parse(gap.from) / 1000;
      const to = Date.parse(gap.to) / 1000;
      gaps.push({ site: history.site, seriesIndex: index + 1, from, to });
      times.add((from + to) / 2);
    }
  });
  const xs = [...times].sort((a, b) => a - b);
  const position = new Map(xs.map((x, index) => [x, index]));
  const series = histories.map((history) => {
    const values: Array<number | null> = xs.map(() => null);
    for (const point of history.points) values[position.get(Date.parse(point.time) / 1000)!] = point.exposureSeconds;
    return values;
  });
  const exposures = histories.flatMap((history) => history.points.map((point) => point.exposureSeconds ?? 0));
  return {
    data: [xs, ...series],
    sites: histories.map((history) => history.site),
    gaps,
    maxExposure: exposures.length > 0 ? Math.max(...exposures) : 0,
    pointCount: histories.reduce((sum, history) => sum + history.points.length, 0),
  };
}
