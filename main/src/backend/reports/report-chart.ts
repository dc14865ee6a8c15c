import type { SessionHistory } from '@tandem/contract';

/** Colours per site line (the same order as the history list). */
export const siteColours = ['#4c6ef5', '#f76707', '#2f9e44', '#ae3ec9'];

/** Exposure axis unit: seconds up to 2 min, minutes up to 2 h, hours beyond. */
export function exposureUnit(maxSeconds: number): { label: string; seconds: number } {
  if (maxSeconds <= 120) return { label: 's', seconds: 1 };
  if (maxSeconds <= 7200) return { label: 'min', seconds: 60 };
  return { label: 'h', seconds: 3600 };
}

/** 0, then a 1-2-5 step giving about 4 ticks up to `max` (in the unit). */
function ticks(max: number): number[] {
  const raw = max / 4;
  const magnitude = 10 ** Math.floor(Math.log10(raw || 1));
  const step = [1, 2, 5, 10].map((factor) => factor * magnitude).find((candidate) => candidate >= raw) ?? raw;
  const values: number[] = [];
  // Up to the first tick at or above max, so the highest value stays inside the plot.
  for (let value = 0; values.length === 0 || values[values.length - 1] < max; value += step) values.push(Number(value.toFixed(6)));
  return values;
}

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** `HH:MM` (UTC), with the date when the range spans more than a day. */
function timeLabel(ms: number, long: boolean): string {
  const iso = new Date(ms).toISOString();
  return long ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(11, 16);
}

/**
 * The exposure history of a session as an SVG line chart for the PDF: one
 * line per site that sampled it, seconds/minutes/hours on y, UTC time on x,
 * and shaded spans where a site took no samples (its agent was down); the
 * line breaks there instead of bridging what nobody saw.
 */
export function exposureChartSvg(histories: SessionHistory[], range: { from: string; to: string }, size = { width: 760, height: 170 }): string {
  const left = 48;
  const right = 12;
  const top = 16;
  const bottom = 26;
  const plotWidth = size.width - left - right;
  const plotHeight = size.height - top - bottom;
  const from = Date.parse(range.from);
  const to = Date.parse(range.to);
  const maxExposure = Math.max(1, ...histories.flatMap((history) => history.points.map((point) => point.exposureSeconds ?? 0)));
  const unit = exposureUnit(maxExposure);
  const yTicks = ticks((maxExposure * 1.1) / unit.seconds);
  const yMax = yTicks[yTicks.length - 1] || 1;
  const x = (ms: number) => left + ((ms - from) / (to - from)) * plotWidth;
  const y = (seconds: number) => top + plotHeight - (seconds / unit.seconds / yMax) * plotHeight;
  const parts: string[] = [];
  // Spans without samples, per site, shaded.
  for (const history of histories) {
    for (const gap of history.gaps) {
      const start = Math.max(from, Date.parse(gap.from));
      const end = Math.min(to, Date.parse(gap.to));
      if (end > start) parts.push(`<rect x="${x(start).toFixed(1)}" y="${top}" width="${Math.max(1, x(end) - x(start)).toFixed(1)}" height="${plotHeight}" fill="#e9ecef"/>`);
    }
  }
  for (const tick of yTicks) {
    const at = y(tick * unit.seconds).toFixed(1);
    parts.push(`<line x1="${left}" y1="${at}" x2="${left + plotWidth}" y2="${at}" stroke="#dee2e6" stroke-width="0.5"/>`);
    parts.push(`<text x="${left - 4}" y="${(Number(at) + 3).toFixed(1)}" font-size="7" text-anchor="end" fill="#495057">${tick} ${unit.label}</text>`);
  }
  const long = to - from > 86_400_000;
  for (let index = 0; index <= 6; index++) {
    const ms = from + ((to - from) * index) / 6;
    parts.push(`<text x="${x(ms).toFixed(1)}" y="${size.height - 12}" font-size="7" text-anchor="middle" fill="#495057">${timeLabel(ms, long)}</text>`);
  }
  parts.push(`<text x="${left + plotWidth}" y="${size.height - 2}" font-size="7" text-anchor="end" fill="#868e96">time (UTC)</text>`);
  parts.push(`<line x1="${left}" y1="${top + plotHeight}" x2="${left + plotWidth}" y2="${top + plotHeight}" stroke="#868e96" stroke-width="0.8"/>`);
  parts.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotHeight}" stroke="#868e96" stroke-width="0.8"/>`);
  histories.forEach((history, index) => {
    const colour = siteColours[index % siteColours.length];
    const gaps = history.gaps.map((gap) => [Date.parse(gap.from), Date.parse(gap.to)] as const);
    let segment: string[] = [];
    const flush = () => {
      if (segment.length === 1) segment.push(segment[0]);
      if (segment.length > 1) parts.push(`<polyline points="${segment.join(' ')}" fill="none" stroke="${colour}" stroke-width="1.2"/>`);
      segment = [];
    };
    let previous: number | null = null;
    for (const point of history.points) {
      const time = Date.parse(point.time);
      // A gap between two points breaks the line.
      if (previous !== null && gaps.some(([start, end]) => start >= previous! && end <= time)) flush();
      previous = time;
      if (point.exposureSeconds === null) {
        flush();
        continue;
      }
      segment.push(`${x(time).toFixed(1)},${y(point.exposureSeconds).toFixed(1)}`);
    }
    flush();
    parts.push(`<text x="${left + 6 + index * 150}" y="${top - 5}" font-size="7" fill="${colour}">exposure as sampled at ${escape(history.site)}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${size.width}" height="${size.height}" viewBox="0 0 ${size.width} ${size.height}">${parts.join('')}</svg>`;
}
