import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { agentEventTypes, ClientInfoSchema, ClientListSchema, ProblemError } from '@tandem/contract';
import { normalizeSerial } from '../../tls/keys.ts';
import { listClients, revokeClient } from '../../tls/pairing.ts';
import type { ApiDependencies } from '../app.ts';
import type { ZodTypeProvider } from '../zod-schemas.ts';

/**
 * `GET /v1/clients`: every client certificate the agent issued, with its
 * role; `DELETE /v1/clients/:serial`: revokes one. A client's role changes
 * by revoking it and pairing it again with a token made for the new role
 * (the role lives in the certificate, which the agent cannot change).
 */
export async function clientRoutes(fastify: FastifyInstance, deps: ApiDependencies): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const catalog = deps.engine.catalog;

  app.get('/v1/clients', { schema: { response: { 200: ClientListSchema } } }, async () => ({ clients: listClients(catalog.db) }));

  app.delete(
    '/v1/clients/:serial',
    { schema: { params: z.object({ serial: z.string().regex(/^[0-9A-Fa-f:]{1,128}$/, 'a serial is hexadecimal') }), response: { 200: ClientInfoSchema } } },
    async (request) => {
      if (request.client && normalizeSerial(request.client.serial) === normalizeSerial(request.params.serial)) {
        throw new ProblemError('conflict', 'a client cannot revoke its own certificate; revoke it from another administrator client');
      }
      const revoked = revokeClient(catalog.db, request.params.serial);
      if (!revoked) throw new ProblemError('not-found', `no client has the serial ${request.params.serial}`);
      catalog.recordEvent(agentEventTypes.clientRevoked, 'warning', revoked.name, `client ${revoked.name} revoked`, { serial: revoked.serial });
      return revoked;
    },
  );
}
