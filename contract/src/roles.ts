import { z } from 'zod';

/**
 * Roles of the clients of an agent's control API (see contract/PROTOCOL.md,
 * *Roles*). Each includes the ones before it:
 *
 * - `monitor`: reads everything (volumes, sessions, flash sessions, clusters,
 *   events and the event stream, history, reports, the audit trail).
 * - `operator`: also runs what exists: session actions (start, suspend,
 *   resume, failover, failback, recover…), verify, ship-now, flash copy
 *   sessions (establish, refresh, reverse, withdraw), snapshots, clusters,
 *   a session's alert thresholds.
 * - `administrator`: also changes what exists and who may: volumes (create,
 *   resize, delete), sessions and copy sets (define, change, delete),
 *   deleting flash sessions and clusters, site pairing, pairing tokens,
 *   clients and their roles, the site's alert settings (webhook).
 *
 * The role is carried by the client certificate the agent's CA issued at
 * pairing, as a subject organizational unit `OU=tandem-role:<role>`
 * (`roleCertificateUnitPrefix`). A certificate without one was issued before
 * roles existed, when every client had every right: it is an administrator
 * (`roleSource: 'legacy'`).
 */
export const roles = ['monitor', 'operator', 'administrator'] as const;
export const RoleSchema = z.enum(roles);
export type Role = z.infer<typeof RoleSchema>;

/** What a client certificate's subject OU starts with when it names the holder's role. */
export const roleCertificateUnitPrefix = 'tandem-role:';

/** The role of a certificate issued before roles existed (it had every right then). */
export const legacyCertificateRole: Role = 'administrator';

/** True when `held` includes everything `needed` may do. */
export function roleAllows(held: Role, needed: Role): boolean {
  return roles.indexOf(held) >= roles.indexOf(needed);
}

/**
 * Where a caller's role came from: its certificate, the rule for
 * certificates issued before roles (`legacy`: administrator), or an
 * administrator who narrowed the client below its certificate's role
 * (`narrowed`, `PATCH /v1/clients/:serial`).
 */
export const RoleSourceSchema = z.enum(['certificate', 'legacy', 'narrowed']);
export type RoleSource = z.infer<typeof RoleSourceSchema>;

/** Who the agent takes the caller to be (`GET /v1/agent` answers it as `caller`). */
export const CallerSchema = z.object({
  /** The certificate's subject common name (the label the client paired with). */
  subject: z.string(),
  serial: z.string(),
  role: RoleSchema,
  roleSource: RoleSourceSchema,
});
export type Caller = z.infer<typeof CallerSchema>;

/** Who may call a route: a role (and every role above it), or anyone (`public`: health probe, pairing). */
export type RouteAccess = Role | 'public';

/**
 * The role every control API route needs, keyed `METHOD /pattern` as the
 * agent registers it. The agent refuses to start with a route missing here,
 * and the console asks this table what its role may do, so the two cannot
 * disagree. Reads are `monitor` throughout.
 */
export const agentRouteRoles = {
  'GET /v1/health': 'public',
  'POST /v1/pair': 'public',
  'POST /v1/peers/accept': 'public',

  'GET /v1/agent': 'monitor',
  'GET /v1/pool': 'monitor',
  'GET /v1/events': 'monitor',
  'GET /v1/events/stream': 'monitor',
  'GET /v1/audit': 'monitor',

  'GET /v1/alerts': 'monitor',
  'GET /v1/alerts/settings': 'monitor',
  'PUT /v1/alerts/settings': 'administrator',
  'GET /v1/sessions/:name/alert-thresholds': 'monitor',
  'PUT /v1/sessions/:name/alert-thresholds': 'operator',

  'GET /v1/sessions/:name/journal': 'monitor',
  'GET /v1/sessions/:name/journal/points': 'monitor',
  'PUT /v1/sessions/:name/journal': 'administrator',
  'DELETE /v1/sessions/:name/journal': 'administrator',
  'POST /v1/sessions/:name/journal/bookmarks': 'operator',
  'GET /v1/sessions/:name/images': 'monitor',
  'POST /v1/sessions/:name/images': 'operator',
  'DELETE /v1/sessions/:name/images/:id': 'operator',

  'POST /v1/pairing-tokens': 'administrator',
  'GET /v1/clients': 'administrator',
  'PATCH /v1/clients/:serial': 'administrator',
  'DELETE /v1/clients/:serial': 'administrator',

  'GET /v1/volumes': 'monitor',
  'GET /v1/volumes/:name': 'monitor',
  'GET /v1/volumes/:name/snapshots': 'monitor',
  'GET /v1/volumes/:name/track-map': 'monitor',
  'GET /v1/volumes/:name/tracks/:track': 'monitor',
  'POST /v1/volumes': 'administrator',
  'PATCH /v1/volumes/:name': 'administrator',
  'DELETE /v1/volumes/:name': 'administrator',
  'POST /v1/volumes/:name/snapshots': 'operator',

  'GET /v1/peers': 'monitor',
  'POST /v1/peers': 'administrator',
  'PATCH /v1/peers/:site': 'administrator',

  'GET /v1/sessions': 'monitor',
  'GET /v1/sessions/:name': 'monitor',
  'GET /v1/sessions/:name/history': 'monitor',
  'GET /v1/sessions/:name/pairs/:pair/bitmap': 'monitor',
  'GET /v1/sessions/:name/failback-preflight': 'monitor',
  'POST /v1/sessions': 'administrator',
  'PATCH /v1/sessions/:name': 'administrator',
  'POST /v1/sessions/:name/pairs': 'administrator',
  'DELETE /v1/sessions/:name/pairs/:volume': 'administrator',
  'POST /v1/sessions/:name/actions/:action': 'operator',
  'POST /v1/sessions/:name/verify': 'operator',
  'POST /v1/sessions/:name/ship-now': 'operator',

  'GET /v1/clusters': 'monitor',
  'GET /v1/clusters/:name': 'monitor',
  'GET /v1/clusters/:name/history': 'monitor',
  'POST /v1/clusters': 'operator',
  'PATCH /v1/clusters/:name': 'operator',
  'POST /v1/clusters/:name/members': 'operator',
  'DELETE /v1/clusters/:name/members/:session': 'operator',
  'DELETE /v1/clusters/:name': 'administrator',

  'GET /v1/flash-sessions': 'monitor',
  'GET /v1/flash-sessions/:name': 'monitor',
  'GET /v1/flash-sessions/:name/pairs/:pair/track-map': 'monitor',
  'POST /v1/flash-sessions': 'operator',
  'PATCH /v1/flash-sessions/:name': 'operator',
  'POST /v1/flash-sessions/:name/refresh': 'operator',
  'POST /v1/flash-sessions/:name/reverse': 'operator',
  'POST /v1/flash-sessions/:name/withdraw': 'operator',
  'DELETE /v1/flash-sessions/:name': 'administrator',
} as const satisfies Record<string, RouteAccess>;
export type AgentRouteKey = keyof typeof agentRouteRoles;

/** The role a route needs (`GET` for `HEAD`), or undefined for a route the table does not know. */
export function routeAccess(method: string, pattern: string): RouteAccess | undefined {
  const key = `${method === 'HEAD' ? 'GET' : method} ${pattern}`;
  return (agentRouteRoles as Record<string, RouteAccess>)[key];
}

/** The role a (non-public) route needs; throws for a route missing from the table (a programming error). */
export function roleNeeded(route: AgentRouteKey): Role {
  const access = agentRouteRoles[route];
  if (access === 'public') throw new Error(`${route} is public`);
  return access;
}

/** `needs the operator role; this console is paired as monitor`: why an action is refused or missing. */
export function roleShortfall(needed: Role, held: Role, who = 'this console'): string {
  return `needs the ${needed} role; ${who} is paired as ${held}`;
}

/** The body of `POST /v1/pairing-tokens`: the role the token pairs a client as (default administrator). */
export const CreatePairingTokenRequestSchema = z.object({ role: RoleSchema.optional() }).strict();
export type CreatePairingTokenRequest = z.infer<typeof CreatePairingTokenRequestSchema>;

/** `PATCH /v1/clients/:serial`: the role the client may act as from now on, at most its certificate's. */
export const SetClientRoleRequestSchema = z.object({ role: RoleSchema }).strict();
export type SetClientRoleRequest = z.infer<typeof SetClientRoleRequestSchema>;

/** One client the agent issued a certificate to (`GET /v1/clients`). */
export const ClientInfoSchema = z.object({
  serial: z.string(),
  name: z.string(),
  fingerprint: z.string(),
  /** The role the client acts as: its certificate's, or lower where an administrator narrowed it. */
  role: RoleSchema,
  /** `legacy`: a certificate from before roles (administrator); `narrowed`: set below the certificate's role. */
  roleSource: RoleSourceSchema,
  /** The role its certificate carries (`administrator` for one from before roles): the most it can be given without pairing again. */
  certificateRole: RoleSchema,
  pairedAt: z.string(),
  revokedAt: z.string().nullable(),
});
export type ClientInfo = z.infer<typeof ClientInfoSchema>;

export const ClientListSchema = z.object({ clients: z.array(ClientInfoSchema) });
export type ClientList = z.infer<typeof ClientListSchema>;
