import type { FastifyInstance } from 'fastify';
import { auditCsv, AuditListQuerySchema, AuditListSchema } from '@tandem/contract';
import type { AuditLog } from '../../storage/audit-log.ts';
import type { ApiDependencies } from '../app.ts';
import type { ZodTypeProvider } from '../zod-schemas.ts';

/** `GET /v1/audit?since&limit&session&format`: the audit trail, JSON (`AuditList`) or CSV. */
export async function auditRoutes(fastify: FastifyInstance, deps: ApiDependencies & { auditLog: AuditLog }): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.get('/v1/audit', { schema: { querystring: AuditListQuerySchema, response: { 200: AuditListSchema } } }, async (request, reply) => {
    const { since, limit, session, format } = request.query;
    const { entries, truncated } = deps.auditLog.list({ since, limit, session });
    const site = deps.agentInfo().site;
    if (format === 'csv') {
      const csv = auditCsv(entries.map((entry) => ({ site, entry })));
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="audit-${site}.csv"`)
        .header('x-tandem-truncated', String(truncated))
        .send(Buffer.from(csv, 'utf8') as never);
    }
    return { site, entries, truncated, retention: { ...deps.auditLog.retention } };
  });
}
