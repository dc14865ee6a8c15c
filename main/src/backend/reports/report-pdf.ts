import { createRequire } from 'node:module';
import type { ReportDocument, SessionReport } from '../../shared/sessions-api.ts';

/** The few pdfmake 0.3 calls used here (it ships no types). */
interface PdfMake {
  setFonts(fonts: Record<string, Record<string, string>>): void;
  setUrlAccessPolicy(policy: (url: string) => boolean): void;
  setLocalAccessPolicy(policy: (path: string) => boolean): void;
  createPdf(definition: unknown): { getBuffer(): Promise<Buffer> };
}

type Cell = string | { text: string; style?: string; bold?: boolean; color?: string };

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

const dash = (value: string | number | null | undefined) => (value === null || value === undefined ? '–' : String(value));
const seconds = (value: number | null) => (value === null ? '–' : `${value.toFixed(1)} s`);

function table(header: string[], rows: Cell[][], widths?: (string | number)[]) {
  return {
    table: { headerRows: 1, widths: widths ?? header.map(() => 'auto'), body: [header.map((text) => ({ text, bold: true })), ...rows] },
    layout: 'lightHorizontalLines',
    fontSize: 8,
    margin: [0, 4, 0, 10],
  };
}

function sessionSection({ site, session, events }: SessionReport): unknown[] {
  return [
    { text: `Session ${session.name}`, style: 'heading' },
    {
      text: [
        `${session.type} · ${session.direction} · at ${site} (${session.role}) · `,
        { text: `${session.state} / ${session.health}`, color: healthColours[session.health], bold: true },
      ],
    },
    { text: `Consistency time ${dash(session.consistencyTime)} · exposure ${seconds(session.exposureSeconds)}`, margin: [0, 2, 0, 2] },
    table(
      ['Copy set', 'H1 volume', 'H2 volume', 'State', 'Out of sync', 'Target changed', 'Tracks', 'Synced'],
      session.pairs.map((pair) => [
        pair.id,
        pair.h1Volume,
        pair.h2Volume,
        pair.reason ? `${pair.state} (${pair.reason})` : pair.state,
        String(pair.outOfSyncTracks),
        String(pair.targetChangedTracks),
        String(pair.trackCount),
        pair.syncedPercent === null ? '–' : `${Math.round(pair.syncedPercent)} %`,
      ]),
    ),
    { text: 'Recent events', bold: true },
    events.length === 0
      ? { text: 'none', italics: true, margin: [0, 2, 0, 10] }
      : table(['Time', 'Type', 'Severity', 'Message'], events.map((event) => [event.time, event.type, event.severity, event.message]), ['auto', 'auto', 'auto', '*']),
  ];
}

function clusterSection(document: ReportDocument): unknown[] {
  const cluster = document.cluster;
  if (!cluster) return [];
  return [
    { text: `Processor at ${cluster.processorSite} · health `, margin: [0, 0, 0, 2] },
    { text: cluster.health, color: healthColours[cluster.health], bold: true },
    { text: `Cluster consistency time ${dash(cluster.consistencyTime)} · exposure ${seconds(cluster.exposureSeconds)}` },
    table(
      ['Member', 'Site', 'Status', 'State', 'Health', 'Consistency time', 'Exposure'],
      cluster.members.map((member) => [member.session, member.site, member.status, member.state, member.health, dash(member.consistencyTime), seconds(member.exposureSeconds)]),
    ),
  ];
}

/** The report as a PDF: title, cluster summary (for a cluster), then each session's copy sets and recent events. */
export async function reportPdf(document: ReportDocument): Promise<Buffer> {
  const definition = {
    // ASCII metadata: the title stays readable in the file (tools and tests find the session's name without a PDF parser).
    info: { title: `Tandem report: ${document.title}`, subject: document.sessions.map((each) => each.session.name).join(', '), creator: 'Tandem console' },
    pageSize: 'A4',
    pageOrientation: 'landscape',
    pageMargins: [32, 32, 32, 32],
    defaultStyle: { font: 'Helvetica', fontSize: 9 },
    styles: { title: { fontSize: 16, bold: true }, heading: { fontSize: 12, bold: true, margin: [0, 10, 0, 2] } },
    content: [
      { text: `Tandem — ${document.title}`, style: 'title' },
      { text: `Generated ${document.generatedAt}`, color: '#868e96', margin: [0, 0, 0, 8] },
      ...clusterSection(document),
      ...document.sessions.flatMap(sessionSection),
    ],
  };
  return pdfmake().createPdf(definition).getBuffer();
}
