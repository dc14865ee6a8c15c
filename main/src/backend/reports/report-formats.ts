import Papa from 'papaparse';
import { auditAction, auditResult, auditWho } from '@tandem/contract';
import type { ReportDocument, ReportFile, ReportFormat } from '../../shared/sessions-api.ts';
import { reportPdf } from './report-pdf.ts';
import { peersText } from './report-text.ts';

/**
 * Columns of the CSV report. One row per fact, `record` says which kind:
 * `site` (reached or not, since when), `cluster`, `cluster-member`,
 * `mds-record` (master data set history), `missing` (a member not read),
 * `session`, `copy-set`, `event`, `history` (one exposure point), `gap`
 * (no samples at a site), `flash` (one pair of a flash copy session),
 * `audit` (a state-changing call that named the session, at one site),
 * `protection` (the session's CDP journal at its secondary site while H1 -> H2: policy,
 * window covered of the one required, space used, warnings; or its state
 * unknown with the problem), `bookmark` (one bookmark of that journal).
 */
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
  'observed_at',
  'reachable',
  'unreachable_since',
  'problem',
  'copy_set',
  'h1_site',
  'h1_volume',
  'h2_site',
  'h2_volume',
  'pair_state',
  'reason',
  'out_of_sync_tracks',
  'out_of_sync_bytes',
  'target_changed_tracks',
  'track_count',
  'synced_percent',
  'last_verify_at',
  'last_verify_compared',
  'last_verify_differing',
  'last_verify_unverified',
  'time',
  'until',
  'samples',
  'peers',
  'event_type',
  'severity',
  'message',
  'flash_session',
  'flash_state',
  'point_in_time',
  'source',
  'target',
  'copied_percent',
  'cluster',
  'sequence',
  'who',
  'action',
  'parameters',
  'result',
  'journal_budget_bytes',
  'journal_used_bytes',
  'required_window_seconds',
  'covered_window_seconds',
  'bookmark_retention_seconds',
  'point_count',
  'bookmark_count',
  'oldest_point_at',
  'newest_point_at',
  'bookmark',
] as const;

export type CsvColumn = (typeof csvColumns)[number];
type CsvRow = Partial<Record<CsvColumn, string | number | boolean | null>>;

export function reportRows(document: ReportDocument): CsvRow[] {
  const rows: CsvRow[] = [];
  for (const site of document.sites) {
    rows.push({ record: 'site', site: site.site, reachable: site.reachable, time: site.checkedAt, unreachable_since: site.unreachableSince, problem: site.problem });
  }
  const cluster = document.cluster;
  if (cluster) {
    rows.push({ record: 'cluster', cluster: cluster.name, site: cluster.processorSite, health: cluster.health, consistency_time: cluster.consistencyTime, exposure_seconds: cluster.exposureSeconds, time: cluster.consolidatedAt });
    for (const member of cluster.members) {
      rows.push({
        record: 'cluster-member',
        cluster: cluster.name,
        session: member.session,
        site: member.site,
        state: member.state,
        health: member.health,
        consistency_time: member.consistencyTime,
        exposure_seconds: member.exposureSeconds,
        time: member.reportedAt,
        reason: member.status === 'unknown' ? `unknown: ${member.detail ?? 'not reporting'}` : member.detail,
      });
    }
  }
  for (const record of document.clusterHistory?.records ?? []) {
    rows.push({
      record: 'mds-record',
      cluster: record.cluster,
      site: document.clusterHistory!.site,
      sequence: record.sequence,
      time: record.time,
      health: record.health,
      consistency_time: record.consistencyTime,
      exposure_seconds: record.exposureSeconds,
      message: record.members.map((member) => `${member.site}/${member.session} ${member.status} ${member.state} ${member.health}`).join('; '),
    });
  }
  for (const member of document.missing) rows.push({ record: 'missing', session: member.session, site: member.site, reason: member.reason });
  for (const report of document.sessions) {
    const { session } = report;
    const name = session.name;
    rows.push({
      record: 'session',
      site: report.site,
      session: name,
      type: session.type,
      state: session.state,
      health: session.health,
      direction: session.direction,
      consistency_time: session.consistencyTime,
      exposure_seconds: session.exposureSeconds,
      observed_at: session.observedAt,
      reason: session.detail,
    });
    for (const set of report.copySets) {
      rows.push({
        record: 'copy-set',
        site: report.site,
        session: name,
        copy_set: set.name,
        h1_site: set.h1Site,
        h1_volume: set.h1Volume,
        h2_site: set.h2Site,
        h2_volume: set.h2Volume,
        pair_state: set.state,
        reason: set.reason,
        out_of_sync_tracks: set.outOfSyncTracks,
        out_of_sync_bytes: set.outOfSyncBytes,
        target_changed_tracks: set.targetChangedTracks,
        track_count: set.trackCount,
        synced_percent: set.syncedPercent,
        last_verify_at: set.lastVerify?.finishedAt,
        last_verify_compared: set.lastVerify?.comparedTracks,
        last_verify_differing: set.lastVerify?.differingTracks,
        last_verify_unverified: set.lastVerify?.unverifiedTracks,
      });
    }
    for (const event of report.events) {
      rows.push({ record: 'event', site: event.site, session: name, time: event.time, event_type: event.type, severity: event.severity, message: event.message });
    }
    for (const history of report.history) {
      for (const point of history.points) {
        rows.push({
          record: 'history',
          site: history.site,
          session: name,
          time: point.time,
          samples: point.samples,
          state: point.state,
          health: point.health,
          consistency_time: point.consistencyTime,
          exposure_seconds: point.exposureSeconds,
          out_of_sync_tracks: point.outOfSyncTracks,
          out_of_sync_bytes: point.outOfSyncBytes,
          peers: peersText(point),
          reason: point.detail,
        });
      }
      for (const gap of history.gaps) rows.push({ record: 'gap', site: history.site, session: name, time: gap.from, until: gap.to, message: 'no samples: the agent was not running' });
    }
    for (const entry of report.audit) {
      rows.push({
        record: 'audit',
        site: entry.site,
        session: name,
        time: entry.time,
        who: auditWho(entry),
        action: auditAction(entry),
        target: entry.target,
        parameters: entry.params === null ? null : JSON.stringify(entry.params),
        result: auditResult(entry),
        problem: entry.problem,
        message: entry.message,
      });
    }
    const protection = report.protection;
    if (protection) {
      const journal = protection.journal;
      rows.push({
        record: 'protection',
        site: protection.site,
        session: name,
        reachable: journal !== null,
        problem: protection.problem,
        journal_budget_bytes: journal?.policy.budgetBytes,
        journal_used_bytes: journal?.status.usedBytes,
        required_window_seconds: journal?.policy.requiredWindowSeconds,
        covered_window_seconds: journal?.status.coveredWindowSeconds,
        bookmark_retention_seconds: journal?.policy.bookmarkRetentionSeconds,
        point_count: journal?.status.pointCount,
        bookmark_count: journal?.status.bookmarkCount,
        oldest_point_at: journal?.status.oldestPoint?.time,
        newest_point_at: journal?.status.newestPoint?.time,
        message: journal?.status.warnings.map((warning) => `${warning.level} ${warning.code}: ${warning.message}`).join('; '),
      });
      for (const bookmark of protection.bookmarks) rows.push({ record: 'bookmark', site: protection.site, session: name, bookmark: bookmark.name, time: bookmark.time, sequence: bookmark.seq });
    }
    for (const flash of report.flashSessions) {
      for (const pair of flash.pairs) {
        rows.push({
          record: 'flash',
          site: flash.site,
          session: name,
          flash_session: flash.name,
          flash_state: flash.state,
          point_in_time: flash.pointInTime,
          until: flash.withdrawnAt,
          source: pair.source,
          target: pair.target,
          pair_state: pair.state,
          copied_percent: pair.percent,
        });
      }
    }
  }
  return rows;
}

export function reportCsv(document: ReportDocument): string {
  const cell = (value: string | number | boolean | null | undefined) => (value === null || value === undefined ? '' : String(value));
  return Papa.unparse({ fields: [...csvColumns], data: reportRows(document).map((row) => csvColumns.map((column) => cell(row[column]))) });
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
