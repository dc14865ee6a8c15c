import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog, CATALOG_VERSION, migrateCatalogTo } from './catalog.ts';

/** Migration 14 (issue 13): `session_journals`, a session's CDP journal and its policy, gone with the session. */

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-catalog-14-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('catalog migration 14: session journals', () => {
  it('a catalog of the release before gains session_journals, keeps its sessions, and a journal row goes with its session', () => {
    const file = path.join(dir, 'old.sqlite');
    const old = new Database(file);
    migrateCatalogTo(old, 13);
    old.prepare("INSERT INTO sessions (id, name, type, control_agent_id, peer_agent_id, state, direction, created_at, updated_at) VALUES ('s1', 'gold', 'sync', 'a', 'b', 'prepared', 'h1-h2', 'then', 'then')").run();
    old.close();

    const upgraded = new Catalog(file);
    try {
      expect(CATALOG_VERSION).toBe(14);
      expect(upgraded.db.pragma('user_version', { simple: true })).toBe(14);
      expect(upgraded.db.prepare('SELECT name FROM sessions').all()).toEqual([{ name: 'gold' }]);
      const insert = upgraded.db.prepare(
        'INSERT INTO session_journals (session_id, journal_id, budget_bytes, required_window_ms, bookmark_ms, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      );
      insert.run('s1', 1, 1 << 30, 3_600_000, null, 'now', 'now');
      // Sizes and windows are positive; one journal per session.
      expect(() => insert.run('s1', 2, 1 << 30, 3_600_000, null, 'now', 'now')).toThrow(/UNIQUE|PRIMARY/);
      upgraded.db.prepare("INSERT INTO sessions (id, name, type, control_agent_id, peer_agent_id, state, direction, created_at, updated_at) VALUES ('s2', 'silver', 'sync', 'a', 'b', 'prepared', 'h1-h2', 'then', 'then')").run();
      expect(() => insert.run('s2', 2, 0, 3_600_000, null, 'now', 'now')).toThrow(/CHECK/);
      expect(() => insert.run('s2', 2, 1, 0, null, 'now', 'now')).toThrow(/CHECK/);
      upgraded.db.prepare("DELETE FROM sessions WHERE id = 's1'").run();
      expect(upgraded.db.prepare('SELECT * FROM session_journals').all()).toEqual([]);
    } finally {
      upgraded.close();
    }
  });
});
