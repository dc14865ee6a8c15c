import { createHash, randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import { legacyCertificateRole, ProblemError, RoleSchema, type ClientInfo, type Role } from '@tandem/contract';
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

/** Every client the agent issued an API certificate to, revoked ones included, oldest first. */
export function listClients(db: Database.Database): ClientInfo[] {
  const rows = db.prepare('SELECT serial, name, fingerprint, paired_at, revoked_at, role FROM clients ORDER BY paired_at, serial').all() as Array<{
    serial: string;
    name: string;
    fingerprint: string;
    paired_at: string;
    revoked_at: string | null;
    role: string | null;
  }>;
  return rows.map((row) => {
    const role = RoleSchema.safeParse(row.role);
    return {
      serial: row.serial,
      name: row.name,
      fingerprint: row.fingerprint,
      role: role.success ? role.data : legacyCertificateRole,
      roleSource: role.success ? ('certificate' as const) : ('legacy' as const),
      pairedAt: row.paired_at,
      revokedAt: row.revoked_at,
    };
  });
}

/** Revokes a client's certificate: the API refuses it from the next request on. False when no such client. */
export function revokeClient(db: Database.Database, serial: string, now = new Date()): ClientInfo | undefined {
  const normalized = normalizeSerial(serial);
  db.prepare('UPDATE clients SET revoked_at = COALESCE(revoked_at, ?) WHERE serial = ?').run(now.toISOString(), normalized);
  return listClients(db).find((client) => client.serial === normalized);
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
