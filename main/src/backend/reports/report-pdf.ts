import { createRequire } from 'node:module';
import { auditAction, auditResult, auditWho, formatSize, type HistoryGap, type HistoryPoint, type SessionHistory } from '@tandem/contract';
import type { ReportDocument, ReportSite, SessionReport } from '../../shared/sessions-api.ts';
import { exposureChartSvg } from './report-chart.ts';
import { peersText, windowText } from './report-text.ts';

/** The few pdfmake 0.3 calls used here (it ships no types). */
interface PdfMake {
  setFonts(fonts: Record<string, Record<string, string>>): void;
  setUrlAccessPolicy(policy: (url: string) => boolean): void;
  setLocalAccessPolicy(policy: (path: string) => boolean): void;
  createPdf(definition: unknown): { getBuffer(): Promise<Buffer> };
}

type Cell = string | { text: string; style?: string; bold?: boolean; color?: string; italics?: boolean };

const healthColours: Record<string, string> = { normal: '#2f9e44', warning: '#f08c00', severe: '#e03131', inactive: '#868e96', unknown: '#868e96' };

const standardFontNames = new Set(['Helvetica', 'Helvetica-Bold', 'Helvetica-Oblique', 'Helvetica-BoldOblique']);

let loaded: PdfMake | undefined;
/** pdfmake with the PDF standard Helvetica (no font files to ship); a document may neither fetch URLs nor read local files. */
function pdfmake(): PdfMake {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const instance = require('pdfmake') as PdfMake;
  instance.setFonts({ Helvetica: { normal: 'Helvetica', bold: 'Helvetica-Bold', italics: 'Helvetica-Oblique', bolditalics: 'Helvetica-BoldOblique' } });
  instance.setUrlAccessPolicy(() => false);
  // The standard fonts are looked up by name through the same policy; nothing else may be read.
  instance.setLocalAccessPolicy((path) => standardFontNames.has(path));
  loaded = instance;
  return instance;
}

const dash = (value: string | number | null | undefined) => (value === null || value === undefined || value === '' ? '-' : String(value));
const seconds = (value: number | null) => (value === null ? '-' : `${value.toFixed(1)} s`);

function table(header: string[], rows: Cell[][], widths?: (string | number)[]) {
  return {
    table: { headerRows: 1, widths: widths ?? header.map(() => 'auto'), body: [header.map((text) => ({ text, bold: true })), ...rows] },
    layout: 'lightHorizontalLines',
    fontSize: 7.5,
    margin: [0, 4, 0, 10],
  };
}

const none = (what: string) => ({ text: what, italics: true, color: '#868e96', margin: [0, 2, 0, 10] });

function siteRows(sites: ReportSite[]): Cell[][] {
  return sites.map((site) => [
    site.site,
    site.reachable
      ? { text: `reached at ${site.checkedAt}`, color: '#2f9e44' }
      : { text: `UNREACHABLE since ${dash(site.unreachableSince)} (checked ${site.checkedAt}): ${dash(site.problem)}`, color: '#e03131', bold: true },
  ]);
}

/** Consecutive points alike but for their exposure (same state, health, out of sync, peers, detail), or a span without samples. */
export type HistoryStretch =
  | { kind: 'points'; first: HistoryPoint; last: HistoryPoint; points: number; samples: number; minExposure: number | null; maxExposure: number | null }
  | { kind: 'gap'; gap: HistoryGap };

const alike = (a: HistoryPoint, b: HistoryPoint) =>
  a.state === b.state && a.health === b.health && a.outOfSyncTracks === b.outOfSyncTracks && a.outOfSyncBytes === b.outOfSyncBytes && a.detail === b.detail && peersText(a) === peersText(b);

/** A site's history as stretches: the PDF's compact table (every point falls in exactly one stretch). */
export function historyStretches(history: SessionHistory): HistoryStretch[] {
  const out: HistoryStretch[] = [];
  const gaps = [...history.gaps];
  let current: Extract<HistoryStretch, { kind: 'points' }> | null = null;
  for (const point of history.points) {
    while (gaps.length > 0 && Date.parse(gaps[0].to) <= Date.parse(point.time)) {
      out.push({ kind: 'gap', gap: gaps.shift()! });
      current = null;
    }
    const exposure = point.exposureSeconds;
    if (current && alike(current.last, point)) {
      current.last = point;
      current.points++;
      current.samples += point.samples;
      if (exposure !== null) {
        current.minExposure = current.minExposure === null ? exposure : Math.min(current.minExposure, exposure);
        current.maxExposure = current.maxExposure === null ? exposure : Math.max(current.maxExposure, exposure);
      }
      continue;
    }
    current = { kind: 'points', first: point, last: point, points: 1, samples: point.samples, minExposure: exposure, maxExposure: exposure };
    out.push(current);
  }
  for (const gap of gaps) out.push({ kind: 'gap', gap });
  return out;
}

function historySection(report: SessionReport, range: { from: string; to: string }): unknown[] {
  const unreachable = report.sites.filter((site) => !site.reachable).map((site) => site.site);
  const content: unknown[] = [{ text: `Exposure history ${range.from} to ${range.to}`, bold: true }];
  if (unreachable.length > 0) content.push({ text: `No history from ${unreachable.join(', ')}: not reachable when the report was built.`, color: '#e03131' });
  if (report.history.length === 0) return [...content, none('no site could be asked')];
  content.push({ svg: exposureChartSvg(report.history, range), margin: [0, 4, 0, 4] });
  for (const history of report.history) {
    const resolution = history.resolutionSeconds > history.sampleIntervalSeconds ? `; a point per ${history.resolutionSeconds} s, the worst sample of each` : '';
    content.push({ text: `As sampled at ${history.site} (every ${history.sampleIntervalSeconds} s${resolution}): ${history.points.length} points`, margin: [0, 4, 0, 0] });
    const rows: Cell[][] = historyStretches(history).map((stretch) =>
      stretch.kind === 'gap'
        ? [stretch.gap.from, stretch.gap.to, '0', { text: 'no samples', color: '#e03131' }, '-', '-', '-', '-', { text: 'the agent was not running: nothing known from this site', italics: true }]
        : [
            stretch.first.time,
            stretch.last.time,
            `${stretch.points} / ${stretch.samples}`,
            stretch.last.state,
            { text: stretch.last.health, color: healthColours[stretch.last.health] },
            stretch.minExposure === stretch.maxExposure ? seconds(stretch.maxExposure) : `${seconds(stretch.minExposure)} .. ${seconds(stretch.maxExposure)}`,
            `${stretch.last.outOfSyncTracks} (${formatSize(stretch.last.outOfSyncBytes)})`,
            dash(peersText(stretch.last)),
            dash(stretch.last.detail),
          ],
    );
    content.push(
      rows.length === 0
        ? none('no samples in this range')
        : table(['From', 'To', 'Points / samples', 'State', 'Health', 'Exposure', 'Out of sync', 'Peers', 'Detail'], rows, ['auto', 'auto', 'auto', 'auto', 'auto', 'auto', 'auto', 'auto', '*']),
    );
  }
  return content;
}

const warningColours: Record<string, string> = { severe: '#e03131', warning: '#f08c00' };

/** The session's journal at its secondary site (H1 -> H2): policy, window covered of the one required, space used, warnings, bookmarks. */
function protectionSection(report: SessionReport): unknown[] {
  const protection = report.protection;
  if (!protection) return [];
  const heading = { text: `Protection (CDP journal at ${protection.site})`, bold: true };
  const journal = protection.journal;
  if (!journal) return [heading, { text: `Journal state unknown: ${dash(protection.problem)}`, color: '#e03131', margin: [0, 2, 0, 10] }];
  const { policy, status } = journal;
  const usedPercent = status.budgetBytes > 0 ? Math.round((status.usedBytes / status.budgetBytes) * 100) : 0;
  const windowShort = status.warnings.some((warning) => warning.code === 'window-short');
  return [
    heading,
    {
      text: `Policy: space ${formatSize(policy.budgetBytes)} · required window ${windowText(policy.requiredWindowSeconds)} · bookmarks kept ${policy.bookmarkRetentionSeconds === null ? 'until space runs out' : windowText(policy.bookmarkRetentionSeconds)}`,
      margin: [0, 2, 0, 0],
    },
    {
      text: `Window covered ${windowText(status.coveredWindowSeconds)} of ${windowText(status.requiredWindowSeconds)} required${status.predictedWindowSeconds === null ? '' : ` · holds about ${windowText(status.predictedWindowSeconds)} at the rate so far`}`,
      color: windowShort ? '#f08c00' : undefined,
    },
    {
      text: `Journal use ${formatSize(status.usedBytes)} of ${formatSize(status.budgetBytes)} (${usedPercent} %) · ${status.pointCount} points, ${status.bookmarkCount} bookmarks · oldest point ${dash(status.oldestPoint?.time)} · newest point ${dash(status.newestPoint?.time)}`,
    },
    ...status.warnings.map((warning) => ({ text: `${warning.level.toUpperCase()} ${warning.code}: ${warning.message}`, color: warningColours[warning.level] ?? '#f08c00' })),
    ...(journal.images.length > 0 ? [{ text: `Open images: ${journal.images.map((image) => `${image.id} (${image.exports.map((each) => each.export).join(', ')})`).join('; ')}` }] : []),
    protection.bookmarks.length === 0
      ? none('no bookmarks')
      : table(['Bookmark', 'Time', 'Point'], protection.bookmarks.map((bookmark) => [bookmark.name, bookmark.time, String(bookmark.seq)]), ['auto', 'auto', '*']),
  ];
}

function sessionSection(report: SessionReport, range: { from: string; to: string }): unknown[] {
  const { session } = report;
  return [
    { text: `Session ${session.name}`, style: 'heading', pageBreak: 'before' },
    {
      text: [
        `${session.type} · ${session.direction} (H1 ${session.h1Site}, H2 ${session.h2Site}) · as ${report.site} saw it at ${session.observedAt} · `,
        { text: `${session.state} / ${session.health}`, color: healthColours[session.health], bold: true },
      ],
    },
    { text: `Consistency time ${dash(session.consistencyTime)} · exposure ${seconds(session.exposureSeconds)} · recoverable ${session.recoverable ? 'yes' : 'no'}`, margin: [0, 2, 0, 2] },
    ...(session.detail ? [{ text: session.detail, italics: true }] : []),
    table(['Site', 'Reached'], siteRows(report.sites), ['auto', '*']),
    { text: 'Copy sets', bold: true },
    report.copySets.length === 0
      ? none('no copy sets')
      : table(
          ['Copy set', 'State', 'Out of sync', 'Target changed', 'Tracks', 'Synced', 'Last verify'],
          report.copySets.map((set) => [
            set.name,
            set.reason ? `${set.state} (${set.reason})` : set.state,
            `${set.outOfSyncTracks} (${formatSize(set.outOfSyncBytes)})`,
            String(set.targetChangedTracks),
            String(set.trackCount),
            set.syncedPercent === null ? '-' : `${set.syncedPercent} %`,
            set.lastVerify
              ? `${set.lastVerify.ok ? 'ok' : 'DIFFERENCES'}: ${set.lastVerify.comparedTracks} compared, ${set.lastVerify.differingTracks} differing, ${set.lastVerify.unverifiedTracks} unverified at ${set.lastVerify.finishedAt}`
              : 'never verified',
          ]),
          ['*', 'auto', 'auto', 'auto', 'auto', 'auto', '*'],
        ),
    ...protectionSection(report),
    ...historySection(report, range),
    { text: 'Flash copies of these volumes', bold: true },
    report.flashSessions.length === 0
      ? none('none')
      : table(
          ['Site', 'Flash session', 'State', 'Point in time', 'Withdrawn', 'Pairs'],
          report.flashSessions.map((flash) => [
            flash.site,
            flash.name,
            flash.state,
            dash(flash.pointInTime),
            dash(flash.withdrawnAt),
            flash.pairs.map((pair) => `${pair.source} -> ${pair.target} ${pair.state} ${pair.percent} %`).join('\n'),
          ]),
          ['auto', 'auto', 'auto', 'auto', 'auto', '*'],
        ),
    { text: 'Events at every reached site', bold: true },
    report.events.length === 0
      ? none('none')
      : table(['Time', 'Site', 'Type', 'Severity', 'Message'], report.events.map((event) => [event.time, event.site, event.type, event.severity, event.message]), ['auto', 'auto', 'auto', 'auto', '*']),
    { text: 'Audit trail at every reached site', bold: true },
    report.audit.length === 0
      ? none('none')
      : table(
          ['Time', 'Site', 'Who', 'Action', 'Result', 'Parameters'],
          report.audit.map((entry) => [entry.time, entry.site, auditWho(entry), auditAction(entry), auditResult(entry), entry.params === null ? '-' : JSON.stringify(entry.params)]),
          ['auto', 'auto', 'auto', 'auto', 'auto', '*'],
        ),
  ];
}

function clusterSection(document: ReportDocument): unknown[] {
  const cluster = document.cluster;
  if (!cluster) return [];
  const history = document.clusterHistory;
  return [
    {
      text: [`Processor at ${cluster.processorSite} · health `, { text: cluster.health, color: healthColours[cluster.health], bold: true }],
      margin: [0, 0, 0, 2],
    },
    { text: `Cluster consistency time ${dash(cluster.consistencyTime)} · exposure ${seconds(cluster.exposureSeconds)} · consolidated ${dash(cluster.consolidatedAt)}` },
    table(
      ['Member', 'Site', 'Status', 'State', 'Health', 'Consistency time', 'Exposure', 'Reported'],
      cluster.members.map((member) => [member.session, member.site, member.status, member.state, member.health, dash(member.consistencyTime), seconds(member.exposureSeconds), dash(member.reportedAt)]),
    ),
    ...(document.missing.length > 0
      ? [
          { text: 'Members not in this report', bold: true, color: '#e03131' },
          table(['Member', 'Site', 'Why'], document.missing.map((member) => [member.session, member.site, member.reason]), ['auto', 'auto', '*']),
        ]
      : []),
    { text: `Master data set history${history ? ` at ${history.site}` : ''}`, bold: true },
    !history || history.records.length === 0
      ? none('no records')
      : table(
          ['Sequence', 'Time', 'Health', 'Consistency time', 'Exposure', 'Members'],
          history.records.map((record) => [
            String(record.sequence),
            record.time,
            record.health,
            dash(record.consistencyTime),
            seconds(record.exposureSeconds),
            record.members.map((member) => `${member.site}/${member.session} ${member.status} ${member.state} ${member.health}`).join('; '),
          ]),
          ['auto', 'auto', 'auto', 'auto', 'auto', '*'],
        ),
    ...(history?.damage ? [{ text: `Master data set: ${history.damage}`, color: '#e03131' }] : []),
  ];
}

/**
 * The report as a PDF with the same content as the JSON and the CSV: the
 * sites asked (unreachable ones named, with since when), the cluster with its
 * master data set history, then per session its copy sets by name with their
 * last verify, the exposure history (a chart and every point, as stretches of
 * alike points), the flash copies of its volumes and the events of every
 * reached site.
 */
export async function reportPdf(document: ReportDocument): Promise<Buffer> {
  const range = { from: document.historyFrom, to: document.historyTo };
  const definition = {
    // ASCII metadata: the title stays readable in the file (tools and tests find the session's name without a PDF parser).
    info: { title: `Tandem report: ${document.title}`, subject: document.sessions.map((each) => each.session.name).join(', '), creator: 'Tandem console' },
    pageSize: 'A4',
    pageOrientation: 'landscape',
    pageMargins: [32, 32, 32, 32],
    defaultStyle: { font: 'Helvetica', fontSize: 9 },
    styles: { title: { fontSize: 16, bold: true }, heading: { fontSize: 12, bold: true, margin: [0, 10, 0, 2] } },
    content: [
      { text: `Tandem - ${document.title}`, style: 'title' },
      { text: `Generated ${document.generatedAt} · exposure history ${document.historyFrom} to ${document.historyTo}`, color: '#868e96', margin: [0, 0, 0, 8] },
      { text: 'Sites', bold: true },
      table(['Site', 'Reached'], siteRows(document.sites), ['auto', '*']),
      ...clusterSection(document),
      ...document.sessions.flatMap((report) => sessionSection(report, range)),
    ],
  };
  return pdfmake().createPdf(definition).getBuffer();
}
