import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog, type AuditRecord } from './audit-log.ts';
import { Catalog } from './catalog.ts';

let dir: string;
let catalog: Catalog;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-audit-'));
  catalog = new Catalog(path.join(dir, 'catalog.db'));
});
afterEach(async () => {
  catalog.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const day = 86_400_000;
const record = (time: number, target: string, session: string | null = null): AuditRecord => ({
  time: new Date(time).toISOString(),
  client: { subject: 'local-admin alpha', serial: '01', fingerprint: 'AA', role: 'administrator' },
  user: 'root',
  remoteAddress: '127.0.0.1',
  method: 'POST',
  route: '/v1/volumes',
  url: '/v1/volumes',
  target,
  session,
  params: { body: { name: target } },
  status: 201,
  problem: null,
  message: null,
  durationMs: 1,
});

describe('AuditLog (catalog table audit_log)', () => {
  it('drops entries older than maxDays as new ones are written and when opened', () => {
    const now = Date.now();
    const log = new AuditLog(catalog.db, { maxRows: 1000, maxDays: 10 });
    log.record(record(now - 12 * day, 'too-old'));
    log.record(record(now - 9 * day, 'nine-days'));
    expect(log.list({ limit: 100 }).entries.map((entry) => entry.target)).toEqual(['nine-days']);
    // A shorter bound applies from the next start on.
    const stricter = new AuditLog(catalog.db, { maxRows: 1000, maxDays: 5 });
    expect(stricter.list({ limit: 100 }).entries).toEqual([]);
  });

  it('answers the newest entries since a time, of one session, oldest first, saying when it left older ones out', () => {
    const now = Date.now();
    const log = new AuditLog(catalog.db);
    log.record(record(now - 3000, 'a', 'gold'));
    log.record(record(now - 2000, 'b'));
    log.record(record(now - 1000, 'c', 'gold'));
    log.record(record(now, 'd', 'gold'));
    expect(log.list({ limit: 2, session: 'gold' })).toMatchObject({ truncated: true, entries: [{ target: 'c' }, { target: 'd' }] });
    expect(log.list({ limit: 10, since: new Date(now - 2000).toISOString() }).entries.map((entry) => entry.target)).toEqual(['b', 'c', 'd']);
    expect(log.list({ limit: 10, session: 'gold' }).truncated).toBe(false);
  });
});
