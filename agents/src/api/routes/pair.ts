import type { FastifyInstance } from 'fastify';
import { agentEventTypes, PairingTokenSchema, PairRequestSchema, PairResponseSchema, ProblemError } from '@tandem/contract';
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
      // Check first so a bad key does not burn a good token; redeem re-checks atomically.
      checkPairingToken(catalog.db, token);
      const issued = await issueForPublicKey(deps.authority, publicKey, clientName);
      if (!issued) throw new ProblemError('bad-request', 'body.publicKey: is not an SPKI PEM public key');
      const fingerprint = certificateFingerprint(issued.certificatePem);
      redeemPairingToken(catalog.db, token, { serial: issued.serial, name: clientName, fingerprint });
      catalog.recordEvent(agentEventTypes.clientPaired, 'info', clientName, `client ${clientName} paired`, {
        serial: issued.serial,
        fingerprint,
      });
      const info = deps.agentInfo();
      return {
        site: info.site,
        agentId: info.agentId,
        clientCertificate: issued.certificatePem,
        caCertificate: deps.authority.certificatePem,
        certificateFingerprint: info.certificateFingerprint,
      };
    },
  );

  // A paired client (the console) mints a one-time token, to pair another of its sites with this one.
  app.post('/v1/pairing-tokens', { schema: { response: { 201: PairingTokenSchema } } }, async (_request, reply) => {
    const created = createPairingToken(catalog.db);
    return reply.code(201).send({ ...created, certificateFingerprint: deps.agentInfo().certificateFingerprint });
  });
}
