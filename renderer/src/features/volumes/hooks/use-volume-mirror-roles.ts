import { useQuery } from '@tanstack/react-query';
import { useMemo } from 'react';
import type { SiteSummary } from '../../../../../main/src/shared/console-api.ts';
import { useApi } from '../../../app/api-context.tsx';
import { sessionKeys } from '../../sessions/api/session-keys.ts';
import { sessionsApi } from '../../sessions/api/sessions-api.ts';
import { mirrorRoles, type VolumeMirrorRole } from './volume-dependents.ts';

/** The copy sets each volume of a site is in (the site's session list, shared with the Sessions screen's cache and its events). */
export function useVolumeMirrorRoles(site: SiteSummary, enabled = true): Map<string, VolumeMirrorRole[]> {
  const api = useApi();
  const sessions = useQuery({ queryKey: sessionKeys.list(site.id), queryFn: () => sessionsApi.list(api, site.id), enabled });
  return useMemo(() => mirrorRoles(sessions.data ?? [], site.site), [sessions.data, site.site]);
}
