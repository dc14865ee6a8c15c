import { describe, expect, it } from 'vitest';
import { liveReach } from '../../../lib/site-reach.ts';
import { filterSessions, limitGroups, sortSessions } from './session-filter.ts';
import { groupByCluster, type MergedSession } from './session-model.ts';
import { pairFixture, sessionFixture } from './session-fixtures.test-helpers.ts';

function entry(name: string, over: Parameters<typeof sessionFixture>[0] = {}): MergedSession {
  const session = sessionFixture({ id: name, name, ...over });
  const view = { siteId: 'agent-a', siteName: 'alpha', session, receivedAt: 0, reach: liveReach };
  return { id: name, session, siteId: 'agent-a', siteName: 'alpha', views: [view], shown: view };
}

const gold = entry('gold', { exposureSeconds: 2 });
const ledger = entry('ledger', { state: 'suspended', health: 'severe', exposureSeconds: 40, pairs: [pairFixture({ h1Volume: 'log', h2Volume: 'log-copy' })] });
const app = entry('app', { exposureSeconds: null, state: 'defined', health: 'inactive' });
const silent = { ...entry('silent'), shown: { ...entry('silent').shown, reach: { ...liveReach, live: false } } } as MergedSession;

describe('sessions: filter, sort, pages', () => {
  it('filters by every word and by what needs attention (anything but live, Prepared and normal)', () => {
    expect(filterSessions([gold, ledger, app], { query: 'log-copy', show: 'all' }).map((e) => e.id)).toEqual(['ledger']);
    expect(filterSessions([gold, ledger, app], { query: 'alpha beta gold', show: 'all' }).map((e) => e.id)).toEqual(['gold']);
    expect(filterSessions([gold, ledger, app, silent], { query: '', show: 'attention' }).map((e) => e.id)).toEqual(['ledger', 'app', 'silent']);
  });

  it('sorts by name, by exposure (unknown last) and by attention', () => {
    expect(sortSessions([gold, ledger, app], 'name').map((e) => e.id)).toEqual(['app', 'gold', 'ledger']);
    expect(sortSessions([gold, ledger, app], 'exposure').map((e) => e.id)).toEqual(['ledger', 'gold', 'app']);
    expect(sortSessions([gold, ledger, app], 'attention').map((e) => e.id)).toEqual(['app', 'ledger', 'gold']);
  });

  it('cuts the groups to a number of cards in all, counting what it left out', () => {
    const groups = groupByCluster([app, gold, ledger], []);
    const { groups: cut, hidden } = limitGroups(groups, 2);
    expect(cut.flatMap((group) => group.sessions.map((e) => e.id))).toEqual(['app', 'gold']);
    expect(hidden).toBe(1);
  });
});
