import { createHash, randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import { legacyCertificateRole, ProblemError, roleAllows, RoleSchema, type ClientInfo, type Role } from '@tandem/contract';
import { normalizeSerial } from './keys.ts';

/** A pairing token is good for this long after `tandem-agent token` printed it. */
export const pairingTokenLifetimeMs = 15 * 60 * 1000;

function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Creates a one-time pairing token that pairs a client as `role` (at most).
 * Only its hash is stored; the token itself is shown once.
 */
export function createPairingToken(
  db: Database.Database,
  role: Role = 'administrator',
  now = new Date(),
): { token: string; expiresAt: string; role: Role } {
  const token = `tdm_${randomBytes(24).toString('base64url')}`;
  const expiresAt = new Date(now.getTime() + pairingTokenLifetimeMs).toISOString();
  db.prepare('INSERT INTO pairing_tokens (token_hash, created_at, expires_at, role) VALUES (?, ?, ?, ?)').run(
    hashToken(token),
    now.toISOString(),
    expiresAt,
    role,
  );
  return { token, expiresAt, role };
}

/**
 * Throws `token-invalid` unless the token is known, unused and not expired;
 * answers the role it pairs a client as (a token from before roles: administrator).
 */
export function checkPairingToken(db: Database.Database, token: string, now = new Date()): Role {
  const row = db.prepare('SELECT expires_at, used_at, role FROM pairing_tokens WHERE token_hash = ?').get(hashToken(token)) as
    | { expires_at: string; used_at: string | null; role: string | null }
    | undefined;
  if (!row) throw new ProblemError('token-invalid', 'the pairing token is not known to this agent');
  if (row.used_at !== null) throw new ProblemError('token-invalid', 'the pairing token was already used');
  if (Date.parse(row.expires_at) <= now.getTime()) {
    throw new ProblemError('token-invalid', 'the pairing token has expired; create a new one with `tandem-agent token`');
  }
  return row.role === null ? legacyCertificateRole : RoleSchema.parse(row.role);
}

export interface ClientRecord {
  serial: string;
  name: string;
  fingerprint: string;
  /** The role its certificate carries (recorded for listing; the certificate is the authority). */
  role: Role;
}

/** Records a client certificate as one the API accepts. */
export function recordClient(db: Database.Database, client: ClientRecord, now = new Date()): void {
  db.prepare('INSERT INTO clients (serial, name, fingerprint, paired_at, role) VALUES (?, ?, ?, ?, ?)').run(
    normalizeSerial(client.serial),
    client.name,
    client.fingerprint,
    now.toISOString(),
    client.role,
  );
}

/** The lower of two roles. */
function lowerRole(a: Role, b: Role): Role {
  return roleAllows(a, b) ? b : a;
}

interface ClientRow {
  serial: string;
  name: string;
  fingerprint: string;
  paired_at: string;
  revoked_at: string | null;
  role: string | null;
  narrowed_role: string | null;
}

function toClientInfo(row: ClientRow): ClientInfo {
  const issued = RoleSchema.safeParse(row.role);
  const certificateRole = issued.success ? issued.data : legacyCertificateRole;
  const narrowed = RoleSchema.safeParse(row.narrowed_role);
  const role = narrowed.success ? lowerRole(certificateRole, narrowed.data) : certificateRole;
  return {
    serial: row.serial,
    name: row.name,
    fingerprint: row.fingerprint,
    role,
    roleSource: role !== certificateRole ? 'narrowed' : issued.success ? 'certificate' : 'legacy',
    certificateRole,
    pairedAt: row.paired_at,
    revokedAt: row.revoked_at,
  };
}

const clientColumns = 'serial, name, fingerprint, paired_at, revoked_at, role, narrowed_role';

/** Every client the agent issued an API certificate to, revoked ones included, oldest first. */
export function listClients(db: Database.Database): ClientInfo[] {
  return (db.prepare(`SELECT ${clientColumns} FROM clients ORDER BY paired_at, serial`).all() as ClientRow[]).map(toClientInfo);
}

/** One client by its certificate serial, or undefined. */
export function getClient(db: Database.Database, serial: string): ClientInfo | undefined {
  const row = db.prepare(`SELECT ${clientColumns} FROM clients WHERE serial = ?`).get(normalizeSerial(serial)) as ClientRow | undefined;
  return row && toClientInfo(row);
}

/**
 * Sets the role a client acts as from now on: at most the one its
 * certificate carries (more needs a new certificate: revoke, pair again);
 * the certificate's own role clears the narrowing. Throws `not-found`,
 * `conflict` (a revoked client) or `forbidden-role` (above the certificate's).
 */
export function setClientRole(db: Database.Database, serial: string, role: Role): ClientInfo {
  const client = getClient(db, serial);
  if (!client) throw new ProblemError('not-found', `no client has the serial ${serial}`);
  if (client.revokedAt !== null) throw new ProblemError('conflict', `client ${client.name} is revoked; pair it again instead`);
  if (!roleAllows(client.certificateRole, role)) {
    throw new ProblemError(
      'forbidden-role',
      `the certificate of ${client.name} carries the ${client.certificateRole} role; to give it ${role}, revoke it and pair it again with a token made for ${role}`,
      { needed: role, held: client.certificateRole },
    );
  }
  db.prepare('UPDATE clients SET narrowed_role = ? WHERE serial = ?').run(role === client.certificateRole ? null : role, client.serial);
  return getClient(db, serial)!;
}

/** Revokes a client's certificate: the API refuses it from the next request on. Undefined when no such client. */
export function revokeClient(db: Database.Database, serial: string, now = new Date()): ClientInfo | undefined {
  db.prepare('UPDATE clients SET revoked_at = COALESCE(revoked_at, ?) WHERE serial = ?').run(now.toISOString(), normalizeSerial(serial));
  return getClient(db, serial);
}

/**
 * Uses the token up and records the client in one transaction, so a token
 * pairs exactly one client even when two requests race.
 */
export function redeemPairingToken(db: Database.Database, token: string, client: ClientRecord, now = new Date()): void {
  db.transaction(() => {
    checkPairingToken(db, token, now);
    db.prepare('UPDATE pairing_tokens SET used_at = ? WHERE token_hash = ?').run(now.toISOString(), hashToken(token));
    recordClient(db, client, now);
  }).immediate();
}

/**
 * Uses a token up without recording a client (a site pairing: the peer is
 * pinned by its CA instead). Pairing a site is an administrator's act, so a
 * token made for a lesser role does not pair a site (and is not used up).
 */
export function consumePairingToken(db: Database.Database, token: string, now = new Date()): void {
  db.transaction(() => {
    const role = checkPairingToken(db, token, now);
    if (role !== 'administrator') {
      throw new ProblemError('forbidden-role', `this pairing token pairs a console as ${role}; pairing a site needs a token made for the administrator role`, {
        needed: 'administrator',
        held: role,
      });
    }
    db.prepare('UPDATE pairing_tokens SET used_at = ? WHERE token_hash = ?').run(now.toISOString(), hashToken(token));
  }).immediate();
}

/** True when a certificate serial belongs to a paired (or local admin) client that is not revoked. */
export function isClientActive(db: Database.Database, serial: string): boolean {
  const row = db.prepare('SELECT revoked_at FROM clients WHERE serial = ?').get(normalizeSerial(serial)) as
    | { revoked_at: string | null }
    | undefined;
  return row !== undefined && row.revoked_at === null;
}

/** The lower role an administrator narrowed a client to, or null (its certificate's role applies). */
export function narrowedRole(db: Database.Database, serial: string): Role | null {
  const row = db.prepare('SELECT narrowed_role FROM clients WHERE serial = ?').get(normalizeSerial(serial)) as { narrowed_role: string | null } | undefined;
  const parsed = RoleSchema.safeParse(row?.narrowed_role);
  return parsed.success ? parsed.data : null;
}
