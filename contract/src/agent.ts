import { z } from 'zod';
import { CallerSchema, RoleSchema } from './roles.ts';

/** The unauthenticated health probe: enough to show who answers, nothing more. */
export const HealthSchema = z.object({
  status: z.literal('ok'),
  site: z.string(),
  agentId: z.string(),
  version: z.string(),
});
export type Health = z.infer<typeof HealthSchema>;

export const AgentInfoSchema = z.object({
  site: z.string(),
  agentId: z.string(),
  version: z.string(),
  trackSize: z.number(),
  startedAt: z.string(),
  apiAddress: z.string(),
  nbdAddress: z.string().nullable(),
  nbdSocket: z.string().nullable(),
  /** SHA-256 fingerprint of the agent's API certificate, `AB:CD:…`. */
  certificateFingerprint: z.string(),
  /**
   * Who the agent takes the caller to be, with its role (`GET /v1/agent`
   * only; absent from agents older than roles, whose clients all had every right).
   */
  caller: CallerSchema.optional(),
});
export type AgentInfo = z.infer<typeof AgentInfoSchema>;

/**
 * Pairing: a client proves it holds a one-time token printed by
 * `tandem-agent token` and gets a client certificate for its public key.
 */
export const PairRequestSchema = z.object({
  token: z.string().min(1),
  /** The client's public key, SPKI PEM. */
  publicKey: z.string().min(1),
  /** A label for the client, shown in the agent's event log. */
  clientName: z.string().min(1).max(128),
  /**
   * The role the client asks for: at most the one the token was made for
   * (its own when left out). A console may ask for less than its token grants.
   */
  role: RoleSchema.optional(),
});
export type PairRequest = z.infer<typeof PairRequestSchema>;

export const PairResponseSchema = z.object({
  site: z.string(),
  agentId: z.string(),
  /** PEM certificate issued to the client, signed by the agent's CA. */
  clientCertificate: z.string(),
  /** PEM of the agent's CA: the client pins it (and the server certificate's fingerprint). */
  caCertificate: z.string(),
  certificateFingerprint: z.string(),
  /** The role the client certificate carries (absent from agents older than roles: every client had every right). */
  role: RoleSchema.optional(),
});
export type PairResponse = z.infer<typeof PairResponseSchema>;

/**
 * `POST /v1/pairing-tokens` (client certificate): a one-time pairing token
 * minted by an already paired client, e.g. the console pairing two of its
 * sites with each other. The same token `tandem-agent token` prints.
 */
export const PairingTokenSchema = z.object({
  token: z.string(),
  expiresAt: z.string(),
  /** The role a client paired with this token gets at most (see CreatePairingTokenRequest); absent from agents older than roles. */
  role: RoleSchema.optional(),
  certificateFingerprint: z.string(),
});
export type PairingToken = z.infer<typeof PairingTokenSchema>;
