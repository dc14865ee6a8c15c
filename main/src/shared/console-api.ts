import { z } from 'zod';
import { AgentEventSchema, AgentInfoSchema, ProblemSchema, RoleSchema } from '@tandem/contract';

/**
 * The console backend's local API (renderer <-> backend), declared once and
 * used by the backend's routes and the renderer's hooks alike. Like the
 * contract, this file imports nothing from Node, Electron or the DOM.
 */

/** How the backend currently reaches a site's agent. */
export const ConnectionStateSchema = z.enum(['connecting', 'connected', 'reconnecting', 'offline']);
export type ConnectionState = z.infer<typeof ConnectionStateSchema>;

export const SiteConnectionSchema = z.object({
  state: ConnectionStateSchema,
  /** When the state last changed (ISO time). */
  since: z.string(),
  /** The last failure, if the state is not `connected`. */
  lastProblem: ProblemSchema.nullable(),
  /** When the next reconnect attempt happens (ISO time), while reconnecting. */
  nextAttemptAt: z.string().nullable(),
});
export type SiteConnection = z.infer<typeof SiteConnectionSchema>;

export const SiteSummarySchema = z.object({
  /** The console's id for the site: the agent id. */
  id: z.string(),
  site: z.string(),
  address: z.string(),
  certificateFingerprint: z.string(),
  addedAt: z.string(),
  connection: SiteConnectionSchema,
  /** The agent's own description, once it has been reached. */
  agent: AgentInfoSchema.nullable(),
  /**
   * What this console may do at the site (its client certificate's role): as
   * the agent last said (`agent.caller.role`; an agent older than roles gave
   * every client every right: administrator), else as issued at pairing;
   * null when neither is known (a site paired before roles, not reached yet).
   */
  role: RoleSchema.nullable(),
});
export type SiteSummary = z.infer<typeof SiteSummarySchema>;

export const SiteListSchema = z.object({ sites: z.array(SiteSummarySchema) });
export type SiteList = z.infer<typeof SiteListSchema>;

/** `host:port` of an agent's control API. */
export const AgentAddressSchema = z
  .string()
  .trim()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'an address is host:port, e.g. 127.0.0.1:7443');

export const ProbeSiteRequestSchema = z.object({ address: AgentAddressSchema });
export type ProbeSiteRequest = z.infer<typeof ProbeSiteRequestSchema>;

/** What the wizard shows for confirmation before anything is stored. */
export const ProbeSiteResponseSchema = z.object({
  address: z.string(),
  site: z.string(),
  agentId: z.string(),
  version: z.string(),
  certificateFingerprint: z.string(),
  alreadyConnected: z.boolean(),
});
export type ProbeSiteResponse = z.infer<typeof ProbeSiteResponseSchema>;

export const ConnectSiteRequestSchema = z.object({
  address: AgentAddressSchema,
  token: z.string().trim().min(1, 'enter the pairing token the agent printed'),
  /** The fingerprint the administrator confirmed; the agent must present exactly this certificate. */
  expectedFingerprint: z.string().min(1),
  /** The role the console asks for, at most the token's (the token's own when left out). */
  role: RoleSchema.optional(),
});
export type ConnectSiteRequest = z.infer<typeof ConnectSiteRequestSchema>;

export const SiteParamsSchema = z.object({ siteId: z.string().min(1) });

/** Frames on the backend's WebSocket (backend -> renderer). */
export const ConsoleEventSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('sites'), sites: z.array(SiteSummarySchema) }),
  z.object({ kind: z.literal('site'), site: SiteSummarySchema }),
  z.object({ kind: z.literal('agent-event'), siteId: z.string(), event: AgentEventSchema }),
]);
export type ConsoleEvent = z.infer<typeof ConsoleEventSchema>;

/** WebSocket subprotocol prefix that carries the bearer token (browsers cannot set headers on WebSockets). */
export const bearerProtocolPrefix = 'tandem.bearer.';
export const consoleProtocol = 'tandem.v1';

/** The backend's address and token as handed to the renderer (preload bridge or URL fragment). */
export const BackendEndpointSchema = z.object({
  url: z.string().url(),
  token: z.string().min(16),
});
export type BackendEndpoint = z.infer<typeof BackendEndpointSchema>;
