import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  agentEventTypes,
  CreatePairingTokenRequestSchema,
  PairingTokenSchema,
  PairRequestSchema,
  PairResponseSchema,
  ProblemError,
  roleAllows,
} from '@tandem/contract';
import { issueForPublicKey } from '../../tls/authority.ts';
import { certificateFingerprint } from '../../tls/fingerprint.ts';
import { checkPairingToken, createPairingToken, redeemPairingToken } from '../../tls/pairing.ts';
import type { ApiDependencies } from '../app.ts';
import type { ZodTypeProvider } from '../zod-schemas.ts';

/**
 * `POST /v1/pair` (public): trades a one-time token and a public key for a
 * client certificate signed by the agent's CA.
 */
export async function pairRoutes(fastify: FastifyInstance, deps: ApiDependencies): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const catalog = deps.engine.catalog;

  app.post(
    '/v1/pair',
    { config: { public: true }, schema: { body: PairRequestSchema, response: { 200: PairResponseSchema } } },
    async (request) => {
      const { token, publicKey, clientName } = request.body;
      // Check first so a bad key (or a role the token does not grant) does not burn a good token; redeem re-checks atomically.
      const granted = checkPairingToken(catalog.db, token);
      const role = request.body.role ?? granted;
      if (!roleAllows(granted, role)) {
        throw new ProblemError('forbidden-role', `this pairing token pairs a client as ${granted} at most, not as ${role}`, {
          needed: role,
          held: granted,
        });
      }
      const issued = await issueForPublicKey(deps.authority, publicKey, clientName, role);
      if (!issued) throw new ProblemError('bad-request', 'body.publicKey: is not an SPKI PEM public key');
      const fingerprint = certificateFingerprint(issued.certificatePem);
      redeemPairingToken(catalog.db, token, { serial: issued.serial, name: clientName, fingerprint, role });
      catalog.recordEvent(agentEventTypes.clientPaired, 'info', clientName, `client ${clientName} paired as ${role}`, {
        serial: issued.serial,
        fingerprint,
        role,
      });
      const info = deps.agentInfo();
      return {
        site: info.site,
        agentId: info.agentId,
        clientCertificate: issued.certificatePem,
        caCertificate: deps.authority.certificatePem,
        certificateFingerprint: info.certificateFingerprint,
        role,
      };
    },
  );

  // An administrator's client (the console) mints a one-time token: to pair another of its sites with this one
  // (administrator, the default), or for another console, as the role it names.
  app.post(
    '/v1/pairing-tokens',
    // No body at all: the default role.
    { schema: { body: z.preprocess((value) => value ?? {}, CreatePairingTokenRequestSchema), response: { 201: PairingTokenSchema } } },
    async (request, reply) => {
    const created = createPairingToken(catalog.db, request.body.role ?? 'administrator');
    return reply.code(201).send({ ...created, certificateFingerprint: deps.agentInfo().certificateFingerprint });
    },
  );
}
