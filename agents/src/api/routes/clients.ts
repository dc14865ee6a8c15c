import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { agentEventTypes, ClientInfoSchema, ClientListSchema, ProblemError, SetClientRoleRequestSchema } from '@tandem/contract';
import { normalizeSerial } from '../../tls/keys.ts';
import { listClients, revokeClient, setClientRole } from '../../tls/pairing.ts';
import type { ApiDependencies } from '../app.ts';
import type { ZodTypeProvider } from '../zod-schemas.ts';

/**
 * `GET /v1/clients`: every client certificate the agent issued, with its
 * role; `PATCH /v1/clients/:serial {role}`: narrows a client below its
 * certificate's role (or back up to it); `DELETE /v1/clients/:serial`:
 * revokes one. A role above the certificate's needs a new certificate:
 * revoke, then pair again with a token made for that role.
 */
export async function clientRoutes(fastify: FastifyInstance, deps: ApiDependencies): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const catalog = deps.engine.catalog;

  app.get('/v1/clients', { schema: { response: { 200: ClientListSchema } } }, async () => ({ clients: listClients(catalog.db) }));

  const ParamsSchema = z.object({ serial: z.string().regex(/^[0-9A-Fa-f:]{1,128}$/, 'a serial is hexadecimal') });
  const isCaller = (request: { client: { serial: string } | null }, serial: string) =>
    request.client !== null && normalizeSerial(request.client.serial) === normalizeSerial(serial);

  // Narrows a client below its certificate's role (or back up to it), effective from its next request.
  app.patch(
    '/v1/clients/:serial',
    { schema: { params: ParamsSchema, body: SetClientRoleRequestSchema, response: { 200: ClientInfoSchema } } },
    async (request) => {
      if (isCaller(request, request.params.serial)) {
        throw new ProblemError('conflict', "a client cannot change its own role; change it from another administrator client");
      }
      const changed = setClientRole(catalog.db, request.params.serial, request.body.role);
      catalog.recordEvent(agentEventTypes.clientRole, 'warning', changed.name, `client ${changed.name} now acts as ${changed.role}`, {
        serial: changed.serial,
        role: changed.role,
        certificateRole: changed.certificateRole,
      });
      return changed;
    },
  );

  app.delete(
    '/v1/clients/:serial',
    { schema: { params: ParamsSchema, response: { 200: ClientInfoSchema } } },
    async (request) => {
      if (isCaller(request, request.params.serial)) {
        throw new ProblemError('conflict', 'a client cannot revoke its own certificate; revoke it from another administrator client');
      }
      const revoked = revokeClient(catalog.db, request.params.serial);
      if (!revoked) throw new ProblemError('not-found', `no client has the serial ${request.params.serial}`);
      catalog.recordEvent(agentEventTypes.clientRevoked, 'warning', revoked.name, `client ${revoked.name} revoked`, { serial: revoked.serial });
      return revoked;
    },
  );
}
