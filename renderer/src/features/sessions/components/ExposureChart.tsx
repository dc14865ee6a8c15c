import { Text } from '@mantine/core';
import { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useExposureStore, type ExposureSample } from '../hooks/exposure-store.ts';

const noSamples: ExposureSample[] = [];
/** At least the last minute is shown, so one sample (or none) does not stretch the time axis over years. */
const minimumWindowSeconds = 60;

/** `16:04:05`: short enough that ticks 90 px apart never overlap. */
function clockTime(seconds: number): string {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

function timeWindow(_plot: uPlot, min: number | null, max: number | null): uPlot.Range.MinMax {
  const end = max !== null && Number.isFinite(max) ? max : Date.now() / 1000;
  const start = min !== null && Number.isFinite(min) && end - min >= minimumWindowSeconds ? min : end - minimumWindowSeconds;
  return [start, end];
}

function chartData(samples: ExposureSample[]): uPlot.AlignedData {
  return [samples.map((sample) => sample.time), samples.map((sample) => sample.exposure)];
}

/** Exposure (how far the targets lag) over the time this console has watched the session, drawn with uPlot. */
export function ExposureChart({ sessionId, width = 420, height = 120 }: { sessionId: string; width?: number; height?: number }) {
  const samples = useExposureStore((state) => state.samples[sessionId] ?? noSamples);
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const [unavailable, setUnavailable] = useState(false);

  useEffect(() => {
    if (!container.current) return;
    // No 2D canvas (a test DOM): the numbers beside the chart still tell the story.
    if (!document.createElement('canvas').getContext('2d')) {
      setUnavailable(true);
      return;
    }
    try {
      plot.current = new uPlot(
        {
          width,
          height,
          legend: { show: false },
          cursor: { drag: { x: false, y: false } },
          scales: { x: { time: true, range: timeWindow }, y: { range: (_self, _min, max) => [0, Math.max(1, max * 1.2)] } },
          axes: [{ stroke: '#868e96', grid: { stroke: 'rgba(134,142,150,0.15)' }, space: 90, values: (_self, ticks) => ticks.map(clockTime) }, { stroke: '#868e96', size: 44, values: (_self, ticks) => ticks.map((tick) => `${tick} s`), grid: { stroke: 'rgba(134,142,150,0.15)' } }],
          series: [{}, { label: 'exposure', stroke: '#4c6ef5', fill: 'rgba(76,110,245,0.12)', width: 2, points: { show: false } }],
        },
        chartData([]),
        container.current,
      );
    } catch {
      setUnavailable(true);
    }
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
  }, [width, height]);

  useEffect(() => {
    plot.current?.setData(chartData(samples));
  }, [samples]);

  const last = samples[samples.length - 1];
  return (
    <div data-testid={`exposure-chart-${sessionId}`} aria-label="Exposure over time">
      {/* A line needs two points; until then the text below says what is known. */}
      <div ref={container} style={{ display: unavailable || samples.length < 2 ? 'none' : undefined }} />
      {(unavailable || samples.length < 2) && (
        <Text size="xs" c="dimmed">
          {last ? `exposure ${last.exposure.toFixed(1)} s; the chart fills as updates arrive` : 'no exposure reported yet'}
        </Text>
      )}
    </div>
  );
}
