import { QueryObserver } from '@tanstack/react-query';
import { describe, expect, it, vi } from 'vitest';
import type { SiteList } from '../../../main/src/shared/console-api.ts';
import { siteKeys } from '../features/sites/api/site-keys.ts';
import { volumeKeys } from '../features/volumes/api/volume-keys.ts';
import { siteFixture } from '../test/fixtures.ts';
import { applyConsoleEvent } from './console-events.ts';
import { createQueryClient } from './query-client.ts';
import { REFETCH_MAX_WAIT_MS, REFETCH_QUIET_MS } from './refetch-batcher.ts';

describe('applyConsoleEvent', () => {
  it('replaces the site list and patches one site in place', () => {
    const queryClient = createQueryClient({ test: true });
    applyConsoleEvent(queryClient, { kind: 'sites', sites: [siteFixture(), siteFixture({ id: 'agent-2', site: 'secondary' })] });
    const reconnecting = siteFixture({ connection: { state: 'reconnecting', since: 'x', lastProblem: { problem: 'agent-unreachable', message: 'gone' }, nextAttemptAt: null } });
    applyConsoleEvent(queryClient, { kind: 'site', site: reconnecting });
    const list = queryClient.getQueryData<SiteList>(siteKeys.list());
    expect(list?.sites.map((site) => [site.site, site.connection.state])).toEqual([
      ['primary', 'reconnecting'],
      ['secondary', 'connected'],
    ]);
  });

  it('invalidates a site’s volumes on a volume event, and nothing for other sites', async () => {
    const queryClient = createQueryClient({ test: true });
    queryClient.setQueryData(volumeKeys.list('agent-1'), { volumes: [] });
    queryClient.setQueryData(volumeKeys.list('agent-2'), { volumes: [] });
    applyConsoleEvent(queryClient, {
      kind: 'agent-event',
      siteId: 'agent-1',
      event: { id: 1, time: 't', type: 'volume.created', severity: 'info', subject: 'v', message: 'created' },
    });
    expect(queryClient.getQueryState(volumeKeys.list('agent-1'))?.isInvalidated).toBe(true);
    expect(queryClient.getQueryState(volumeKeys.list('agent-2'))?.isInvalidated).toBe(false);
  });

  it('ignores events that change no data shown', () => {
    const queryClient = createQueryClient({ test: true });
    queryClient.setQueryData(volumeKeys.list('agent-1'), { volumes: [] });
    applyConsoleEvent(queryClient, {
      kind: 'agent-event',
      siteId: 'agent-1',
      event: { id: 2, time: 't', type: 'client.paired', severity: 'info', subject: null, message: 'paired' },
    });
    expect(queryClient.getQueryState(volumeKeys.list('agent-1'))?.isInvalidated).toBe(false);
  });
});

describe('a burst of agent events', () => {
  it('makes the volume list stale at once and refetches it once for the burst, not once per event', async () => {
    vi.useFakeTimers();
    try {
      const queryClient = createQueryClient({ test: true });
      let fetches = 0;
      const observer = new QueryObserver(queryClient, { queryKey: volumeKeys.list('agent-1'), queryFn: async () => ({ volumes: [], fetch: ++fetches }) });
      const unsubscribe = observer.subscribe(() => {});
      await vi.waitFor(() => expect(fetches).toBe(1));
      for (let id = 0; id < 100; id++) {
        applyConsoleEvent(queryClient, {
          kind: 'agent-event',
          siteId: 'agent-1',
          event: { id, time: 't', type: 'volume.created', severity: 'info', subject: `v${id}`, message: 'created' },
        });
        expect(queryClient.getQueryState(volumeKeys.list('agent-1'))?.isInvalidated).toBe(true);
      }
      await vi.advanceTimersByTimeAsync(REFETCH_MAX_WAIT_MS);
      expect(fetches).toBe(2);
      // A burst that goes on past the longest wait shows its progress: one refetch per wait, at most.
      for (let id = 100; id < 130; id++) {
        applyConsoleEvent(queryClient, {
          kind: 'agent-event',
          siteId: 'agent-1',
          event: { id, time: 't', type: 'volume.created', severity: 'info', subject: `v${id}`, message: 'created' },
        });
        await vi.advanceTimersByTimeAsync(REFETCH_QUIET_MS / 2);
      }
      await vi.advanceTimersByTimeAsync(REFETCH_MAX_WAIT_MS);
      const longBurstMs = 30 * (REFETCH_QUIET_MS / 2);
      expect(fetches).toBeGreaterThan(2);
      expect(fetches).toBeLessThanOrEqual(2 + Math.ceil(longBurstMs / REFETCH_MAX_WAIT_MS) + 1);
      unsubscribe();
    } finally {
      vi.useRealTimers();
    }
  });
});
