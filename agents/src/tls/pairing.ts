import { createHash, randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import { ProblemError } from '@tandem/contract';
import { normalizeSerial } from './keys.ts';

/** A pairing token is good for this long after `tandem-agent token` printed it. */
export const pairingTokenLifetimeMs = 15 * 60 * 1000;

function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Creates a one-time pairing token. Only its hash is stored; the token itself is shown once. */
export function createPairingToken(db: Database.Database, now = new Date()): { token: string; expiresAt: string } {
  const token = `tdm_${randomBytes(24).toString('base64url')}`;
  const expiresAt = new Date(now.getTime() + pairingTokenLifetimeMs).toISOString();
  db.prepare('INSERT INTO pairing_tokens (token_hash, created_at, expires_at) VALUES (?, ?, ?)').run(
    hashToken(token),
    now.toISOString(),
    expiresAt,
  );
  return { token, expiresAt };
}

/** Throws `token-invalid` unless the token is known, unused and not expired. */
export function checkPairingToken(db: Database.Database, token: string, now = new Date()): void {
  const row = db.prepare('SELECT expires_at, used_at FROM pairing_tokens WHERE token_hash = ?').get(hashToken(token)) as
    | { expires_at: string; used_at: string | null }
    | undefined;
  if (!row) throw new ProblemError('token-invalid', 'the pairing token is not known to this agent');
  if (row.used_at !== null) throw new ProblemError('token-invalid', 'the pairing token was already used');
  if (Date.parse(row.expires_at) <= now.getTime()) {
    throw new ProblemError('token-invalid', 'the pairing token has expired; create a new one with `tandem-agent token`');
  }
}

export interface ClientRecord {
  serial: string;
  name: string;
  fingerprint: string;
}

/** Records a client certificate as one the API accepts. */
export function recordClient(db: Database.Database, client: ClientRecord, now = new Date()): void {
  db.prepare('INSERT INTO clients (serial, name, fingerprint, paired_at) VALUES (?, ?, ?, ?)').run(
    normalizeSerial(client.serial),
    client.name,
    client.fingerprint,
    now.toISOString(),
  );
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

/** Uses a token up without recording a client (a site pairing: the peer is pinned by its CA instead). */
export function consumePairingToken(db: Database.Database, token: string, now = new Date()): void {
  db.transaction(() => {
    checkPairingToken(db, token, now);
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
