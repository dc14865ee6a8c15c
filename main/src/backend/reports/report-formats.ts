import Papa from 'papaparse';
import type { ReportDocument, ReportFile, ReportFormat } from '../../shared/sessions-api.ts';
import { reportPdf } from './report-pdf.ts';

/** Columns of the CSV report: one row per copy set, then one row per recent event (`record` tells them apart). */
export const csvColumns = [
  'record',
  'site',
  'session',
  'type',
  'state',
  'health',
  'direction',
  'consistency_time',
  'exposure_seconds',
  'copy_set',
  'h1_volume',
  'h2_volume',
  'pair_state',
  'reason',
  'out_of_sync_tracks',
  'target_changed_tracks',
  'track_count',
  'synced_percent',
  'event_time',
  'event_type',
  'severity',
  'message',
] as const;

type CsvRow = Partial<Record<(typeof csvColumns)[number], string | number | null>>;

export function reportCsv(document: ReportDocument): string {
  const rows: CsvRow[] = [];
  for (const { site, session, events } of document.sessions) {
    const common = {
      site,
      session: session.name,
      type: session.type,
      state: session.state,
      health: session.health,
      direction: session.direction,
      consistency_time: session.consistencyTime,
      exposure_seconds: session.exposureSeconds,
    };
    for (const pair of session.pairs) {
      rows.push({
        record: 'copy-set',
        ...common,
        copy_set: pair.id,
        h1_volume: pair.h1Volume,
        h2_volume: pair.h2Volume,
        pair_state: pair.state,
        reason: pair.reason,
        out_of_sync_tracks: pair.outOfSyncTracks,
        target_changed_tracks: pair.targetChangedTracks,
        track_count: pair.trackCount,
        synced_percent: pair.syncedPercent,
      });
    }
    for (const event of events) {
      rows.push({ record: 'event', site, session: session.name, event_time: event.time, event_type: event.type, severity: event.severity, message: event.message });
    }
  }
  return Papa.unparse({ fields: [...csvColumns], data: rows.map((row) => csvColumns.map((column) => row[column] ?? '')) });
}

function fileStem(document: ReportDocument): string {
  const stamp = document.generatedAt.replace(/[:.]/g, '-');
  return `tandem-${document.title.toLowerCase().replace(/[^a-z0-9.-]+/g, '-')}-${stamp}`;
}

/** The report in one format, as a file the renderer saves (save dialog in Electron, download in a browser). */
export async function renderReport(document: ReportDocument, format: ReportFormat): Promise<ReportFile> {
  const stem = fileStem(document);
  if (format === 'csv') return { fileName: `${stem}.csv`, mimeType: 'text/csv', encoding: 'utf8', content: reportCsv(document) };
  if (format === 'json') return { fileName: `${stem}.json`, mimeType: 'application/json', encoding: 'utf8', content: `${JSON.stringify(document, null, 2)}\n` };
  const pdf = await reportPdf(document);
  return { fileName: `${stem}.pdf`, mimeType: 'application/pdf', encoding: 'base64', content: pdf.toString('base64') };
}
