import { roleAllows, roleNeeded, type AgentRouteKey, type Role } from '@tandem/contract';
import type { SiteSummary } from '../../../../../main/src/shared/console-api.ts';
import { useSites } from './use-sites.ts';

/**
 * What this console may do at one site, from its role there (the role its
 * client certificate carries, as the agent reports it) and the contract's
 * route table, the same one the agent enforces. An unknown role (site not
 * reached yet, sites list not loaded) hides nothing: the agent still refuses
 * what the role does not allow, and the console shows its answer.
 */
export interface SiteAccess {
  role: Role | null;
  /** True unless the role is known and below what the route needs. */
  can(route: AgentRouteKey): boolean;
  /** Why the route is not for this console ("Needs the operator role; this console is paired with primary as monitor."), or null when it is. */
  reason(route: AgentRouteKey): string | null;
}

/** The words for a role below what is needed, naming the site. */
export function roleReason(needed: Role, held: Role, siteName: string): string {
  return `Needs the ${needed} role; this console is paired with ${siteName} as ${held}.`;
}

export function siteAccess(site: Pick<SiteSummary, 'site' | 'role'> | undefined | null): SiteAccess {
  const role = site?.role ?? null;
  const reason = (route: AgentRouteKey): string | null => {
    if (!site || role === null) return null;
    const needed = roleNeeded(route);
    return roleAllows(role, needed) ? null : roleReason(needed, role, site.site);
  };
  return { role, can: (route) => reason(route) === null, reason };
}

/** The console's access at a site, from the live sites list. */
export function useSiteAccess(siteId: string | null | undefined): SiteAccess {
  const sites = useSites();
  return siteAccess(sites.data?.sites.find((site) => site.id === siteId));
}

/**
 * For an action that may go to any site (a wizard picks it): why it is not
 * for this console when its role allows it at none of them, else null.
 */
export function everySiteReason(sites: Array<Pick<SiteSummary, 'site' | 'role'>>, route: AgentRouteKey): string | null {
  if (sites.length === 0) return null;
  const reasons = sites.map((site) => siteAccess(site).reason(route));
  if (reasons.some((reason) => reason === null)) return null;
  if (sites.length === 1) return reasons[0];
  const held = [...new Set(sites.map((site) => site.role))].join(' or ');
  return `Needs the ${roleNeeded(route)} role at a site; this console is paired as ${held} at every site.`;
}
