import { AuditListSchema, type AuditList } from '@tandem/contract';
import type { ApiClient } from '../../../lib/api-client.ts';

export interface AuditFilter {
  /** Only calls whose route names this session. */
  session?: string;
  /** At most this many, the newest. */
  limit?: number;
}

export const auditApi = {
  /** A site's audit trail as its agent keeps it (`GET /v1/audit` through the backend). */
  list: (api: ApiClient, siteId: string, filter: AuditFilter = {}): Promise<AuditList> => {
    const query = new URLSearchParams();
    if (filter.session) query.set('session', filter.session);
    if (filter.limit !== undefined) query.set('limit', String(filter.limit));
    const suffix = query.size > 0 ? `?${query}` : '';
    return api.get(`/api/sites/${encodeURIComponent(siteId)}/audit${suffix}`, AuditListSchema);
  },
};
