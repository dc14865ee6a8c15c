import { create } from 'zustand';
import { overview, parseRoute, routeHash, sameRoute, type Route } from './routes.ts';

/** UI state only (never server data): the screen on show (kept in the URL's hash) and what is open. */
export interface UiState extends Route {
  connectWizardOpen: boolean;
  selectSite(siteId: string | null): void;
  selectVolume(name: string | null): void;
  /** The Sessions screen (optionally scrolled to one session), or back to the overview. */
  showSessions(open: boolean, session?: string | null): void;
  setConnectWizardOpen(open: boolean): void;
}

const hasWindow = typeof window !== 'undefined';

export const useUiStore = create<UiState>()((set) => ({
  ...(hasWindow ? parseRoute(window.location.hash) : overview),
  connectWizardOpen: false,
  selectSite: (siteId) => set({ ...overview, selectedSiteId: siteId }),
  selectVolume: (name) => set({ selectedVolume: name }),
  showSessions: (open, session = null) => set({ ...overview, sessionsOpen: open, focusedSession: open ? session : null }),
  setConnectWizardOpen: (open) => set({ connectWizardOpen: open }),
}));

function currentRoute(state: Route): Route {
  const { selectedSiteId, selectedVolume, sessionsOpen, focusedSession } = state;
  return { selectedSiteId, selectedVolume, sessionsOpen, focusedSession };
}

if (hasWindow) {
  // The store follows the address (back, forward, a typed or reloaded URL) and the address follows the store.
  window.addEventListener('hashchange', () => {
    const route = parseRoute(window.location.hash);
    if (!sameRoute(route, currentRoute(useUiStore.getState()))) useUiStore.setState(route);
  });
  useUiStore.subscribe((state) => {
    const hash = routeHash(currentRoute(state));
    if (window.location.hash !== hash && !(hash === '#/' && window.location.hash === '')) window.location.hash = hash;
  });
}
