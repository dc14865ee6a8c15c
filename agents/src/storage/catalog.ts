import Database from 'better-sqlite3';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ProblemError, type AgentEvent, type Severity } from '@tandem/contract';

/** A volume row of the catalog. VTTs and refcounts live in binary metadata, not here. */
export interface VolumeRow {
  id: number;
  name: string;
  kind: 'volume' | 'snapshot';
  sourceId: number | null;
  sizeBytes: number;
  readOnly: boolean;
  createdAt: string;
}

/** Which events `listEvents` answers: about one subject, of some types or families (`flash.*`), not of others. */
export interface EventFilter {
  subject?: string;
  type?: string[];
  excludeType?: string[];
  /** The newest matches instead of the oldest (still answered oldest first). */
  newest?: boolean;
}

/** Events kept in the catalog; older ones are pruned. */
const EVENT_RETENTION = 100_000;

/** What a migration step may need besides the database: this agent's own id (read from agent.json beside the catalog when a step asks). */
interface MigrationContext {
  agentId(): string;
}

/** A schema step: SQL, or a function for a step that needs more than SQL (run in the same transaction). */
type Migration = string | ((db: Database.Database, context: MigrationContext) => void);

const migrations: Migration[] = [
  `CREATE TABLE volumes (
     id INTEGER PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,
     kind TEXT NOT NULL CHECK (kind IN ('volume', 'snapshot')),
     source_id INTEGER,
     size_bytes INTEGER NOT NULL,
     read_only INTEGER NOT NULL DEFAULT 0,
     created_at TEXT NOT NULL
   );
   CREATE TABLE events (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     time TEXT NOT NULL,
     type TEXT NOT NULL,
     severity TEXT NOT NULL,
     subject TEXT,
     message TEXT NOT NULL,
     data TEXT
   );
   CREATE TABLE pairing_tokens (
     token_hash TEXT PRIMARY KEY,
     created_at TEXT NOT NULL,
     expires_at TEXT NOT NULL,
     used_at TEXT
   );
   CREATE TABLE clients (
     serial TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     fingerprint TEXT NOT NULL,
     paired_at TEXT NOT NULL,
     revoked_at TEXT
   );`,
  `CREATE TABLE peers (
     agent_id TEXT PRIMARY KEY,
     site TEXT NOT NULL,
     ca_pem TEXT NOT NULL,
     ca_fingerprint TEXT NOT NULL,
     link_address TEXT NOT NULL,
     api_address TEXT,
     paired_at TEXT NOT NULL
   );
   CREATE TABLE sessions (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,
     type TEXT NOT NULL,
     control_agent_id TEXT NOT NULL,
     peer_agent_id TEXT NOT NULL,
     state TEXT NOT NULL,
     direction TEXT NOT NULL,
     recoverable INTEGER NOT NULL DEFAULT 1,
     detail TEXT,
     consistency_time TEXT,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE TABLE pairs (
     id TEXT PRIMARY KEY,
     session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
     h1_volume TEXT NOT NULL,
     h2_volume TEXT NOT NULL,
     local_volume TEXT NOT NULL,
     local_site TEXT NOT NULL CHECK (local_site IN ('h1', 'h2')),
     out_of_sync_bitmap INTEGER,
     target_changed_bitmap INTEGER,
     created_at TEXT NOT NULL
   );`,
  // Clusters of sessions (their master data sets are files in DATA/mds/, not rows).
  `CREATE TABLE clusters (
     name TEXT PRIMARY KEY,
     interval_ms INTEGER NOT NULL,
     timeout_ms INTEGER,
     created_at TEXT NOT NULL
   );
   CREATE TABLE cluster_members (
     cluster TEXT NOT NULL REFERENCES clusters(name) ON DELETE CASCADE,
     session_id TEXT NOT NULL,
     session_name TEXT NOT NULL,
     agent_id TEXT NOT NULL,
     site TEXT NOT NULL,
     added_at TEXT NOT NULL,
     PRIMARY KEY (cluster, session_id)
   );`,
  // Flash copy sessions and their pairs (VTT clones and change bitmaps live in the metadata journal).
  `CREATE TABLE flash_sessions (
     name TEXT PRIMARY KEY,
     state TEXT NOT NULL,
     options TEXT NOT NULL,
     coordinated INTEGER NOT NULL DEFAULT 0,
     point_in_time TEXT,
     hold_ms REAL,
     reason TEXT,
     withdrawn_at TEXT,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE TABLE flash_pairs (
     id TEXT PRIMARY KEY,
     session TEXT NOT NULL REFERENCES flash_sessions(name) ON DELETE CASCADE,
     position INTEGER NOT NULL,
     source TEXT NOT NULL,
     target TEXT NOT NULL,
     source_bitmap INTEGER,
     target_bitmap INTEGER,
     state TEXT NOT NULL,
     mirror TEXT NOT NULL DEFAULT 'none',
     remote_target TEXT,
     reason TEXT
   );`,
  // Session settings kept with the session: the snapshot-shipping interval (null: the default) and the last verify's result (JSON).
  `ALTER TABLE sessions ADD COLUMN ship_interval_ms INTEGER;
   ALTER TABLE sessions ADD COLUMN last_verify TEXT;`,
  // A copy set added to a running session is joining until its initial copy is done and it joined the consistency
  // group (running-copy-sets.ts); kept so an agent restarted meanwhile resumes the copy and joins afterwards.
  `ALTER TABLE pairs ADD COLUMN joining INTEGER NOT NULL DEFAULT 0;`,
  // One subject's events (GET /v1/events?subject=) without scanning the whole log.
  `CREATE INDEX events_subject ON events (subject, id);`,
  // Copy sets name their volume here by its immutable id (volume names can be reused), and a copy set whose volume
  // is gone keeps why (reported once, see replication/copy-set-volumes.ts). Volume ids are never reused.
  (db) => {
    db.exec(`ALTER TABLE pairs ADD COLUMN local_volume_id INTEGER;
      ALTER TABLE pairs ADD COLUMN broken_reason TEXT;
      ALTER TABLE pairs ADD COLUMN broken_at TEXT;
      CREATE TABLE volume_ids (next_id INTEGER NOT NULL);
      INSERT INTO volume_ids (next_id) SELECT COALESCE(MAX(id), 0) + 1 FROM volumes;`);
    fillPairVolumeIds(db);
  },
  // Session history (replication/history/history-store.ts): every session's samples as runs of equal samples, by session id.
  `CREATE TABLE session_history (
     id INTEGER PRIMARY KEY,
     session_id TEXT NOT NULL,
     start_ms INTEGER NOT NULL,
     end_ms INTEGER NOT NULL,
     samples INTEGER NOT NULL,
     trend TEXT NOT NULL CHECK (trend IN ('single', 'frozen', 'steady')),
     state TEXT NOT NULL,
     health TEXT NOT NULL,
     consistency_ms INTEGER,
     exposure_ms INTEGER,
     out_of_sync_tracks INTEGER NOT NULL,
     out_of_sync_bytes INTEGER NOT NULL,
     peers TEXT NOT NULL,
     detail TEXT
   );
   CREATE INDEX session_history_by_end ON session_history (session_id, end_ms);`,
  // One table of copy sets for every session, with one primary agent or several (issue 12): `pairs` (the copy sets
  // with a volume here) and `multi_primary_pairs` (which agent holds the primary volume of a copy set on another
  // primary agent, kept by the control agent and the secondary; a table made outside the migrations) become
  // `copy_sets`, every row naming its primary and its secondary agent. See moveToCopySets.
  moveToCopySets,
  // The audit trail (storage/audit-log.ts): one row per state-changing control API call, accepted, refused or failed.
  `CREATE TABLE audit_log (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     time TEXT NOT NULL,
     time_ms INTEGER NOT NULL,
     client_subject TEXT,
     client_serial TEXT,
     client_fingerprint TEXT,
     user_name TEXT,
     remote_address TEXT,
     method TEXT NOT NULL,
     route TEXT,
     url TEXT NOT NULL,
     target TEXT,
     session TEXT,
     params TEXT,
     status INTEGER NOT NULL,
     problem TEXT,
     message TEXT,
     duration_ms REAL NOT NULL
   );
   CREATE INDEX audit_log_by_time ON audit_log (time_ms);
   CREATE INDEX audit_log_by_session ON audit_log (session, id);`,
  // Alerts (alerts/): every raise of a rule with its clear (active while cleared_at is null), the thresholds each
  // session sets for its own (null columns inherit the site defaults) and the site's alert settings (one JSON row).
  `CREATE TABLE alerts (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     key TEXT NOT NULL,
     kind TEXT NOT NULL,
     severity TEXT NOT NULL,
     subject TEXT NOT NULL,
     message TEXT NOT NULL,
     raised_at TEXT NOT NULL,
     cleared_at TEXT,
     value REAL,
     threshold REAL
   );
   CREATE UNIQUE INDEX alerts_active_key ON alerts (key) WHERE cleared_at IS NULL;
   CREATE INDEX alerts_by_cleared ON alerts (cleared_at);
   CREATE TABLE alert_thresholds (
     session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
     rpo_target_seconds REAL,
     link_down_seconds REAL,
     backlog_percent REAL,
     enabled INTEGER,
     updated_at TEXT NOT NULL
   );
   CREATE TABLE alert_settings (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     settings TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );`,
  // Roles (contract/src/roles.ts): the role a pairing token pairs a client as, the role a client's certificate carries
  // (as issued), the lower role an administrator narrowed a client to (NULL: as issued) and the role an audited caller
  // held. NULL roles in rows from before roles: such tokens and certificates had every right, and keep it (administrator).
  `ALTER TABLE pairing_tokens ADD COLUMN role TEXT;
   ALTER TABLE clients ADD COLUMN role TEXT;
   ALTER TABLE clients ADD COLUMN narrowed_role TEXT;
   ALTER TABLE audit_log ADD COLUMN client_role TEXT;`,
  // Continuous data protection (issue 13, replication/journal-feed.ts): a session's journal at its secondary agent,
  // the CdpJournal's id in the engine's metadata and the administrator's policy (the journal's space in bytes, the
  // protection window required, how long bookmarks are kept: NULL until space runs out).
  `CREATE TABLE session_journals (
     session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
     journal_id INTEGER NOT NULL,
     budget_bytes INTEGER NOT NULL CHECK (budget_bytes > 0),
     required_window_ms INTEGER NOT NULL CHECK (required_window_ms > 0),
     bookmark_ms INTEGER,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );`,
];

/**
 * Migration 10: `pairs` and `multi_primary_pairs` into `copy_sets`. A copy
 * set's primary agent: this agent where its H1 volume is here (the control
 * agent or another primary agent), else the agent `multi_primary_pairs`
 * names, else the session's control agent; its secondary agent: the
 * session's (`peer_agent_id`). The control agent's rows of other primary
 * agents' copy sets, which have no volume here, keep no local fields.
 */
function moveToCopySets(db: Database.Database, context: MigrationContext): void {
  db.exec(`CREATE TABLE copy_sets (
       id TEXT PRIMARY KEY,
       session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
       primary_agent_id TEXT NOT NULL,
       secondary_agent_id TEXT NOT NULL,
       h1_volume TEXT NOT NULL,
       h2_volume TEXT NOT NULL,
       local_site TEXT CHECK (local_site IN ('h1', 'h2')),
       local_volume TEXT,
       local_volume_id INTEGER,
       out_of_sync_bitmap INTEGER,
       target_changed_bitmap INTEGER,
       joining INTEGER NOT NULL DEFAULT 0,
       broken_reason TEXT,
       broken_at TEXT,
       created_at TEXT NOT NULL,
       CHECK ((local_site IS NULL) = (local_volume IS NULL))
     );
     CREATE INDEX copy_sets_by_session ON copy_sets (session_id);
     CREATE TABLE IF NOT EXISTS multi_primary_pairs (
       id TEXT PRIMARY KEY,
       session_id TEXT NOT NULL,
       primary_agent_id TEXT NOT NULL,
       h1_volume TEXT NOT NULL,
       h2_volume TEXT NOT NULL,
       created_at TEXT NOT NULL
     );`);
  const holdsPrimaries = db.prepare("SELECT 1 FROM pairs WHERE local_site = 'h1' LIMIT 1").get() !== undefined;
  db.prepare(
    `INSERT INTO copy_sets (id, session_id, primary_agent_id, secondary_agent_id, h1_volume, h2_volume, local_site, local_volume,
       local_volume_id, out_of_sync_bitmap, target_changed_bitmap, joining, broken_reason, broken_at, created_at)
     SELECT p.id, p.session_id,
       CASE WHEN p.local_site = 'h1' THEN @me ELSE COALESCE(m.primary_agent_id, s.control_agent_id) END,
       s.peer_agent_id, p.h1_volume, p.h2_volume, p.local_site, p.local_volume, p.local_volume_id, p.out_of_sync_bitmap,
       p.target_changed_bitmap, p.joining, p.broken_reason, p.broken_at, p.created_at
     FROM pairs p JOIN sessions s ON s.id = p.session_id LEFT JOIN multi_primary_pairs m ON m.id = p.id`,
  ).run({ me: holdsPrimaries ? context.agentId() : null });
  db.exec(`INSERT INTO copy_sets (id, session_id, primary_agent_id, secondary_agent_id, h1_volume, h2_volume, created_at)
     SELECT m.id, m.session_id, m.primary_agent_id, s.peer_agent_id, m.h1_volume, m.h2_volume, m.created_at
     FROM multi_primary_pairs m JOIN sessions s ON s.id = m.session_id
     WHERE m.id NOT IN (SELECT id FROM pairs);
     DROP TABLE pairs;
     DROP TABLE multi_primary_pairs;`);
}

/** The catalog's schema version: how many migrations an up-to-date catalog has run (its `user_version`). */
export const CATALOG_VERSION = migrations.length;

/** Brings a bare database to the schema of an older release (`version` migrations), for tests that open a catalog as that release left it. */
export function migrateCatalogTo(db: Database.Database, version: number, context: MigrationContext = noAgentId): void {
  for (let index = 0; index < version; index++) {
    const migration = migrations[index];
    if (typeof migration === 'string') db.exec(migration);
    else migration(db, context);
    db.pragma(`user_version = ${index + 1}`);
  }
}

const noAgentId: MigrationContext = {
  agentId: () => {
    throw new ProblemError('internal-error', 'this catalog migration needs the agent id, and no agent.json is beside the catalog');
  },
};

/** The id in agent.json beside the catalog file (the data dir's identity). */
function agentIdBeside(file: string): MigrationContext {
  return {
    agentId: () => {
      const identity = path.join(path.dirname(file), 'agent.json');
      try {
        const agentId = (JSON.parse(readFileSync(identity, 'utf8')) as { agentId?: unknown }).agentId;
        if (typeof agentId === 'string' && agentId.length > 0) return agentId;
      } catch (error) {
        throw new ProblemError('internal-error', `upgrading the catalog needs this agent's id, and ${identity} cannot be read: ${(error as Error).message}`);
      }
      throw new ProblemError('internal-error', `upgrading the catalog needs this agent's id, and ${identity} has none`);
    },
  };
}

/**
 * Migration 8: the id of each copy set's volume, for catalogs whose copy
 * sets named volumes by name only. The volume of that name now is taken,
 * unless this site's own event log shows it was created after the copy set
 * was known here (deleted and created again under the copy set, which agents
 * before the guard allowed): then, as when no volume has that name, the id
 * stays null and the copy set is reported broken. "Known here" is the
 * copy set's `pair.added` event, else the session's first state change (a
 * copy set added while the session was defined exists before its start);
 * comparing event ids, never clocks. Without such an event (a session never
 * started here) the volume of that name is taken: nothing was copied yet.
 */
function fillPairVolumeIds(db: Database.Database): void {
  const pairs = db.prepare('SELECT p.id, p.local_volume, s.name AS session FROM pairs p JOIN sessions s ON s.id = p.session_id').all() as Array<{
    id: string;
    local_volume: string;
    session: string;
  }>;
  const volume = db.prepare('SELECT id FROM volumes WHERE name = ?');
  const added = db.prepare("SELECT MIN(id) AS id FROM events WHERE type = 'pair.added' AND json_extract(data, '$.pair') = ?");
  const started = db.prepare("SELECT MIN(id) AS id FROM events WHERE type = 'session.state' AND subject = ?");
  const created = db.prepare("SELECT MAX(id) AS id FROM events WHERE type IN ('volume.created', 'snapshot.created') AND subject = ?");
  const update = db.prepare('UPDATE pairs SET local_volume_id = ? WHERE id = ?');
  for (const pair of pairs) {
    const row = volume.get(pair.local_volume) as { id: number } | undefined;
    if (!row) continue;
    const known = ((added.get(pair.id) as { id: number | null }).id ?? (started.get(pair.session) as { id: number | null }).id) as number | null;
    const newest = (created.get(pair.local_volume) as { id: number | null }).id;
    if (known !== null && newest !== null && newest > known) continue;
    update.run(row.id, pair.id);
  }
}

/**
 * The agent's SQLite catalog. Opened by the daemon and, briefly, by admin
 * commands (`token`, `check`); WAL mode lets both work at once.
 */
export class Catalog {
  readonly db: Database.Database;
  readonly events = new EventEmitter();

  constructor(file: string, options: { readonly?: boolean } = {}) {
    this.db = new Database(file, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
    if (!options.readonly) {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.migrate(agentIdBeside(file));
    }
  }

  private migrate(context: MigrationContext): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let index = version; index < migrations.length; index++) {
      this.db.transaction(() => {
        const migration = migrations[index];
        if (typeof migration === 'string') this.db.exec(migration);
        else migration(this.db, context);
        this.db.pragma(`user_version = ${index + 1}`);
      })();
    }
  }

  listVolumeRows(): VolumeRow[] {
    const rows = this.db.prepare('SELECT * FROM volumes ORDER BY id').all() as Array<Record<string, unknown>>;
    return rows.map(toVolumeRow);
  }

  insertVolume(row: VolumeRow): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          'INSERT INTO volumes (id, name, kind, source_id, size_bytes, read_only, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
        )
        .run(row.id, row.name, row.kind, row.sourceId, row.sizeBytes, row.readOnly ? 1 : 0, row.createdAt);
      this.db.prepare('UPDATE volume_ids SET next_id = MAX(next_id, ?)').run(row.id + 1);
    })();
  }

  /** The lowest id no volume or snapshot ever had here (ids are never reused: copy sets name volumes by id). */
  nextVolumeId(): number {
    const row = this.db.prepare('SELECT next_id FROM volume_ids').get() as { next_id: number } | undefined;
    return row?.next_id ?? 1;
  }

  updateVolumeSize(id: number, sizeBytes: number): void {
    this.db.prepare('UPDATE volumes SET size_bytes = ? WHERE id = ?').run(sizeBytes, id);
  }

  deleteVolume(id: number): void {
    this.db.transaction(() => {
      this.db.prepare('UPDATE volumes SET source_id = NULL WHERE source_id = ?').run(id);
      this.db.prepare('DELETE FROM volumes WHERE id = ?').run(id);
    })();
  }

  /** Records an event and tells listeners (the event stream) about it. */
  recordEvent(
    type: string,
    severity: Severity,
    subject: string | null,
    message: string,
    data?: Record<string, unknown>,
  ): AgentEvent {
    const time = new Date().toISOString();
    const result = this.db
      .prepare('INSERT INTO events (time, type, severity, subject, message, data) VALUES (?, ?, ?, ?, ?, ?)')
      .run(time, type, severity, subject, message, data ? JSON.stringify(data) : null);
    const event: AgentEvent = { id: Number(result.lastInsertRowid), time, type, severity, subject, message };
    // Retention: the newest EVENT_RETENTION events are kept (checked every 1000 inserts).
    if (event.id % 1000 === 0) this.db.prepare('DELETE FROM events WHERE id <= ?').run(event.id - EVENT_RETENTION);
    if (data) event.data = data;
    this.events.emit('event', event);
    return event;
  }

  /**
   * Events with an id above `after`, oldest first, at most `limit`: the
   * oldest matches, or with `newest` the newest ones. The filter narrows by
   * subject (exact) and by type, each entry an exact type or a family
   * (`session.*`); the (subject, id) index (migration 7) finds a subject's
   * events without scanning the log.
   */
  listEvents(after: number, limit: number, filter: EventFilter = {}): AgentEvent[] {
    const where = ['id > ?'];
    const values: unknown[] = [after];
    if (filter.subject !== undefined) {
      where.push('subject = ?');
      values.push(filter.subject);
    }
    const typeMatch = (types: string[]) => {
      values.push(...types.map((type) => (type.endsWith('.*') ? type : type.replace(/[*?[]/g, '[$&]'))));
      return `(${types.map(() => 'type GLOB ?').join(' OR ')})`;
    };
    if (filter.type?.length) where.push(typeMatch(filter.type));
    if (filter.excludeType?.length) where.push(`NOT ${typeMatch(filter.excludeType)}`);
    const newest = filter.newest ?? false;
    const rows = this.db
      .prepare(`SELECT * FROM events WHERE ${where.join(' AND ')} ORDER BY id ${newest ? 'DESC' : ''} LIMIT ?`)
      .all(...values, limit) as Array<Record<string, unknown>>;
    if (newest) rows.reverse();
    return rows.map((row) => {
      const event: AgentEvent = {
        id: Number(row.id),
        time: String(row.time),
        type: String(row.type),
        severity: row.severity as Severity,
        subject: row.subject === null ? null : String(row.subject),
        message: String(row.message),
      };
      if (typeof row.data === 'string') event.data = JSON.parse(row.data) as Record<string, unknown>;
      return event;
    });
  }

  lastEventId(): number {
    const row = this.db.prepare('SELECT MAX(id) AS id FROM events').get() as { id: number | null };
    return row.id ?? 0;
  }

  close(): void {
    this.db.close();
  }
}

function toVolumeRow(row: Record<string, unknown>): VolumeRow {
  return {
    id: Number(row.id),
    name: String(row.name),
    kind: row.kind as 'volume' | 'snapshot',
    sourceId: row.source_id === null ? null : Number(row.source_id),
    sizeBytes: Number(row.size_bytes),
    readOnly: Number(row.read_only) === 1,
    createdAt: String(row.created_at),
  };
}
