import { useQuery } from '@tanstack/react-query';
import { auditCsv, type AuditList } from '@tandem/contract';
import type { ReportFile } from '../../../../../main/src/shared/sessions-api.ts';
import { useApi } from '../../../app/api-context.tsx';
import { auditApi } from '../api/audit-api.ts';
import { auditKeys } from '../api/audit-keys.ts';

/** A site's audit trail, of one session when `session` is not empty. */
export function useAudit(siteId: string, session: string, limit: number) {
  const api = useApi();
  return useQuery({
    queryKey: auditKeys.list(siteId, session, limit),
    queryFn: () => auditApi.list(api, siteId, { session: session || undefined, limit }),
  });
}

/** The trail as a file to save (the same path reports take): CSV as the agent writes it, or the agent's JSON. */
export function auditFile(list: AuditList, format: 'csv' | 'json', session: string, now = new Date()): ReportFile {
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  const stem = `tandem-audit-${list.site}${session ? `-${session}` : ''}-${stamp}`.toLowerCase().replace(/[^a-z0-9.-]+/g, '-');
  if (format === 'csv') {
    return { fileName: `${stem}.csv`, mimeType: 'text/csv', encoding: 'utf8', content: auditCsv(list.entries.map((entry) => ({ site: list.site, entry }))) };
  }
  return { fileName: `${stem}.json`, mimeType: 'application/json', encoding: 'utf8', content: `${JSON.stringify(list, null, 2)}\n` };
}
