import { describe, expect, it } from 'vitest';
import { actionPlan, availableActions } from './session-actions.ts';
import { clusterFixture, pairFixture, sessionFixture, siteClusterFixture } from './session-fixtures.test-helpers.ts';
import { copyingPairs, directionText, formatSeconds, groupByCluster, inconsistentPairs, mergeSessions, primarySites, receivingSites } from './session-model.ts';

describe('mergeSessions', () => {
  it("shows a session once, from its source's view, with target-changed counts from the target", () => {
    const atSource = sessionFixture({ role: 'h1', pairs: [pairFixture({ outOfSyncTracks: 4, targetChangedTracks: 0 })] });
    const atTarget = sessionFixture({ role: 'h2', pairs: [pairFixture({ outOfSyncTracks: 0, targetChangedTracks: 7 })] });
    const merged = mergeSessions([
      { siteId: 'agent-b', siteName: 'beta', sessions: [atTarget] },
      { siteId: 'agent-a', siteName: 'alpha', sessions: [atSource] },
    ]);
    expect(merged).toHaveLength(1);
    expect(merged[0].siteName).toBe('alpha');
    expect(merged[0].views.map((view) => view.siteName)).toEqual(['beta', 'alpha']);
    expect(merged[0].session.pairs[0]).toMatchObject({ outOfSyncTracks: 4, targetChangedTracks: 7 });
  });

  it("carries a copy set's 'not consistent' from the target's view into the source's view shown", () => {
    const reason = 'initial copy not complete: recovered (or still copying) before it joined the consistency group';
    const log = pairFixture({ id: 'p2', h1Volume: 'log', h2Volume: 'log-copy', state: 'target-available' });
    const atSource = sessionFixture({ role: 'h1', state: 'target-available', pairs: [pairFixture({ state: 'target-available' }), log] });
    const atTarget = sessionFixture({ role: 'h2', state: 'target-available', pairs: [pairFixture({ state: 'target-available' }), { ...log, consistent: false, inconsistentReason: reason }] });
    const [merged] = mergeSessions([
      { siteId: 'agent-b', siteName: 'beta', sessions: [atTarget] },
      { siteId: 'agent-a', siteName: 'alpha', sessions: [atSource] },
    ]);
    expect(merged.siteName).toBe('alpha');
    expect(merged.session.pairs[0].consistent).toBeUndefined();
    expect(merged.session.pairs[1]).toMatchObject({ consistent: false, inconsistentReason: reason });
    expect(inconsistentPairs(merged.session).map((pair) => pair.id)).toEqual(['p2']);
    // The source alone says nothing about it.
    const [sourceOnly] = mergeSessions([{ siteId: 'agent-a', siteName: 'alpha', sessions: [atSource] }]);
    expect(inconsistentPairs(sourceOnly.session)).toEqual([]);
  });

  it('after a failback the H2 view is the source view', () => {
    const merged = mergeSessions([
      { siteId: 'agent-a', siteName: 'alpha', sessions: [sessionFixture({ role: 'h1', direction: 'h2-h1' })] },
      { siteId: 'agent-b', siteName: 'beta', sessions: [sessionFixture({ role: 'h2', direction: 'h2-h1' })] },
    ]);
    expect(merged[0].siteName).toBe('beta');
  });
});

describe('multi-primary sessions', () => {
  const multi = (overrides: Parameters<typeof sessionFixture>[0] = {}) =>
    sessionFixture({ type: 'async', h2Site: 'charlie', pairs: [pairFixture({ id: 'pa', h1Volume: 'a' }), pairFixture({ id: 'pb', h1Volume: 'b', primarySite: 'bravo' })], ...overrides });

  it("shows the control agent's view (the H1 site knows every copy set), not a member's", () => {
    const atMember = multi({ pairs: [pairFixture({ id: 'pb', h1Volume: 'b' })], state: 'suspended' });
    const merged = mergeSessions([
      { siteId: 'agent-b', siteName: 'bravo', sessions: [atMember] },
      { siteId: 'agent-a', siteName: 'alpha', sessions: [multi()] },
      { siteId: 'agent-c', siteName: 'charlie', sessions: [multi({ role: 'h2' })] },
    ]);
    expect(merged[0].siteName).toBe('alpha');
    expect(merged[0].session.pairs.map((pair) => pair.h1Volume)).toEqual(['a', 'b']);
  });

  it('names every primary site as a source, and as receivers after a failback', () => {
    expect(primarySites(multi())).toEqual(['alpha', 'bravo']);
    expect(directionText(multi())).toBe('alpha, bravo → charlie');
    expect(receivingSites(multi())).toEqual(['charlie']);
    const failedBack = multi({ direction: 'h2-h1', role: 'h2' });
    expect(directionText(failedBack)).toBe('charlie → alpha, bravo');
    expect(receivingSites(failedBack)).toEqual(['alpha', 'bravo']);
    expect(directionText(sessionFixture())).toBe('alpha → beta');
    expect(actionPlan(multi(), 'recover').consequence).toContain("writable at charlie; alpha, bravo's changes after now");
    expect(actionPlan(failedBack, 'recover').consequence).toContain('writable at alpha, bravo;');
  });
});

describe('groupByCluster', () => {
  it('puts members under their cluster and the rest under "no cluster"', () => {
    const orders = sessionFixture();
    const ledger = sessionFixture({ id: 's2', name: 'ledger' });
    const sessions = mergeSessions([{ siteId: 'agent-a', siteName: 'alpha', sessions: [orders, ledger] }]);
    const groups = groupByCluster(sessions, [siteClusterFixture(clusterFixture('payments', [orders]))]);
    expect(groups.map((group) => [group.cluster?.cluster.name ?? null, group.sessions.map((entry) => entry.session.name)])).toEqual([
      ['payments', ['orders']],
      [null, ['ledger']],
    ]);
  });
});

describe('actions', () => {
  it('offers what the state machine allows', () => {
    expect(availableActions(sessionFixture({ state: 'defined' })).map((plan) => plan.action)).toEqual(['start', 'terminate']);
    expect(availableActions(sessionFixture({ state: 'prepared' })).map((plan) => plan.action)).toEqual(['suspend', 'recover', 'terminate']);
    expect(availableActions(sessionFixture({ state: 'target-available' })).map((plan) => plan.action)).toEqual(['failback', 'terminate']);
  });

  it('says what failover does, in the sites of the current direction, and asks for an acknowledgement', () => {
    const plan = actionPlan(sessionFixture(), 'recover');
    expect(plan.consequence).toContain("Recover makes the copy volumes writable at beta; alpha's changes after now will be copied back only by failback.");
    expect(plan.confirm).toBe('acknowledge');
    const reversed = actionPlan(sessionFixture({ direction: 'h2-h1' }), 'recover');
    expect(reversed.consequence).toContain('writable at alpha');
    expect(actionPlan(sessionFixture({ state: 'preparing' }), 'recover').warnings.join(' ')).toContain('not yet a consistent image');
  });

  it('warns before a failover about each copy set still joining (syncing, or not consistent at the target)', () => {
    const joining = sessionFixture({
      state: 'preparing',
      detail: 'copy set log -> log-copy joining',
      pairs: [
        pairFixture(),
        pairFixture({ id: 'p2', h1Volume: 'log', h2Volume: 'log-copy', state: 'syncing', syncedPercent: 42.7, consistent: false, inconsistentReason: 'initial copy not complete' }),
        pairFixture({ id: 'p3', h1Volume: 'web', h2Volume: 'web-copy', state: 'duplex', consistent: false }),
      ],
    });
    expect(copyingPairs(joining).map((pair) => pair.id)).toEqual(['p2', 'p3']);
    const warnings = actionPlan(joining, 'recover').warnings;
    expect(warnings).toContain('Copy set log → log-copy is still syncing (42 % copied): after the failover its target beta:log-copy is not a consistent image. Wait until it is duplex if you can.');
    expect(warnings).toContain('Copy set web → web-copy is still in its initial copy: after the failover its target beta:web-copy is not a consistent image. Wait until it is duplex if you can.');
    expect(warnings.join(' ')).not.toContain('db → db-copy');
    expect(actionPlan(sessionFixture(), 'recover').warnings.join(' ')).not.toContain('Copy set');
  });

  it('formats exposure for people', () => {
    expect(formatSeconds(null)).toBe('–');
    expect(formatSeconds(2.25)).toBe('2.3 s');
    expect(formatSeconds(125)).toBe('2 min 5 s');
  });
});
