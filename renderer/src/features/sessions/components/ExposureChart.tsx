import { Group, SegmentedControl, Stack, Text } from '@mantine/core';
import { useElementSize } from '@mantine/hooks';
import { useEffect, useMemo, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import {
  exposureChartModel,
  exposureRanges,
  exposureUnit,
  formatExposureTick,
  useSessionHistories,
  type ExposureChartModel,
  type ExposureRange,
} from '../hooks/exposure-history.ts';
import { useExposureStore } from '../hooks/exposure-store.ts';
import type { MergedSession } from '../hooks/session-model.ts';

/** Line colours per site, in the order of the session's views. */
const siteColours = ['#4c6ef5', '#f76707', '#2f9e44', '#ae3ec9'];
/** Alpha (hex) of a gap's tint. */
const gapAlpha = '2e';
/** y tick steps per unit, in seconds. */
const tickSteps: Record<string, number[]> = {
  s: [1, 2, 5, 10, 15, 20, 30, 60],
  min: [60, 120, 300, 600, 900, 1200, 1800, 3600],
  h: [3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800],
};
const chartHeight = 170;

/** `16:04` for an hour or a day, `03-14 16:04` for a week: short enough for ticks 70 px apart. */
function timeTick(seconds: number, range: ExposureRange): string {
  const date = new Date(seconds * 1000);
  const time = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false });
  if (range !== '7d') return time;
  return `${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')} ${time}`;
}

/** `14:02:10`, with the date when not today. */
function clock(iso: string): string {
  const date = new Date(iso);
  const time = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  return date.toDateString() === new Date().toDateString() ? time : `${date.toLocaleDateString()} ${time}`;
}

/** `no samples 14:02:10–14:09:40` (the last three spans; how many more). */
function gapsText(gaps: Array<{ from: string; to: string }>): string {
  const shown = gaps.slice(-3).map((gap) => `${clock(gap.from)}–${clock(gap.to)}`);
  return `no samples ${shown.join(', ')}${gaps.length > 3 ? ` and ${gaps.length - 3} earlier` : ''} (agent not running)`;
}

/**
 * uPlot options for the model: time on x over the whole range asked for,
 * exposure on y in seconds, minutes or hours, one line per site, broken and
 * shaded where that site took no samples (its agent was not running).
 */
function chartOptions(model: ExposureChartModel, range: ExposureRange, window: { from: number; to: number }, width: number): uPlot.Options {
  const unit = exposureUnit(model.maxExposure);
  return {
    width,
    height: chartHeight,
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: {
      x: { time: true, range: () => [window.from, window.to] },
      y: { range: (_self, _min, max) => [0, Math.max(unit.seconds, (max ?? 0) * 1.15)] },
    },
    axes: [
      {
        stroke: '#868e96',
        grid: { stroke: 'rgba(134,142,150,0.15)' },
        space: range === '7d' ? 90 : 60,
        values: (_self, ticks) => ticks.map((tick) => timeTick(tick, range)),
      },
      {
        stroke: '#868e96',
        // Wide enough for the longest tick label ("120 min").
        size: (_self, values) => 16 + 7 * Math.max(4, ...(values ?? []).map((value) => String(value).length)),
        // Whole steps of the unit (30 s, 5 min, 2 h), never 8.3 min.
        incrs: tickSteps[unit.label],
        grid: { stroke: 'rgba(134,142,150,0.15)' },
        values: (_self, ticks) => ticks.map((tick) => formatExposureTick(tick, unit)),
      },
    ],
    series: [
      {},
      ...model.sites.map((site, index) => ({
        label: `at ${site}`,
        stroke: siteColours[index % siteColours.length],
        // Sites usually agree: the later lines dashed, so an earlier one stays visible beneath.
        width: index === 0 ? 2 : 1.5,
        dash: index === 0 ? undefined : [5, 4],
        points: { show: false },
        spanGaps: false,
        // Another site's times leave nulls in this series: bridged. Only this site's own gaps break the line.
        gaps: (u: uPlot, seriesIndex: number, _first: number, _last: number, nullGaps: uPlot.Series.Gaps) =>
          nullGaps.filter(([from, to]) =>
            model.gaps.some((gap) => {
              if (gap.seriesIndex !== seriesIndex) return false;
              const middle = u.valToPos((gap.from + gap.to) / 2, 'x', true);
              return middle >= from && middle <= to;
            }),
          ),
      })),
    ],
    hooks: {
      drawClear: [
        (u: uPlot) => {
          const context = u.ctx;
          context.save();
          for (const gap of model.gaps) {
            const left = Math.max(u.bbox.left, u.valToPos(gap.from, 'x', true));
            const right = Math.min(u.bbox.left + u.bbox.width, u.valToPos(gap.to, 'x', true));
            // Tinted with the site's colour: whose agent took no samples there.
            context.fillStyle = `${siteColours[(gap.seriesIndex - 1) % siteColours.length]}${gapAlpha}`;
            if (right > left) context.fillRect(left, u.bbox.top, right - left, u.bbox.height);
          }
          context.restore();
        },
      ],
    },
  };
}

/**
 * A session's exposure over the last hour, day or week as its agents sampled
 * it (they keep a week at 10 s; nothing is kept in the browser), one line
 * per site. Where a site took no samples the line breaks over a shaded span;
 * a site the console does not reach is named instead of drawn.
 */
export function ExposureChart({ entry }: { entry: MergedSession }) {
  const sessionId = entry.id;
  const range = useExposureStore((state) => state.ranges[sessionId] ?? '1h');
  const setRange = useExposureStore((state) => state.setRange);
  const sites = useSessionHistories(entry, range);
  const histories = sites.flatMap((site) => (site.history ? [site.history] : []));
  const stamp = histories.map((history) => `${history.site}:${history.to}:${history.points.length}`).join(',');
  // eslint-disable-next-line react-hooks/exhaustive-deps -- `stamp` changes exactly when a history does
  const model = useMemo(() => exposureChartModel(histories), [stamp]);
  const window = useMemo(() => {
    const to = histories.length > 0 ? Math.max(...histories.map((history) => Date.parse(history.to))) / 1000 : Date.now() / 1000;
    return { from: to - exposureRanges[range].seconds, to };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- `stamp` changes exactly when a history does
  }, [stamp, range]);
  const { ref: sizeRef, width } = useElementSize();
  const container = useRef<HTMLDivElement>(null);
  const [unavailable, setUnavailable] = useState(false);
  const chartWidth = Math.max(240, Math.floor(width));
  const drawable = model.pointCount > 0;

  useEffect(() => {
    if (!container.current || !drawable) return;
    // No 2D canvas (a test DOM): the text beside the chart still tells the story.
    if (!document.createElement('canvas').getContext('2d')) {
      setUnavailable(true);
      return;
    }
    let plot: uPlot | null = null;
    try {
      plot = new uPlot(chartOptions(model, range, window, chartWidth), model.data as uPlot.AlignedData, container.current);
    } catch {
      setUnavailable(true);
    }
    return () => plot?.destroy();
  }, [model, range, window, chartWidth, drawable]);

  const loading = sites.some((site) => site.isLoading) && histories.length === 0;
  const resolution = histories[0] ? histories[0].resolutionSeconds : null;
  const last = histories.flatMap((history) => history.points.slice(-1).map((point) => ({ site: history.site, point })));
  return (
    <Stack gap={4} data-testid={`exposure-chart-${entry.session.name}`} aria-label={`Exposure of ${entry.session.name} over time`} style={{ minWidth: 0 }}>
      <Group justify="space-between" gap={4}>
        <Text size="xs" c="dimmed">
          Exposure{resolution ? ` · a point per ${resolution < 60 ? `${resolution} s` : `${Math.round(resolution / 60)} min`}` : ''}
        </Text>
        <SegmentedControl
          size="xs"
          value={range}
          onChange={(value) => setRange(sessionId, value as ExposureRange)}
          data={(Object.keys(exposureRanges) as ExposureRange[]).map((key) => ({ value: key, label: exposureRanges[key].label }))}
          aria-label="Exposure chart range"
        />
      </Group>
      <div ref={sizeRef} style={{ width: '100%', minWidth: 0 }}>
        <div ref={container} style={{ display: unavailable || !drawable ? 'none' : undefined }} data-testid="exposure-plot" />
      </div>
      {(unavailable || !drawable) && (
        <Text size="xs" c="dimmed" data-testid="exposure-empty">
          {loading
            ? 'loading the agents’ samples…'
            : last.length > 0
              ? `exposure ${last.map(({ site, point }) => `${point.exposureSeconds === null ? '–' : `${point.exposureSeconds.toFixed(1)} s`} at ${site}`).join(', ')}`
              : `no samples in the last ${exposureRanges[range].label}`}
        </Text>
      )}
      <Stack gap={0} data-testid="exposure-legend">
        {sites.map((site) => (
          <Text key={site.site} size="xs" c={site.history ? undefined : 'red'} data-testid={`exposure-site-${site.site}`}>
            {site.history ? (
              <>
                <span
                  aria-hidden
                  style={{
                    display: 'inline-block',
                    width: 14,
                    verticalAlign: 'middle',
                    borderTop: `2px ${model.sites.indexOf(site.site) === 0 ? 'solid' : 'dashed'} ${siteColours[model.sites.indexOf(site.site) % siteColours.length]}`,
                  }}
                />{' '}
                sampled at {site.site}
                {site.clockShiftMs !== 0 &&
                  ` · its clock is ${Math.round(Math.abs(site.clockShiftMs) / 1000)} s ${site.clockShiftMs < 0 ? 'ahead of' : 'behind'} this console's: drawn in this console's time`}
                {site.history.gaps.length > 0 && ` · ${gapsText(site.history.gaps)}`}
              </>
            ) : site.isLoading ? (
              `at ${site.site}: loading…`
            ) : (
              `no history from ${site.site}: ${site.problem ?? 'no answer'}`
            )}
          </Text>
        ))}
      </Stack>
    </Stack>
  );
}
