import { NO_EXTENT, type MetadataState } from './metadata.ts';

/**
 * The metadata of continuous-data-protection journals (agents/src/cdp): for
 * each journal, its do stream (replicated writes and trims not yet
 * distributed to the replica), its undo stream (what distributed records
 * overwrote) and its points in time. Part of MetadataState: every change is
 * one WAL record (RecordType.Cdp, see cdp-codec.ts) applied here, live and in
 * replay alike, and the whole of it is in the checkpoint.
 *
 * Every extent an entry holds counts in the pool's refcounts like a VTT
 * reference (MetadataState.holdExtent), so undo is kept by reference: when
 * a record is distributed the replica's VTT entry is pointed at the record's
 * extent and the replica's previous extent stays referenced by the record
 * as its undo. No data moves.
 *
 * An entry is one track of one record (a replicated write or trim: one
 * sequence number). While undistributed it holds its `extent` (the track's
 * whole content after the record, written by the append); once distributed
 * it holds `undo` (the track's content before the record). Distribution
 * goes in sequence order, so the distributed entries are a prefix.
 */

/** `undo` of an entry not distributed yet. */
export const UNDISTRIBUTED = -1;

export interface CdpEntry {
  seq: number;
  volume: number;
  track: number;
  /** The track after this record: an extent (held until distribution) or NO_EXTENT (trimmed). */
  extent: number;
  /** The replica's extent before distribution (held), NO_EXTENT when it had none, UNDISTRIBUTED before. */
  undo: number;
  timeMs: number;
}

export interface CdpPoint {
  /** The point holds every record with a sequence number up to this one. */
  seq: number;
  timeMs: number;
  /** A bookmark's name, null for a plain point. */
  name: string | null;
}

export interface CdpRun {
  track: number;
  count: number;
  /** The first of `count` consecutive extents holding the tracks' new content. */
  extent: number;
}

export type CdpOp =
  | { op: 'create'; journal: number; volumes: number[] }
  | { op: 'delete'; journal: number }
  | { op: 'write'; journal: number; volume: number; timeMs: number; runs: CdpRun[] }
  | { op: 'trim'; journal: number; volume: number; track: number; count: number; timeMs: number }
  | { op: 'point'; journal: number; timeMs: number; name: string | null }
  | { op: 'distribute'; journal: number; upto: number }
  | { op: 'release'; journal: number; floor: number }
  | { op: 'consolidate'; journal: number; ranges: CdpRange[] };

/** A stretch (from, to] of sequence numbers; consolidation keeps the points at its ends. */
export interface CdpRange {
  from: number;
  to: number;
}

export class CdpJournalMeta {
  readonly id: number;
  readonly volumes: number[];
  /** Sequence number of the last record appended (0: none yet). */
  lastSeq = 0;
  /** No point below this is kept; records up to it keep no undo. */
  floor = 0;
  /** Undistributed entries, in sequence order. */
  readonly pending: CdpEntry[] = [];
  /** Distributed entries that hold undo, in sequence order. */
  readonly kept: CdpEntry[] = [];
  readonly points: CdpPoint[] = [];
  /** Per volume, per track: its entries (pending and kept) in sequence order. */
  readonly byTrack = new Map<number, Map<number, CdpEntry[]>>();
  /** Extents the journal's entries hold. */
  heldExtents = 0;

  constructor(id: number, volumes: number[]) {
    this.id = id;
    this.volumes = [...volumes];
  }

  /** Every record up to this one is distributed (records without entries, like a trim of empty tracks, count as distributed). */
  get distributedSeq(): number {
    return this.pending.length > 0 ? this.pending[0].seq - 1 : this.lastSeq;
  }

  entriesOf(volume: number, track: number): CdpEntry[] | undefined {
    return this.byTrack.get(volume)?.get(track);
  }

  /** Adds an entry at the end of its track's list (entries arrive in sequence order). */
  index(entry: CdpEntry): void {
    let tracks = this.byTrack.get(entry.volume);
    if (!tracks) {
      tracks = new Map();
      this.byTrack.set(entry.volume, tracks);
    }
    const list = tracks.get(entry.track);
    if (list) list.push(entry);
    else tracks.set(entry.track, [entry]);
  }

  unindex(entry: CdpEntry): void {
    const tracks = this.byTrack.get(entry.volume);
    const list = tracks?.get(entry.track);
    if (!tracks || !list) return;
    const at = list[0] === entry ? 0 : list.indexOf(entry);
    if (at < 0) return;
    list.splice(at, 1);
    if (list.length === 0) tracks.delete(entry.track);
  }
}

/**
 * The track's content after every record so far: the last entry's extent
 * while it is undistributed, otherwise the replica's (which then holds it).
 */
export function headExtent(state: MetadataState, journal: CdpJournalMeta, volume: number, track: number): number {
  const list = journal.entriesOf(volume, track);
  const last = list?.[list.length - 1];
  if (last && last.undo === UNDISTRIBUTED) return last.extent;
  const meta = state.volumes.get(volume);
  return meta && track < meta.trackCount ? state.lookup(meta, track) : NO_EXTENT;
}

/**
 * The track's content at point `seq` (every record up to `seq` applied,
 * none after), for `seq` at or above the journal's floor: the undo of the
 * first distributed entry after `seq`; else the last undistributed entry up
 * to `seq`; else the replica's. A binary search: instant at any depth.
 */
export function extentAt(state: MetadataState, journal: CdpJournalMeta, volume: number, track: number, seq: number): number {
  const list = journal.entriesOf(volume, track);
  if (list) {
    let low = 0;
    let high = list.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (list[middle].seq <= seq) low = middle + 1;
      else high = middle;
    }
    if (low < list.length && list[low].undo !== UNDISTRIBUTED) return list[low].undo;
    if (low > 0 && list[low - 1].undo === UNDISTRIBUTED) return list[low - 1].extent;
  }
  const meta = state.volumes.get(volume);
  return meta && track < meta.trackCount ? state.lookup(meta, track) : NO_EXTENT;
}

function hold(state: MetadataState, journal: CdpJournalMeta, extent: number): void {
  if (extent === NO_EXTENT) return;
  state.holdExtent(extent);
  journal.heldExtents++;
}

function drop(state: MetadataState, journal: CdpJournalMeta, extent: number): void {
  if (extent === NO_EXTENT) return;
  state.releaseExtent(extent);
  journal.heldExtents--;
}

function journalOf(state: MetadataState, id: number): CdpJournalMeta {
  const journal = state.journals.get(id);
  if (!journal) throw new Error(`metadata: no CDP journal ${id}`);
  return journal;
}

/** Applies one CDP record (the same code live and in replay). */
export function applyCdp(state: MetadataState, op: CdpOp): void {
  if (op.op === 'create') {
    if (state.journals.has(op.journal)) throw new Error(`metadata: CDP journal ${op.journal} exists`);
    state.journals.set(op.journal, new CdpJournalMeta(op.journal, op.volumes));
    state.version++;
    return;
  }
  const journal = journalOf(state, op.journal);
  switch (op.op) {
    case 'delete':
      for (const entry of journal.pending) drop(state, journal, entry.extent);
      for (const entry of journal.kept) drop(state, journal, entry.undo);
      state.journals.delete(op.journal);
      break;
    case 'write': {
      const seq = ++journal.lastSeq;
      const meta = state.volumes.get(op.volume);
      for (const run of op.runs) {
        for (let i = 0; i < run.count; i++) {
          const entry: CdpEntry = { seq, volume: op.volume, track: run.track + i, extent: run.extent + i, undo: UNDISTRIBUTED, timeMs: op.timeMs };
          // A record naming tracks the volume lacks (deleted meanwhile) keeps nothing.
          if (!meta || entry.track >= meta.trackCount) continue;
          hold(state, journal, entry.extent);
          journal.pending.push(entry);
          journal.index(entry);
        }
      }
      break;
    }
    case 'trim': {
      const seq = ++journal.lastSeq;
      const meta = state.volumes.get(op.volume);
      const end = meta ? Math.min(op.track + op.count, meta.trackCount) : 0;
      for (let track = op.track; track < end; track++) {
        // A track already empty stays so: no entry (no image can tell the difference).
        if (headExtent(state, journal, op.volume, track) === NO_EXTENT) continue;
        const entry: CdpEntry = { seq, volume: op.volume, track, extent: NO_EXTENT, undo: UNDISTRIBUTED, timeMs: op.timeMs };
        journal.pending.push(entry);
        journal.index(entry);
      }
      break;
    }
    case 'point': {
      // A plain point with no record since the last plain one moves that one's time.
      const last = journal.points[journal.points.length - 1];
      if (last && last.seq === journal.lastSeq && last.name === null && op.name === null) last.timeMs = op.timeMs;
      else journal.points.push({ seq: journal.lastSeq, timeMs: op.timeMs, name: op.name });
      break;
    }
    case 'distribute':
      distribute(state, journal, Math.min(op.upto, journal.lastSeq));
      break;
    case 'release':
      release(state, journal, op.floor);
      break;
    case 'consolidate':
      consolidate(state, journal, op.ranges);
      break;
  }
  state.version++;
}

function distribute(state: MetadataState, journal: CdpJournalMeta, upto: number): void {
  let taken = 0;
  while (taken < journal.pending.length && journal.pending[taken].seq <= upto) {
    const entry = journal.pending[taken++];
    const meta = state.volumes.get(entry.volume);
    if (!meta || entry.track >= meta.trackCount) {
      drop(state, journal, entry.extent);
      journal.unindex(entry);
      continue;
    }
    const old = state.lookup(meta, entry.track);
    // Held first, so the replica's dropping it never takes it to zero references.
    hold(state, journal, old);
    if (entry.extent !== NO_EXTENT) {
      state.mapTrack(entry.volume, entry.track, entry.extent);
      drop(state, journal, entry.extent);
    } else if (old !== NO_EXTENT) {
      state.unmapTracks(entry.volume, entry.track, 1);
    }
    entry.undo = old;
    if (entry.seq <= journal.floor) {
      // No kept point needs what it overwrote.
      drop(state, journal, old);
      journal.unindex(entry);
    } else {
      journal.kept.push(entry);
    }
  }
  journal.pending.splice(0, taken);
}

function release(state: MetadataState, journal: CdpJournalMeta, floor: number): void {
  if (floor <= journal.floor) return;
  journal.floor = floor;
  let first = 0;
  while (first < journal.points.length && journal.points[first].seq < floor) first++;
  journal.points.splice(0, first);
  let taken = 0;
  while (taken < journal.kept.length && journal.kept[taken].seq <= floor) {
    const entry = journal.kept[taken++];
    drop(state, journal, entry.undo);
    journal.unindex(entry);
  }
  journal.kept.splice(0, taken);
}

/**
 * For each range: drops the points strictly between `from` and `to` and
 * the undo only they needed (of the distributed entries in (from, to], each
 * track keeps its first: what points up to `from` read; the rest go). One
 * pass over the kept entries for all ranges. A range that is empty, reaches
 * undistributed records, starts below the floor, or overlaps the one
 * before it is skipped.
 */
function consolidate(state: MetadataState, journal: CdpJournalMeta, ranges: CdpRange[]): void {
  const valid: CdpRange[] = [];
  for (const range of ranges) {
    const previous = valid[valid.length - 1];
    if (range.from >= range.to || range.to > journal.distributedSeq || range.from < journal.floor) continue;
    if (previous && range.from < previous.to) continue;
    valid.push(range);
  }
  if (valid.length === 0) return;
  const inside = (seq: number, strict: boolean): CdpRange | undefined => {
    let low = 0;
    let high = valid.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (valid[middle].to < seq || (strict && valid[middle].to === seq)) low = middle + 1;
      else high = middle;
    }
    const range = valid[low];
    return range && seq > range.from && (strict ? seq < range.to : seq <= range.to) ? range : undefined;
  };
  const points = journal.points.filter((point) => !inside(point.seq, true));
  journal.points.splice(0, journal.points.length, ...points);
  const seen = new Set<string>();
  let current: CdpRange | undefined;
  const kept: CdpEntry[] = [];
  for (const entry of journal.kept) {
    const range = inside(entry.seq, false);
    if (!range) {
      kept.push(entry);
      continue;
    }
    if (range !== current) {
      current = range;
      seen.clear();
    }
    const key = `${entry.volume}:${entry.track}`;
    if (!seen.has(key)) {
      seen.add(key);
      kept.push(entry);
      continue;
    }
    drop(state, journal, entry.undo);
    journal.unindex(entry);
  }
  journal.kept.splice(0, journal.kept.length, ...kept);
}

/** Every extent reference the journals hold (for the offline check's recount). */
export function forEachJournalExtent(state: MetadataState, visit: (extent: number) => void): void {
  for (const journal of state.journals.values()) {
    for (const entry of journal.pending) if (entry.extent !== NO_EXTENT) visit(entry.extent);
    for (const entry of journal.kept) if (entry.undo !== NO_EXTENT) visit(entry.undo);
  }
}
