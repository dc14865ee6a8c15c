import type { FastifyInstance } from 'fastify';
import { ProblemError, roleAllows, roleShortfall, routeAccess, type Role, type RouteAccess } from '@tandem/contract';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route, from the contract's `agentRouteRoles` (set by installRoleChecks, never by hand). */
    access?: RouteAccess;
  }
}

/**
 * Role enforcement, one place for every route. Each route's role comes from
 * the contract's `agentRouteRoles` table, looked up as the route registers:
 * a route missing from the table stops the agent from starting (so a new
 * route cannot forget to say who may call it), and a route marked public
 * must be `public` in the table and the other way round. Each request's
 * caller (authenticated by auth.ts before this hook runs) must hold the
 * route's role or more, else `forbidden-role` (403), naming both roles.
 */
export function installRoleChecks(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const accesses = new Set(methods.map((method) => routeAccess(method, route.url)));
    const [access] = accesses;
    if (access === undefined || accesses.size !== 1) {
      throw new Error(`${methods.join(',')} ${route.url} has no role in the contract's agentRouteRoles; add it there`);
    }
    const markedPublic = route.config?.public === true;
    if (markedPublic !== (access === 'public')) {
      throw new Error(`${methods.join(',')} ${route.url}: config.public and agentRouteRoles (${access}) disagree`);
    }
    route.config = { ...route.config, access };
  });

  app.addHook('onRequest', async (request) => {
    const access = request.routeOptions.config?.access;
    // No route matched (the not-found handler), or anyone may call it.
    if (access === undefined || access === 'public') return;
    const held: Role | null | undefined = request.client?.role;
    if (!held) throw new ProblemError('unauthenticated', 'this route needs a client certificate; pair with the agent first');
    if (!roleAllows(held, access)) {
      const who = `the client ${request.client?.subject ? `"${request.client.subject}"` : 'certificate'}`;
      throw new ProblemError('forbidden-role', `${request.method} ${request.routeOptions.url} ${roleShortfall(access, held, who)}`, {
        needed: access,
        held,
      });
    }
  });
}
