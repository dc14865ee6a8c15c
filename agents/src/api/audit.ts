import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { auditRedacted, auditRedactedFields, auditUserHeader, ProblemCodeSchema } from '@tandem/contract';
import type { AuditLog, AuditRecord } from '../storage/audit-log.ts';
import { presentedCertificate } from './auth.ts';

/** The methods that change state; every call with one of them is audited. */
const auditedMethods = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const redacted = new Set<string>(auditRedactedFields);

/** A body kept in the trail at most this long (JSON); longer ones are noted by size only. */
const MAX_BODY_CHARS = 16 * 1024;
const MAX_URL_CHARS = 2048;

/** Replaces the values of secret fields (tokens, keys, passwords, PSKs), at any depth. */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([key, field]) => [key, redacted.has(key.toLowerCase()) ? auditRedacted : redactSecrets(field)]),
  );
}

/** The console user's name as the caller declared it: printable, trimmed, at most 128 characters. */
function declaredUser(request: FastifyRequest): string | null {
  const header = request.headers[auditUserHeader];
  const value = Array.isArray(header) ? header[0] : header;
  if (typeof value !== 'string') return null;
  // eslint-disable-next-line no-control-regex
  const clean = value.replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 128);
  return clean.length > 0 ? clean : null;
}

const stringField = (value: unknown, field: string): string | undefined => {
  if (value === null || typeof value !== 'object') return undefined;
  const found = (value as Record<string, unknown>)[field];
  return typeof found === 'string' && found.length > 0 ? found.slice(0, 256) : undefined;
};

/** What each top-level collection is called in the trail's `target`. */
const targetKinds: Record<string, string> = {
  volumes: 'volume',
  sessions: 'session',
  'flash-sessions': 'flash session',
  clusters: 'cluster',
  peers: 'site',
  pair: 'client',
  'pairing-tokens': 'pairing token',
  alerts: 'alert settings',
};

/** `session gold`, `volume prod`: what a call is about, from its route and body. */
function describeTarget(route: string | null, params: Record<string, string>, body: unknown): { target: string | null; session: string | null } {
  if (route === null) return { target: null, session: null };
  const collection = route.split('/')[2] ?? '';
  const kind = targetKinds[collection] ?? collection;
  const name =
    params.name ?? params.site ?? stringField(body, 'name') ?? stringField(body, 'clientName') ?? stringField(body, 'site') ?? stringField(body, 'apiAddress');
  const target = name === undefined ? kind || null : `${kind} ${name}`;
  let session: string | null = null;
  if (collection === 'sessions') session = params.name ?? stringField(body, 'name') ?? null;
  // A cluster's members are sessions: adding or removing one names it.
  else if (collection === 'clusters' && route.includes('/members')) session = params.session ?? stringField(body, 'session') ?? null;
  return { target, session };
}

function paramsOf(request: FastifyRequest): Record<string, unknown> | null {
  const out: Record<string, unknown> = {};
  const path = request.params as Record<string, string> | undefined;
  if (path && Object.keys(path).length > 0) out.path = { ...path };
  const query = request.query as Record<string, unknown> | undefined;
  if (query && typeof query === 'object' && Object.keys(query).length > 0) out.query = redactSecrets(query);
  if (request.body !== undefined && request.body !== null) {
    const body = redactSecrets(request.body);
    const json = JSON.stringify(body);
    out.body = json.length > MAX_BODY_CHARS ? { truncated: `${json.length} characters, not kept` } : body;
  }
  return Object.keys(out).length > 0 ? out : null;
}

/** The problem code and message of an error answer (every one is `{problem, message}`, see errors.ts). */
function problemOf(reply: FastifyReply, payload: unknown): { problem: AuditRecord['problem']; message: string | null } {
  if (reply.statusCode < 400) return { problem: null, message: null };
  let body: unknown = payload;
  if (typeof payload === 'string' || Buffer.isBuffer(payload)) {
    try {
      body = JSON.parse(String(payload));
    } catch {
      body = undefined;
    }
  }
  const code = ProblemCodeSchema.safeParse((body as { problem?: unknown } | undefined)?.problem);
  const message = stringField(body, 'message') ?? null;
  return { problem: code.success ? code.data : 'internal-error', message };
}

/**
 * Records every POST, PUT, PATCH and DELETE in the audit trail, accepted,
 * refused (unauthenticated, bad input, wrong state) or failed. The row is
 * written when the answer is ready and before it leaves (onSend), so a
 * caller that got an answer finds its call in the trail, across a crash.
 */
export function installAuditTrail(app: FastifyInstance, log: AuditLog): void {
  app.addHook('onSend', async (request, reply, payload) => {
    if (!auditedMethods.has(request.method)) return payload;
    try {
      const route = request.routeOptions.url ?? null;
      const params = (request.params ?? {}) as Record<string, string>;
      const { target, session } = describeTarget(route, params, request.body);
      const elapsed = reply.elapsedTime;
      log.record({
        time: new Date(Date.now() - elapsed).toISOString(),
        client: request.client ?? presentedCertificate(request),
        user: declaredUser(request),
        remoteAddress: request.ip ?? null,
        method: request.method,
        route,
        url: request.url.slice(0, MAX_URL_CHARS),
        target,
        session,
        params: paramsOf(request),
        status: reply.statusCode,
        ...problemOf(reply, payload),
        durationMs: Math.round(elapsed * 1000) / 1000,
      });
    } catch (error) {
      // The call itself is done; a trail that cannot be written is said loudly in the log.
      request.log.error({ err: error }, 'could not record the call in the audit trail');
    }
    return payload;
  });
}
