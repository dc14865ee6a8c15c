import { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  legacyCertificateRole,
  ProblemError,
  roleAllows,
  roleCertificateUnitPrefix,
  RoleSchema,
  type Role,
  type RoleSource,
} from '@tandem/contract';
import type { Catalog } from '../storage/catalog.ts';
import { isClientActive, narrowedRole } from '../tls/pairing.ts';

/**
 * Who made an authenticated request: the serial, subject and SHA-256
 * fingerprint of its client certificate, and the role it carries.
 */
export interface ClientIdentity {
  serial: string;
  subject: string;
  fingerprint: string;
  /** The role the certificate carries; null when it names a role this agent does not know (refused). */
  role: Role | null;
  /** `legacy`: the certificate names no role (issued before roles) and is taken as `legacyCertificateRole`; `narrowed`: an administrator set a lower role. */
  roleSource: RoleSource;
}

/** The subject's organizational units, however Node parsed them (one or several). */
function units(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/**
 * The role a client certificate's subject carries: the one OU that reads
 * `tandem-role:<role>`. None: issued before roles, an administrator then
 * and now. Several, or an unknown role: null (the API refuses the caller).
 */
export function certificateRole(subjectUnits: string | string[] | undefined): { role: Role | null; roleSource: RoleSource } {
  const named = units(subjectUnits).filter((unit) => unit.startsWith(roleCertificateUnitPrefix));
  if (named.length === 0) return { role: legacyCertificateRole, roleSource: 'legacy' };
  const parsed = RoleSchema.safeParse(named[0].slice(roleCertificateUnitPrefix.length));
  return { role: named.length === 1 && parsed.success ? parsed.data : null, roleSource: 'certificate' };
}

/** The certificate the request's TLS client presented, checked or not (the audit trail names refused callers by it too). */
export function presentedCertificate(request: FastifyRequest): ClientIdentity | null {
  const socket = request.raw.socket;
  if (!(socket instanceof TLSSocket)) return null;
  const certificate = socket.getPeerCertificate();
  if (!certificate || !certificate.serialNumber) return null;
  const commonName = certificate.subject?.CN;
  return {
    serial: certificate.serialNumber,
    subject: Array.isArray(commonName) ? commonName.join(', ') : (commonName ?? ''),
    fingerprint: certificate.fingerprint256 ?? '',
    ...certificateRole(certificate.subject?.OU),
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    client: ClientIdentity | null;
  }
  interface FastifyContextConfig {
    /** The route answers without a client certificate (health probe, pairing). */
    public?: boolean;
  }
}

/**
 * The identity of the request's client certificate, or a reason why there is
 * none. TLS has already checked the chain against the agent's CA (the server
 * runs with `requestCert` but without `rejectUnauthorized`, so that health and
 * pairing stay reachable); here we also refuse revoked and unknown serials.
 */
function authenticate(request: FastifyRequest, catalog: Catalog): ClientIdentity {
  const socket = request.raw.socket;
  if (!(socket instanceof TLSSocket)) {
    throw new ProblemError('unauthenticated', 'this route needs a client certificate; pair with the agent first');
  }
  const certificate = socket.getPeerCertificate();
  if (!certificate || !certificate.serialNumber) {
    throw new ProblemError('unauthenticated', 'this route needs a client certificate; pair with the agent first');
  }
  if (!socket.authorized) {
    throw new ProblemError('unauthenticated', 'the client certificate was not issued by this agent');
  }
  if (!isClientActive(catalog.db, certificate.serialNumber)) {
    throw new ProblemError('unauthenticated', 'the client certificate is revoked or unknown to this agent');
  }
  const identity = presentedCertificate(request)!;
  if (identity.role === null) {
    throw new ProblemError('unauthenticated', 'the client certificate names a role this agent does not know; pair again');
  }
  // An administrator may have narrowed the client below its certificate's role (never above it).
  const narrowed = narrowedRole(catalog.db, certificate.serialNumber);
  if (narrowed !== null && roleAllows(identity.role, narrowed) && narrowed !== identity.role) {
    return { ...identity, role: narrowed, roleSource: 'narrowed' };
  }
  return identity;
}

/** Every route needs a client certificate signed by the agent's CA unless it is marked `config: {public: true}`. */
export function installAuthentication(app: FastifyInstance, catalog: Catalog): void {
  app.decorateRequest('client', null);
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config?.public === true) return;
    request.client = authenticate(request, catalog);
  });
}
