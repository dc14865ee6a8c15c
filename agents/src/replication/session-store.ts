import type { Direction, LastVerify, PeerPairRecord, PeerSessionRecord, SessionState, SessionType } from '@tandem/contract';
import type { Catalog } from '../storage/catalog.ts';

/** A session as both sites keep it; the `pairs` rows differ per site (local volume, bitmaps). */
export interface SessionRecord {
  id: string;
  name: string;
  type: SessionType;
  /** The agent where the session was defined: its site is H1. */
  controlAgentId: string;
  /** The other site's agent. */
  peerAgentId: string;
  state: SessionState;
  direction: Direction;
  recoverable: boolean;
  detail: string | null;
  consistencyTime: string | null;
  /** Snapshot shipping: the time between cycles, ms (null: TANDEM_SHIP_INTERVAL_MS or 30 s). Both sites keep it. */
  shipIntervalMs?: number | null;
  /** The last online verify's result (recorded at the source, pushed to the other site with the state). */
  lastVerify?: LastVerify | null;
  createdAt: string;
  updatedAt: string;
}

/**
 * A copy set as this agent keeps it: one row of the catalog's `copy_sets`
 * table, in every kind of session (one primary agent or several). Its
 * primary agent holds the H1 volume, its secondary agent the H2 volume.
 * The `local*` fields and bitmaps are this agent's: a copy set whose two
 * volumes are both on other agents (the control agent's record of another
 * primary agent's copy set) has none (`localSite` null).
 */
export interface CopySetRecord {
  id: string;
  sessionId: string;
  /** The agent holding the H1 volume. */
  primaryAgentId: string;
  /** The agent holding the H2 volume. */
  secondaryAgentId: string;
  h1Volume: string;
  h2Volume: string;
  /** The copy set's volume at this site, by name (what commands and the other site call it); null where it has none here. */
  localVolume: string | null;
  /**
   * ...and by its immutable id here (engine volume ids are never reused): a
   * volume deleted and made again under the name is another volume, never
   * taken for this copy set's. Null also for a copy set migrated from a
   * catalog that named volumes by name only whose volume was already gone.
   */
  localVolumeId: number | null;
  /** Which of its volumes is here: 'h1', 'h2', or null for neither. */
  localSite: 'h1' | 'h2' | null;
  outOfSyncBitmap: number | null;
  targetChangedBitmap: number | null;
  /** At the source: added to a running session and not a member of its consistency group yet (see running-copy-sets.ts). */
  joining?: boolean;
  /** The copy set is broken: its volume here (or at the other site) is gone or another one; why and since when (copy-set-volumes.ts). */
  broken?: { reason: string; since: string } | null;
  createdAt: string;
}

/** A copy set with one of its volumes at this agent: what sources, targets, bitmaps and reports work with. */
export type HeldCopySet = CopySetRecord & { localVolume: string; localSite: 'h1' | 'h2' };

export function isHeld(record: CopySetRecord): record is HeldCopySet {
  return record.localSite !== null && record.localVolume !== null;
}

/** A held copy set as the peer protocol carries it (contract/src/peer.ts). */
export type CopySetOnTheWire = HeldCopySet;

/**
 * The peer protocol's schemas of these records (contract/src/peer.ts) list
 * every field: parsing keeps only listed fields, so a field added here and
 * not there would be dropped on its way to the other site. Checked here at
 * compile time.
 */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
export type RecordsMatchPeerSchemas = [Assert<Same<SessionRecord, PeerSessionRecord>>, Assert<Same<CopySetOnTheWire, PeerPairRecord>>];

/**
 * A copy set as its H1 site first holds it: no bitmaps yet. `localVolumeId`:
 * the H1 volume's id where it lives (null where it does not);
 * `primaryAgentId`: the agent holding the H1 volume.
 */
export function newCopySet(
  session: Pick<SessionRecord, 'id' | 'peerAgentId'>,
  primaryAgentId: string,
  h1Volume: string,
  h2Volume: string,
  id: string,
  createdAt: string,
  localVolumeId: number | null,
): HeldCopySet {
  return {
    id,
    sessionId: session.id,
    primaryAgentId,
    secondaryAgentId: session.peerAgentId,
    h1Volume,
    h2Volume,
    localVolume: h1Volume,
    localVolumeId,
    localSite: 'h1',
    outOfSyncBitmap: null,
    targetChangedBitmap: null,
    broken: null,
    createdAt,
  };
}

/** The same copy set as the H2 site holds it (what the H1 site sends it; the receiver takes its own volume's id). */
export function atSecondary(pair: HeldCopySet): HeldCopySet {
  return { ...pair, localVolume: pair.h2Volume, localVolumeId: null, localSite: 'h2', broken: null };
}

/** The control agent's record of a copy set held by two other agents (another primary agent and the secondary). */
export function heldElsewhere(pair: CopySetRecord): CopySetRecord {
  return { ...pair, localVolume: null, localVolumeId: null, localSite: null, outOfSyncBitmap: null, targetChangedBitmap: null, joining: false, broken: null };
}

/** Sessions and copy sets in the SQLite catalog. */
export class SessionStore {
  constructor(private readonly catalog: Catalog) {}

  sessions(): SessionRecord[] {
    const rows = this.catalog.db.prepare('SELECT * FROM sessions ORDER BY created_at, name').all() as Array<Record<string, unknown>>;
    return rows.map((row) => ({
      id: String(row.id),
      name: String(row.name),
      type: row.type as SessionType,
      controlAgentId: String(row.control_agent_id),
      peerAgentId: String(row.peer_agent_id),
      state: row.state as SessionState,
      direction: row.direction as Direction,
      recoverable: Number(row.recoverable) === 1,
      detail: row.detail === null ? null : String(row.detail),
      consistencyTime: row.consistency_time === null ? null : String(row.consistency_time),
      shipIntervalMs: row.ship_interval_ms === null || row.ship_interval_ms === undefined ? null : Number(row.ship_interval_ms),
      lastVerify: typeof row.last_verify === 'string' ? (JSON.parse(row.last_verify) as LastVerify) : null,
      createdAt: String(row.created_at),
      updatedAt: String(row.updated_at),
    }));
  }

  /** Every copy set known here, of every session (held here or not). */
  copySets(): CopySetRecord[] {
    return this.rows(this.catalog.db.prepare('SELECT * FROM copy_sets ORDER BY created_at, id').all());
  }

  /** The copy sets of one session known here. */
  copySetsOf(sessionId: string): CopySetRecord[] {
    return this.rows(this.catalog.db.prepare('SELECT * FROM copy_sets WHERE session_id = ? ORDER BY created_at, id').all(sessionId));
  }

  private rows(rows: unknown[]): CopySetRecord[] {
    return (rows as Array<Record<string, unknown>>).map((row) => ({
      id: String(row.id),
      sessionId: String(row.session_id),
      primaryAgentId: String(row.primary_agent_id),
      secondaryAgentId: String(row.secondary_agent_id),
      h1Volume: String(row.h1_volume),
      h2Volume: String(row.h2_volume),
      localVolume: row.local_volume === null ? null : String(row.local_volume),
      localVolumeId: row.local_volume_id === null || row.local_volume_id === undefined ? null : Number(row.local_volume_id),
      localSite: row.local_site === null ? null : (row.local_site as 'h1' | 'h2'),
      outOfSyncBitmap: row.out_of_sync_bitmap === null ? null : Number(row.out_of_sync_bitmap),
      targetChangedBitmap: row.target_changed_bitmap === null ? null : Number(row.target_changed_bitmap),
      joining: Number(row.joining) === 1,
      broken: typeof row.broken_reason === 'string' ? { reason: row.broken_reason, since: String(row.broken_at) } : null,
      createdAt: String(row.created_at),
    }));
  }

  saveSession(session: SessionRecord): void {
    this.catalog.db
      .prepare(
        `INSERT INTO sessions (id, name, type, control_agent_id, peer_agent_id, state, direction, recoverable, detail,
           consistency_time, ship_interval_ms, last_verify, created_at, updated_at)
         VALUES (@id, @name, @type, @controlAgentId, @peerAgentId, @state, @direction, @recoverable, @detail,
           @consistencyTime, @shipIntervalMs, @lastVerify, @createdAt, @updatedAt)
         ON CONFLICT(id) DO UPDATE SET state = excluded.state, direction = excluded.direction,
           recoverable = excluded.recoverable, detail = excluded.detail,
           consistency_time = excluded.consistency_time, ship_interval_ms = excluded.ship_interval_ms,
           last_verify = excluded.last_verify, updated_at = excluded.updated_at`,
      )
      .run({
        ...session,
        recoverable: session.recoverable ? 1 : 0,
        shipIntervalMs: session.shipIntervalMs ?? null,
        lastVerify: session.lastVerify ? JSON.stringify(session.lastVerify) : null,
      });
  }

  saveCopySet(pair: CopySetRecord): void {
    this.catalog.db
      .prepare(
        `INSERT INTO copy_sets (id, session_id, primary_agent_id, secondary_agent_id, h1_volume, h2_volume, local_site, local_volume,
           local_volume_id, out_of_sync_bitmap, target_changed_bitmap, joining, broken_reason, broken_at, created_at)
         VALUES (@id, @sessionId, @primaryAgentId, @secondaryAgentId, @h1Volume, @h2Volume, @localSite, @localVolume,
           @localVolumeId, @outOfSyncBitmap, @targetChangedBitmap, @joining, @brokenReason, @brokenAt, @createdAt)
         ON CONFLICT(id) DO UPDATE SET local_site = excluded.local_site, local_volume = excluded.local_volume,
           local_volume_id = excluded.local_volume_id, out_of_sync_bitmap = excluded.out_of_sync_bitmap,
           target_changed_bitmap = excluded.target_changed_bitmap, joining = excluded.joining,
           broken_reason = excluded.broken_reason, broken_at = excluded.broken_at`,
      )
      .run({
        id: pair.id,
        sessionId: pair.sessionId,
        primaryAgentId: pair.primaryAgentId,
        secondaryAgentId: pair.secondaryAgentId,
        h1Volume: pair.h1Volume,
        h2Volume: pair.h2Volume,
        localSite: pair.localSite,
        localVolume: pair.localVolume,
        localVolumeId: pair.localVolumeId,
        outOfSyncBitmap: pair.outOfSyncBitmap,
        targetChangedBitmap: pair.targetChangedBitmap,
        joining: pair.joining ? 1 : 0,
        brokenReason: pair.broken?.reason ?? null,
        brokenAt: pair.broken?.since ?? null,
        createdAt: pair.createdAt,
      });
  }

  deleteCopySet(id: string): void {
    this.catalog.db.prepare('DELETE FROM copy_sets WHERE id = ?').run(id);
  }

}
