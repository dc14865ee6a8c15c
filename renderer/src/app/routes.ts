/**
 * The screen on show, as the URL's hash says it, so a reload (or a link)
 * keeps the place. The token fragment `#token=…` the browser address carries
 * at first is consumed before the console renders (lib/backend-endpoint.ts)
 * and is never a route.
 *
 *   #/                                  every site (the overview)
 *   #/sessions                          the Sessions screen
 *   #/sessions/<session>                the Sessions screen scrolled to one session
 *   #/sites/<siteId>                    a site's volumes
 *   #/sites/<siteId>/volumes/<volume>   a site's volumes with one volume's track map open
 */
export interface Route {
  /** The site whose volumes are shown (null: the overview or the Sessions screen). */
  selectedSiteId: string | null;
  selectedVolume: string | null;
  sessionsOpen: boolean;
  /** The session the Sessions screen scrolls to and marks. */
  focusedSession: string | null;
}

export const overview: Route = { selectedSiteId: null, selectedVolume: null, sessionsOpen: false, focusedSession: null };

export function parseRoute(hash: string): Route {
  const parts = hash
    .replace(/^#\/?/, '')
    .split('/')
    .filter(Boolean)
    .map((part) => {
      try {
        return decodeURIComponent(part);
      } catch {
        return part;
      }
    });
  if (parts[0] === 'sessions') return { ...overview, sessionsOpen: true, focusedSession: parts[1] ?? null };
  if (parts[0] === 'sites' && parts[1]) return { ...overview, selectedSiteId: parts[1], selectedVolume: parts[2] === 'volumes' ? (parts[3] ?? null) : null };
  return overview;
}

export function routeHash(route: Route): string {
  const part = encodeURIComponent;
  if (route.sessionsOpen) return route.focusedSession ? `#/sessions/${part(route.focusedSession)}` : '#/sessions';
  if (route.selectedSiteId) {
    const site = `#/sites/${part(route.selectedSiteId)}`;
    return route.selectedVolume ? `${site}/volumes/${part(route.selectedVolume)}` : site;
  }
  return '#/';
}

export function sameRoute(a: Route, b: Route): boolean {
  return routeHash(a) === routeHash(b);
}
