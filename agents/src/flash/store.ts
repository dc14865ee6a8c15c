import type Database from 'better-sqlite3';
import { FlashOptionsSchema, type FlashMirrorHandling, type FlashOptions, type FlashState } from '@tandem/contract';

/** A flash pair as persisted (catalog table flash_pairs). */
export interface FlashPairRecord {
  id: string;
  position: number;
  source: string;
  target: string;
  /** Change recording of the source since the last point in time (also the establish's durability marker). */
  sourceBitmap: number | null;
  /** Change recording of the target since the last point in time. */
  targetBitmap: number | null;
  state: FlashState;
  mirror: FlashMirrorHandling;
  remoteTarget: string | null;
  reason: string | null;
}

/** A flash session as persisted (catalog table flash_sessions). */
export interface FlashSessionRecord {
  name: string;
  state: FlashState;
  options: FlashOptions;
  coordinated: boolean;
  pointInTime: string | null;
  holdMs: number | null;
  reason: string | null;
  /** Set once the relationships are withdrawn; the record stays until removed. */
  withdrawnAt: string | null;
  createdAt: string;
  updatedAt: string;
  pairs: FlashPairRecord[];
}

/** Flash sessions in the agent's SQLite catalog. */
export class FlashStore {
  constructor(private readonly db: Database.Database) {}

  load(): FlashSessionRecord[] {
    const sessions = this.db.prepare('SELECT * FROM flash_sessions ORDER BY created_at, name').all() as Array<Record<string, unknown>>;
    const pairs = this.db.prepare('SELECT * FROM flash_pairs ORDER BY session, position').all() as Array<Record<string, unknown>>;
    return sessions.map((row) => ({
      name: String(row.name),
      state: row.state as FlashState,
      options: FlashOptionsSchema.parse(JSON.parse(String(row.options))),
      coordinated: Number(row.coordinated) === 1,
      pointInTime: row.point_in_time === null ? null : String(row.point_in_time),
      holdMs: row.hold_ms === null ? null : Number(row.hold_ms),
      reason: row.reason === null ? null : String(row.reason),
      withdrawnAt: row.withdrawn_at === null ? null : String(row.withdrawn_at),
      createdAt: String(row.created_at),
      updatedAt: String(row.updated_at),
      pairs: pairs
        .filter((pair) => pair.session === row.name)
        .map((pair) => ({
          id: String(pair.id).slice(String(row.name).length + 1),
          position: Number(pair.position),
          source: String(pair.source),
          target: String(pair.target),
          sourceBitmap: pair.source_bitmap === null ? null : Number(pair.source_bitmap),
          targetBitmap: pair.target_bitmap === null ? null : Number(pair.target_bitmap),
          state: pair.state as FlashState,
          mirror: pair.mirror as FlashMirrorHandling,
          remoteTarget: pair.remote_target === null ? null : String(pair.remote_target),
          reason: pair.reason === null ? null : String(pair.reason),
        })),
    }));
  }

  insert(session: FlashSessionRecord): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO flash_sessions (name, state, options, coordinated, point_in_time, hold_ms, reason, withdrawn_at, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          session.name,
          session.state,
          JSON.stringify(session.options),
          session.coordinated ? 1 : 0,
          session.pointInTime,
          session.holdMs,
          session.reason,
          session.withdrawnAt,
          session.createdAt,
          session.updatedAt,
        );
      const insertPair = this.db.prepare(
        `INSERT INTO flash_pairs (id, session, position, source, target, source_bitmap, target_bitmap, state, mirror, remote_target, reason)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const pair of session.pairs) {
        insertPair.run(
          rowId(session.name, pair.id),
          session.name,
          pair.position,
          pair.source,
          pair.target,
          pair.sourceBitmap,
          pair.targetBitmap,
          pair.state,
          pair.mirror,
          pair.remoteTarget,
          pair.reason,
        );
      }
    })();
  }

  /** Writes a session's mutable fields and its pairs' (one transaction). */
  save(session: FlashSessionRecord): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          `UPDATE flash_sessions SET state = ?, options = ?, point_in_time = ?, hold_ms = ?, reason = ?, withdrawn_at = ?, updated_at = ?
           WHERE name = ?`,
        )
        .run(
          session.state,
          JSON.stringify(session.options),
          session.pointInTime,
          session.holdMs,
          session.reason,
          session.withdrawnAt,
          session.updatedAt,
          session.name,
        );
      const updatePair = this.db.prepare(
        'UPDATE flash_pairs SET state = ?, mirror = ?, reason = ?, source_bitmap = ?, target_bitmap = ? WHERE id = ?',
      );
      for (const pair of session.pairs) {
        updatePair.run(pair.state, pair.mirror, pair.reason, pair.sourceBitmap, pair.targetBitmap, rowId(session.name, pair.id));
      }
    })();
  }

  delete(name: string): void {
    this.db.prepare('DELETE FROM flash_sessions WHERE name = ?').run(name);
  }
}

/** Pair ids are per session (`p1`, `p2`…); the table's key joins them with the session name. */
function rowId(session: string, pair: string): string {
  return `${session}/${pair}`;
}
