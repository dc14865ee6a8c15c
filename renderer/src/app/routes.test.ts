import { describe, expect, it } from 'vitest';
import { overview, parseRoute, routeHash } from './routes.ts';
import { useUiStore } from './ui-store.ts';

describe('a URL per screen', () => {
  it('reads and writes every screen, names with odd characters included', () => {
    const screens = [
      overview,
      { ...overview, sessionsOpen: true },
      { ...overview, sessionsOpen: true, focusedSession: 'gold' },
      { ...overview, selectedSiteId: 'c0ffee-1' },
      { ...overview, selectedSiteId: 'c0ffee-1', selectedVolume: 'db.01_a' },
    ];
    for (const route of screens) expect(parseRoute(routeHash(route))).toEqual(route);
    expect(routeHash({ ...overview, sessionsOpen: true, focusedSession: 'a/b' })).toBe('#/sessions/a%2Fb');
    // The token fragment of the printed address is no route.
    expect(parseRoute('#token=abcdef')).toEqual(overview);
    expect(parseRoute('')).toEqual(overview);
  });

  it('the address follows the screen, and the screen follows the address (back, forward, reload)', async () => {
    useUiStore.getState().selectSite('agent-a');
    useUiStore.getState().selectVolume('db');
    expect(window.location.hash).toBe('#/sites/agent-a/volumes/db');
    useUiStore.getState().showSessions(true);
    expect(window.location.hash).toBe('#/sessions');
    window.location.hash = '#/sites/agent-b';
    window.dispatchEvent(new HashChangeEvent('hashchange'));
    await expect.poll(() => useUiStore.getState().selectedSiteId).toBe('agent-b');
    expect(useUiStore.getState().sessionsOpen).toBe(false);
  });
});
