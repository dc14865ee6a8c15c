import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { SetJournalRequestSchema, type ImageAccessRequest, type JournalView, type SetJournalRequest } from '@tandem/contract';
import type { SiteSummary } from '../../../../../main/src/shared/console-api.ts';
import { useApi } from '../../../app/api-context.tsx';
import { ApiProblem } from '../../../lib/api-client.ts';
import { journalApi } from '../api/journal-api.ts';
import { journalKeys } from '../api/journal-keys.ts';

const GiB = 1024 ** 3;

/**
 * The console site of a session's secondary agent (where its journal is):
 * a paired site named `h2Site`, preferring one that holds a view of the
 * session; null when the console is not paired with it.
 */
export function secondarySite(h2Site: string, sites: SiteSummary[], viewSiteIds: string[]): SiteSummary | null {
  const named = sites.filter((site) => site.site === h2Site);
  return named.find((site) => viewSiteIds.includes(site.id)) ?? named[0] ?? null;
}

/** A 404 `not-found` for the journal of a session the secondary holds: it has no journal. */
export function isNoJournal(error: unknown): boolean {
  return error instanceof ApiProblem && error.status === 404 && error.problem === 'not-found';
}

export type JournalFields = { spaceGiB: number | string; windowHours: number | string; retentionDays: number | string };

export function fieldsOfPolicy(view: JournalView): JournalFields {
  const { policy } = view;
  return {
    spaceGiB: Math.round((policy.budgetBytes / GiB) * 100) / 100,
    windowHours: Math.round((policy.requiredWindowSeconds / 3600) * 100) / 100,
    retentionDays: policy.bookmarkRetentionSeconds === null ? '' : Math.round((policy.bookmarkRetentionSeconds / 86_400) * 100) / 100,
  };
}

/**
 * The request the journal form stands for, checked with the contract's
 * schema: space in GiB, window in hours, bookmark retention in days (empty:
 * kept until space runs out).
 */
export function journalRequest(fields: JournalFields): { request: SetJournalRequest | null; errors: Partial<Record<keyof JournalFields, string>> } {
  const errors: Partial<Record<keyof JournalFields, string>> = {};
  const number = (key: keyof JournalFields, optional: boolean): number | null | undefined => {
    const value = fields[key];
    if (value === '' || value === null) {
      if (!optional) errors[key] = 'required';
      return optional ? null : undefined;
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      errors[key] = 'a number';
      return undefined;
    }
    return value;
  };
  const space = number('spaceGiB', false);
  const hours = number('windowHours', false);
  const days = number('retentionDays', true);
  const raw = {
    budgetBytes: space === undefined || space === null ? undefined : Math.round(space * GiB),
    requiredWindowSeconds: hours === undefined || hours === null ? undefined : hours * 3600,
    bookmarkRetentionSeconds: days === undefined ? undefined : days === null ? null : days * 86_400,
  };
  const fieldOf: Record<string, keyof JournalFields> = { budgetBytes: 'spaceGiB', requiredWindowSeconds: 'windowHours', bookmarkRetentionSeconds: 'retentionDays' };
  const parsed = SetJournalRequestSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = fieldOf[String(issue.path[0])];
      if (key) errors[key] ??= issue.code === 'too_small' ? 'must be above 0' : issue.message;
    }
  }
  return { request: parsed.success && Object.keys(errors).length === 0 ? parsed.data : null, errors };
}

/** The journal of a session at its secondary site; only fetched while `enabled` (the section is open and the site reached). */
export function useJournal(siteId: string | null, session: string, enabled: boolean) {
  const api = useApi();
  return useQuery({
    queryKey: journalKeys.view(siteId ?? '', session),
    queryFn: () => journalApi.view(api, siteId!, session),
    enabled: enabled && siteId !== null,
    // The window covered moves with time; events refresh the rest.
    refetchInterval: 15_000,
    retry: false,
  });
}

const pointSteps = [60, 300, 900, 3600, 6 * 3600, 86_400];

/** The coalescing step for a window: at most about 200 ticks on the timeline, from a few fixed steps (a stable query key). */
export function pointStep(coveredWindowSeconds: number): number {
  return pointSteps.find((step) => step >= coveredWindowSeconds / 200) ?? pointSteps.at(-1)!;
}

/** Its points, coalesced to one per `everySeconds` (every bookmark kept): the timeline's ticks and the bookmarks list. */
export function useJournalPoints(siteId: string | null, session: string, everySeconds: number, enabled: boolean) {
  const api = useApi();
  return useQuery({
    queryKey: [...journalKeys.points(siteId ?? '', session), everySeconds],
    queryFn: () => journalApi.points(api, siteId!, session, everySeconds),
    enabled: enabled && siteId !== null,
    refetchInterval: 15_000,
    retry: false,
  });
}

function useRefresh(siteId: string, session: string) {
  const queryClient = useQueryClient();
  return () => queryClient.invalidateQueries({ queryKey: [...journalKeys.site(siteId), session] });
}

export function useSetJournal(siteId: string, session: string) {
  const api = useApi();
  const queryClient = useQueryClient();
  const refresh = useRefresh(siteId, session);
  return useMutation({
    mutationFn: (policy: SetJournalRequest) => journalApi.set(api, siteId, session, policy),
    onSuccess: (view) => {
      queryClient.setQueryData(journalKeys.view(siteId, session), view);
      void refresh();
    },
  });
}

export function useDisableJournal(siteId: string, session: string) {
  const api = useApi();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: () => journalApi.disable(api, siteId, session),
    onSuccess: () => {
      queryClient.removeQueries({ queryKey: [...journalKeys.site(siteId), session] });
      void queryClient.invalidateQueries({ queryKey: [...journalKeys.site(siteId), session] });
    },
  });
}

export function useBookmark(siteId: string, session: string) {
  const api = useApi();
  const refresh = useRefresh(siteId, session);
  return useMutation({
    mutationFn: (name: string) => journalApi.bookmark(api, siteId, session, { name }),
    onSuccess: () => void refresh(),
  });
}

export function useOpenImage(siteId: string, session: string) {
  const api = useApi();
  const refresh = useRefresh(siteId, session);
  return useMutation({
    mutationFn: (request: ImageAccessRequest) => journalApi.openImage(api, siteId, session, request),
    onSuccess: () => void refresh(),
  });
}

export function useEndImage(siteId: string, session: string) {
  const api = useApi();
  const refresh = useRefresh(siteId, session);
  return useMutation({
    mutationFn: (id: number) => journalApi.endImage(api, siteId, session, id),
    onSuccess: () => void refresh(),
  });
}
