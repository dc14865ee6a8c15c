import fsp from 'node:fs/promises';
import path from 'node:path';
import { ProblemError } from '@tandem/contract';
import { writeFileDurably } from '../storage/durable-file.ts';
import type { StorageEngine } from '../storage/engine.ts';
import type { BlockDevice } from '../storage/block-device.ts';
import type { GroupEntry } from './async-groups.ts';
import { inertFaults, type ReplicationFaults } from './faults.ts';
import type { HeldCopySet } from './session-store.ts';
import { SessionQueue } from './session-queue.ts';
import { localVolumeName } from './copy-set-volumes.ts';

/**
 * A consistency group as agents of peer protocol 1.x sent it whole (`cg.apply`, gone in 2.0): one
 * staged by such an agent before an upgrade is still applied at start (`recover`), never received any more.
 */
interface StagedGroup {
  session: string;
  group: number;
  time: number;
  entries: GroupEntry[];
}

/** One primary agent's part of a multi-primary session's round, staged until the coordinator commits the round. */
export interface StagedPart {
  session: string;
  /** The coordinator's run: parts of another run are never committed. */
  epoch: string;
  /** The primary agent that cut and shipped this part. */
  from: string;
  round: number;
  time: number;
  entries: GroupEntry[];
  /**
   * A part larger than one request allows travels in pieces (`cg.stage` each,
   * in order): this piece's number from 0, and whether it is the last. Absent:
   * the part is one piece. A commit applies a part only once all its pieces are staged.
   */
  piece?: number;
  last?: boolean;
}

/** Which part a staged piece belongs to. */
function partKey(part: StagedPart): string {
  return `${part.epoch}/${part.round}/${part.from}`;
}

/**
 * Payloads of staged parts kept in memory (copies), at most this many bytes
 * in all: a commit applies those without reading their files back. The
 * files stay the durable copy (`recover` reads them after a crash).
 */
const KEPT_PAYLOAD_BYTES = 64 * 1024 * 1024;
/** Earlier coordinator runs remembered per session, to refuse their late commits. */
const MAX_EARLIER_EPOCHS = 1000;

/** A staged part and, when kept in memory, its payload. */
interface StagedPartEntry {
  part: StagedPart;
  payload: Buffer | undefined;
}

/**
 * The staged file format (groups and parts): the header's length (4 bytes,
 * big-endian), the header as JSON, then the payload.
 */
function encodeStaged(header: StagedGroup | StagedPart, payload: Buffer | null): Buffer[] {
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length, 0);
  return payload ? [length, json, payload] : [length, json];
}

function decodeStaged<T extends StagedGroup | StagedPart>(data: Buffer): { header: T; payload: Buffer } {
  const headerLength = data.readUInt32BE(0);
  return {
    header: JSON.parse(data.subarray(4, 4 + headerLength).toString('utf8')) as T,
    payload: data.subarray(4 + headerLength),
  };
}

/** The coordinator's last commit of a multi-primary session here: every staged part of `epoch` up to `through` is applied. */
interface CommitMarker {
  session: string;
  epoch: string;
  through: number;
  time: number;
}

/**
 * The secondary side of async sessions: each primary agent's part of a round
 * is first staged durably (`cg.stage`: a file in DATA/staging, fsync'd, then
 * renamed into place); the coordinator's commit (`mp.commit`) is recorded
 * durably, then the round's parts are applied to the volumes, flushed, and
 * only then unstaged. A crash in the middle applies the committed parts again
 * at start, so a round is applied all-or-nothing and the target image is
 * always the sources' image at the last committed round's time.
 */
export class GroupApplier {
  private readonly dir: string;
  private readonly queue = new SessionQueue();
  /** Multi-primary: staged parts per session (file name -> part). */
  private readonly parts = new Map<string, Map<string, StagedPartEntry>>();
  /**
   * Per session, the epoch of the last commit made here and the epochs
   * committed before it: a coordinator never goes back to an earlier run, so
   * a commit of one of those is a late one (see `commit`).
   */
  private readonly epochs = new Map<string, { current: string; earlier: Set<string> }>();
  /** Bytes of the payloads kept in `parts` (KEPT_PAYLOAD_BYTES at most). */
  private keptBytes = 0;
  /**
   * Runs a multi-primary stream marker (flash-mirror.ts: a flash at the
   * primary's point in time) while a committed part is applied, between the
   * part's entries before and after it. Its outcome is the handler's to keep
   * (the primary asks for it); a refusal never stops the round.
   */
  onMarker: ((session: string, from: string, marker: { method: string; params: Record<string, unknown> }, payload: Buffer | null) => Promise<void>) | null = null;

  constructor(
    private readonly engine: StorageEngine,
    private readonly pairsOf: (session: string) => HeldCopySet[],
    private readonly onApplied: (session: string, time: number) => void,
    /** Injected by tests (faults.ts): commits that stop after their commit marker. */
    private readonly faults: Pick<ReplicationFaults, 'failAfterCommitMarker'> = inertFaults(),
    /** Where a copy set's replicated changes go (a session's journal when it has one: journal-feed.ts). */
    private readonly replicaDevice: (pair: HeldCopySet) => BlockDevice = (pair) => engine.device(localVolumeName(engine, pair)),
  ) {
    this.dir = path.join(engine.paths.root, 'staging');
  }

  /** Stages a part durably (fsync'd, then renamed into place). */
  private async writeStaged(file: string, header: StagedPart, payload: Buffer | null): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileDurably(file, encodeStaged(header, payload));
  }

  private async applyStaged(staged: StagedGroup, payload: Buffer): Promise<void> {
    const touched = await this.writeEntries(staged.session, staged.group, staged.entries, payload);
    // One commit makes the whole group durable before it is unstaged.
    if (touched > 0) await this.engine.flush();
    this.onApplied(staged.session, staged.time);
  }

  /**
   * Writes a group's (or part's) changes to the target volumes; returns how
   * many entries it wrote. A part's `marker` entries run in their place
   * (`from`: the primary agent that cut the part); a group carries none.
   */
  private async writeEntries(session: string, group: number, entries: GroupEntry[], payload: Buffer, from?: string): Promise<number> {
    const pairs = new Map(this.pairsOf(session).map((pair) => [pair.id, pair]));
    for (const entry of entries) {
      if (entry.kind === 'marker') {
        if (from !== undefined) await this.runMarker(session, from, entry, payload);
        continue;
      }
      const pair = pairs.get(entry.pair);
      if (!pair) throw new ProblemError('not-found', `consistency group ${group} names an unknown copy set ${entry.pair}`);
      const device = this.replicaDevice(pair);
      if (entry.kind === 'write') await device.write(entry.offset, payload.subarray(entry.dataOffset, entry.dataOffset + entry.length));
      else if (entry.kind === 'zeroes') await device.writeZeroes(entry.offset, entry.length);
      else await device.trim(entry.offset, entry.length);
    }
    return entries.length;
  }

  private async runMarker(session: string, from: string, entry: GroupEntry, payload: Buffer): Promise<void> {
    if (!entry.marker || !this.onMarker) return; // nobody serves it here: the primary learns it did not run
    const data = entry.length > 0 ? payload.subarray(entry.dataOffset, entry.dataOffset + entry.length) : null;
    try {
      await this.onMarker(session, from, entry.marker, data);
    } catch {
      // Refused: the handler kept the outcome for the primary; the round is applied all the same.
    }
  }

  // --- multi-primary sessions: parts staged per primary agent, applied when the coordinator commits ---

  private partFile(part: StagedPart): string {
    // The epoch too: a late part of an earlier run of the coordinator never replaces one of this run.
    const piece = part.piece ? `.${String(part.piece).padStart(6, '0')}` : '';
    return path.join(this.dir, `${part.session}-${part.epoch}-${String(part.round).padStart(12, '0')}-${part.from}${piece}.part`);
  }

  private markerFile(session: string): string {
    return path.join(this.dir, `${session}.commit`);
  }

  /**
   * Stages one primary agent's part of a round durably. Nothing is applied:
   * the target volumes change only when the coordinator commits the round.
   */
  async stagePart(part: StagedPart, payload: Buffer | null): Promise<void> {
    const piece = part.piece ?? 0;
    const staged = [...(this.parts.get(part.session) ?? [])].filter(([, entry]) => partKey(entry.part) === partKey(part));
    if (piece === 0) {
      // A part staged afresh: pieces of an earlier try of it go.
      for (const [file] of staged) {
        await fsp.unlink(file).catch(() => {});
        this.forget(this.parts.get(part.session)!, file);
      }
    } else if (!staged.some(([, entry]) => (entry.part.piece ?? 0) === piece - 1)) {
      throw new ProblemError('invalid-state', `piece ${piece} of round ${part.round}'s part from ${part.from} came without piece ${piece - 1}; the part is not staged`);
    }
    const file = this.partFile(part);
    await this.writeStaged(file, part, payload);
    this.remember(file, part, payload ?? Buffer.alloc(0));
  }

  /**
   * The staged parts of `epoch` through round `through`, each as its pieces in
   * order: `complete` those whose pieces 0..last are all staged, `incomplete`
   * the keys of those still missing some.
   */
  private dueParts(session: string, epoch: string, through: number): { complete: Array<Array<[string, StagedPartEntry]>>; incomplete: string[] } {
    const byPart = new Map<string, Array<[string, StagedPartEntry]>>();
    for (const item of this.parts.get(session) ?? []) {
      const { part } = item[1];
      if (part.epoch !== epoch || part.round > through) continue;
      const key = partKey(part);
      const pieces = byPart.get(key) ?? [];
      pieces.push(item);
      byPart.set(key, pieces);
    }
    const complete: Array<Array<[string, StagedPartEntry]>> = [];
    const incomplete: string[] = [];
    for (const [key, pieces] of byPart) {
      pieces.sort(([, x], [, y]) => (x.part.piece ?? 0) - (y.part.piece ?? 0));
      const whole = pieces.every(([, { part }], index) => (part.piece ?? 0) === index) && pieces.at(-1)![1].part.last !== false;
      if (whole) complete.push(pieces);
      else incomplete.push(key);
    }
    complete.sort((x, y) => x[0][1].part.round - y[0][1].part.round || x[0][1].part.from.localeCompare(y[0][1].part.from));
    return { complete, incomplete };
  }

  /** Notes a durably staged part (its payload too while KEPT_PAYLOAD_BYTES allow; a copy). */
  private remember(file: string, part: StagedPart, payload: Buffer): void {
    let staged = this.parts.get(part.session);
    if (!staged) {
      staged = new Map();
      this.parts.set(part.session, staged);
    }
    this.forget(staged, file);
    const keep = this.keptBytes + payload.length <= KEPT_PAYLOAD_BYTES;
    if (keep) this.keptBytes += payload.length;
    // Kept as it came when it is most of its memory (a frame of its own); a small view of a larger read is copied, so
    // that it does not hold the rest of that read.
    const own = payload.byteLength * 2 >= payload.buffer.byteLength;
    staged.set(file, { part, payload: keep ? (own ? payload : Buffer.from(payload)) : undefined });
  }

  private forget(staged: Map<string, StagedPartEntry>, file: string): void {
    this.keptBytes -= staged.get(file)?.payload?.length ?? 0;
    staged.delete(file);
  }

  /**
   * The coordinator's commit of every round through `through` (all primary agents'
   * parts of it are staged here): the commit marker is made durable first,
   * then every staged part of the epoch up to that round is applied in round
   * order and flushed, and only then unstaged. A crash in between re-applies
   * them at start (`recover`), so the volumes of this agent move from one
   * committed round to the next all-or-nothing. Parts of other epochs are
   * left alone: a commit of an earlier coordinator run can arrive late (held
   * in the network; `mp.commit` is no stream request, so the run fence lets
   * it in) while the next run's rounds are staged, and must not drop them
   * (their commit would then apply nothing and the primary clear their
   * marks). Parts of earlier runs go when their primary fences a new run
   * (`dropParts`) or the session stops (`discardParts`).
   */
  commit(session: string, epoch: string, through: number, time: number): Promise<void> {
    return this.queue.run(session, async () => {
      // A late commit of an earlier run (a later run committed here since): it would set the commit marker and the
      // consistency time back to its older cut, so it is refused; nothing of its epoch is left to apply anyway.
      const epochs = this.epochs.get(session);
      if (epochs?.earlier.has(epoch)) {
        throw new ProblemError('stale-stream', `round ${through} of an earlier coordinator run (epoch ${epoch}) comes after rounds of a later one; not applied`);
      }
      // A part the primary still sends in pieces is not staged: the coordinator commits no round of it (the primary
      // reports a part staged only once its last piece is), so this refuses a commit that would apply part of a part.
      const { incomplete } = this.dueParts(session, epoch, through);
      if (incomplete.length > 0) {
        throw new ProblemError('invalid-state', `round ${through} cannot be committed: part ${incomplete[0]} is staged only in part (pieces missing)`);
      }
      await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
      const marker: CommitMarker = { session, epoch, through, time };
      await writeFileDurably(this.markerFile(session), Buffer.from(JSON.stringify(marker)));
      if (this.faults.failAfterCommitMarker > 0) {
        this.faults.failAfterCommitMarker--;
        throw new ProblemError('internal-error', 'injected stop after the commit marker');
      }
      await this.applyCommitted(marker);
      this.committedEpoch(session, epoch);
    });
  }

  private committedEpoch(session: string, epoch: string): void {
    const epochs = this.epochs.get(session);
    if (!epochs) this.epochs.set(session, { current: epoch, earlier: new Set() });
    else if (epochs.current !== epoch) {
      epochs.earlier.add(epochs.current);
      epochs.current = epoch;
      // Kept for the runs of the last while (a link that flaps for days starts a run each time).
      if (epochs.earlier.size > MAX_EARLIER_EPOCHS) epochs.earlier.delete(epochs.earlier.values().next().value!);
    }
  }

  private async applyCommitted(marker: CommitMarker): Promise<void> {
    const staged = this.parts.get(marker.session) ?? new Map<string, StagedPartEntry>();
    // Complete parts only (`commit` refused any other); their pieces in order are the part's entries in order.
    const due = this.dueParts(marker.session, marker.epoch, marker.through).complete.flat();
    let touched = 0;
    for (const [file, { part, payload }] of due) {
      const data = payload ?? decodeStaged<StagedPart>(await fsp.readFile(file)).payload;
      touched += await this.writeEntries(marker.session, part.round, part.entries, data, part.from);
    }
    if (touched > 0) await this.engine.flush();
    for (const [file, { part }] of [...staged]) {
      if (part.epoch === marker.epoch && part.round <= marker.through) {
        await fsp.unlink(file).catch(() => {});
        this.forget(staged, file);
      }
    }
    this.onApplied(marker.session, marker.time);
  }

  /**
   * The last commit of a multi-primary session made here (after any commit
   * in progress): its epoch, round and cut time; null when none was.
   */
  lastCommit(session: string): Promise<{ epoch: string; through: number; time: number } | null> {
    return this.queue.run(session, async () => {
      const text = await fsp.readFile(this.markerFile(session), 'utf8').catch(() => null);
      if (text === null) return null;
      const marker = JSON.parse(text) as CommitMarker;
      return { epoch: marker.epoch, through: marker.through, time: marker.time };
    });
  }

  /**
   * Drops the staged, uncommitted parts one primary agent sent of a session
   * (of every epoch), once the commit in progress (if any) is over: that
   * agent starts a new mirroring run and resyncs every track they held
   * (`stream.fence`), so no later commit may apply them over its copies.
   */
  async dropParts(session: string, from: string): Promise<void> {
    await this.queue.run(session, async () => {
      const staged = this.parts.get(session);
      if (!staged) return;
      for (const [file, { part }] of [...staged]) {
        if (part.from !== from) continue;
        await fsp.unlink(file).catch(() => {});
        this.forget(staged, file);
      }
    });
  }

  /** Drops every staged, uncommitted part of a session (it stopped; its primaries keep the tracks marked). */
  async discardParts(session: string): Promise<void> {
    await this.queue.run(session, async () => {
      const staged = this.parts.get(session);
      if (!staged) return;
      for (const file of [...staged.keys()]) {
        await fsp.unlink(file).catch(() => {});
        this.forget(staged, file);
      }
      this.parts.delete(session);
    });
  }

  /** Re-applies parts whose commit a crash interrupted, and groups an agent of protocol 1.x staged before its upgrade, in order. */
  async recover(): Promise<number> {
    const names = await fsp.readdir(this.dir).catch(() => [] as string[]);
    let applied = 0;
    const markers: CommitMarker[] = [];
    for (const name of names.sort()) {
      const file = path.join(this.dir, name);
      if (name.endsWith('.commit')) {
        const marker = JSON.parse(await fsp.readFile(file, 'utf8')) as CommitMarker;
        markers.push(marker);
        this.committedEpoch(marker.session, marker.epoch);
        continue;
      }
      if (name.endsWith('.part')) {
        const { header: part, payload } = decodeStaged<StagedPart>(await fsp.readFile(file));
        this.remember(file, part, payload);
        continue;
      }
      if (name.endsWith('.tmp')) {
        await fsp.unlink(file); // never completely staged: the source still has it marked
        continue;
      }
      if (!name.endsWith('.grp')) continue;
      const { header: staged, payload } = decodeStaged<StagedGroup>(await fsp.readFile(file));
      await this.queue.run(staged.session, () => this.applyStaged(staged, payload));
      await fsp.unlink(file);
      applied++;
    }
    // A commit interrupted by a crash: its parts are still staged and are applied now.
    for (const marker of markers) {
      const due = [...(this.parts.get(marker.session)?.values() ?? [])].filter(({ part }) => part.epoch === marker.epoch && part.round <= marker.through);
      if (due.length === 0) continue;
      await this.queue.run(marker.session, () => this.applyCommitted(marker));
      applied++;
    }
    return applied;
  }

  /**
   * Holds a session's applies (after the one in progress) until the returned
   * release is called: while held, the target volumes are a consistent image.
   */
  freeze(session: string): Promise<() => void> {
    return this.queue.freeze(session);
  }
}
