import { describe, expect, it } from 'vitest';
import type { SiteList } from '../../../main/src/shared/console-api.ts';
import { siteKeys } from '../features/sites/api/site-keys.ts';
import { volumeKeys } from '../features/volumes/api/volume-keys.ts';
import { siteFixture } from '../test/fixtures.ts';
import { applyConsoleEvent } from './console-events.ts';
import { createQueryClient } from './query-client.ts';

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
