import { InvalidArgumentError, type Command } from 'commander';
import { formatSize, SessionHistorySchema, type HistoryPoint, type SessionHistory } from '@tandem/contract';
import { dataOption, jsonOption, parseCount } from '../arguments.ts';
import { formatTable, print, printJson } from '../output.ts';
import { withClient, type AdminOptions } from './admin.ts';

const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `--since 90s | 10m | 1h | 7d`: seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)([smhd])$/.exec(text);
  const seconds = match ? Number(match[1]) * units[match[2]] : NaN;
  if (!(seconds > 0 && seconds <= 366 * 86_400)) {
    throw new InvalidArgumentError(`'${text}' is not a duration; use a number and a unit: 90s, 10m, 1h, 7d`);
  }
  return seconds;
}

/** `2026-05-01T12:00:00Z` (no milliseconds: samples are seconds apart). */
const when = (iso: string) => iso.replace(/\.\d+Z$/, 'Z');

const seconds = (value: number | null) => (value === null ? '-' : `${value.toFixed(1)} s`);

function peersText(point: HistoryPoint): string {
  if (point.peers.length === 0) return '-';
  return point.peers.map((peer) => (peer.unreachableSince ? `${peer.site} ${peer.link} since ${when(peer.unreachableSince)}` : `${peer.site} ${peer.link}`)).join(', ');
}

/** Consecutive points alike but for their exposure (same state, health, out-of-sync, peers, detail): one row of the table. */
interface Stretch {
  first: HistoryPoint;
  last: HistoryPoint;
  samples: number;
  minExposure: number | null;
  maxExposure: number | null;
}

const alike = (a: HistoryPoint, b: HistoryPoint) =>
  a.state === b.state && a.health === b.health && a.outOfSyncTracks === b.outOfSyncTracks && a.detail === b.detail && peersText(a) === peersText(b);

function stretches(history: SessionHistory): Array<Stretch | { gap: { from: string; to: string } }> {
  const rows: Array<Stretch | { gap: { from: string; to: string } }> = [];
  const gaps = [...history.gaps];
  let current: Stretch | null = null;
  for (const point of history.points) {
    // A gap before this point ends the stretch and gets its own line.
    while (gaps.length > 0 && Date.parse(gaps[0].to) <= Date.parse(point.time)) {
      current = null;
      rows.push({ gap: gaps.shift()! });
    }
    const exposure = point.exposureSeconds;
    if (current && alike(current.last, point)) {
      current.last = point;
      current.samples += point.samples;
      if (exposure !== null) {
        current.minExposure = current.minExposure === null ? exposure : Math.min(current.minExposure, exposure);
        current.maxExposure = current.maxExposure === null ? exposure : Math.max(current.maxExposure, exposure);
      }
      continue;
    }
    current = { first: point, last: point, samples: point.samples, minExposure: exposure, maxExposure: exposure };
    rows.push(current);
  }
  for (const gap of gaps) rows.push({ gap });
  return rows;
}

function historyText(history: SessionHistory): string {
  const head =
    `session ${history.session} as sampled at ${history.site}, ${when(history.from)} to ${when(history.to)}: ` +
    `a sample every ${history.sampleIntervalSeconds} s${history.resolutionSeconds > history.sampleIntervalSeconds ? `, shown per ${history.resolutionSeconds} s (the worst of each)` : ''}, kept ${Math.round(history.retentionSeconds / 86_400)} days`;
  if (history.points.length === 0 && history.gaps.length === 0) return `${head}\n\nno samples in this range`;
  const rows = stretches(history).map((row) => {
    if ('gap' in row) return [when(row.gap.from), when(row.gap.to), 'no samples', '-', '-', '-', '0', '-', 'the agent was not running: nothing known from this site'];
    const exposure = row.minExposure === row.maxExposure ? seconds(row.maxExposure) : `${seconds(row.minExposure)} .. ${seconds(row.maxExposure)}`;
    return [
      when(row.first.time),
      when(row.last.time),
      row.last.state,
      row.last.health,
      exposure,
      `${row.last.outOfSyncTracks} (${formatSize(row.last.outOfSyncBytes)})`,
      String(row.samples),
      peersText(row.last),
      row.last.detail ?? '-',
    ];
  });
  return `${head}\n\n${formatTable(['FROM', 'TO', 'STATE', 'HEALTH', 'EXPOSURE', 'OUT OF SYNC', 'SAMPLES', 'PEERS', 'DETAIL'], rows, [6])}`;
}

/** `session history NAME`: the agent's own samples of a session over a time range. */
export function registerSessionHistoryCommand(session: Command): void {
  session
    .command('history <name>')
    .description('the session over time as this agent sampled it (every 10 s, kept 8 days): state, health, exposure, out of sync, peer links; gaps where the agent was not running')
    .option('--since <duration>', 'how far back: 90s, 10m, 1h, 24h, 7d', parseDuration, 3600)
    .option('--max-points <count>', 'at most this many points (wider ranges show the worst sample of each stretch)', parseCount, 1000)
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, options: AdminOptions & { since: number; maxPoints: number }) =>
      withClient(options, async (client) => {
        const to = new Date();
        const from = new Date(to.getTime() - options.since * 1000);
        const query = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), maxPoints: String(options.maxPoints) });
        const history = await client.call('GET', `/v1/sessions/${encodeURIComponent(name)}/history?${query}`, SessionHistorySchema);
        if (options.json) printJson(history);
        else print(historyText(history));
      }),
    );
}
