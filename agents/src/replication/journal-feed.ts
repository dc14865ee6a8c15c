import {
  ProblemError,
  type ImageAccessInfo,
  type ImageAccessRequest,
  type JournalPoint,
  type JournalPolicy,
  type JournalView,
  type SetJournalRequest,
  type VolumeDependent,
} from '@tandem/contract';
import { CdpJournal } from '../cdp/journal.ts';
import { ImageDevice, type ImageAccess } from '../cdp/image.ts';
import { applyRetention, coalescePoints, DEFAULT_TIERS, journalStatus, type RetentionPolicy } from '../cdp/retention.ts';
import type { CdpPoint } from '../storage/cdp-meta.ts';
import type { BlockDevice, ExportCatalog } from '../storage/block-device.ts';
import { NO_EXTENT } from '../storage/metadata.ts';
import type { TapSource, WriteTap } from '../write-path/splitter.ts';
import { localVolumeName } from './copy-set-volumes.ts';
import { JournaledDevice, JournalGuardTap } from './journaled-device.ts';
import { problemMessage } from './problem-message.ts';
import type { ReplicationHooks } from './hooks.ts';
import type { HeldCopySet, SessionRecord } from './session-store.ts';

/**
 * Continuous data protection wired into a running agent (issue 13): a
 * CdpJournal (cdp/journal.ts) per session at its secondary agent, over the
 * session's replica volumes there, with the administrator's policy in the
 * catalog (`session_journals`, migration 14).
 *
 * - Replicated writes and trims of sync and semi-sync sessions (target.ts),
 *   of async rounds (group-applier.ts) and of shipping cycles
 *   (shipping-target.ts) reach the replica through `replicaDevice`
 *   (journaled-device.ts): a journal append, durable before the ack for a
 *   FUA write and at the next flush otherwise (as the replica's own write),
 *   distribution to the replica right after.
 * - Points: a point a second while records arrive (sync, semi-sync), one per
 *   applied async round or shipping cycle (`roundApplied`), bookmarks on
 *   request; none while a resync runs (`runFenced`, `consistent`), which
 *   gets an automatic bookmark of the replica before it.
 * - Retention every RETENTION_MS, with an event when the journal's warnings change.
 * - Recover at a point (`checkRecover`, `recoverAt`): the replica rolled
 *   back, the rolled tracks marked for the failback, the journal ended.
 * - Image access: an ImageAccess at a point, one NBD export per replica
 *   volume (`exports`), its writes discarded at the end.
 * - The volume guard: a replica volume with a journal takes no host writes
 *   (`tapsFor`, problem `read-only`) and is neither deleted nor resized
 *   (a `cdp-journal` volume dependent).
 *
 * Over 450 lines on purpose, for now: the policy, the feed, points, retention,
 * recover and image access all work on the same per-session `Feed` and image
 * maps. Image access (openImage .. exports, ~110 lines) and recover
 * (checkRecover .. rollBack, ~110 lines) are the seams to split along when
 * logged access and roll come.
 */

const POINT_MS = 1000;
const RETENTION_MS = Number(process.env.TANDEM_JOURNAL_RETENTION_MS ?? 10_000);

/** A point as a request names it (one of these, or none: the newest). */
type JournalPointRequest = { bookmark?: string; at?: string; seq?: number };

interface JournalRow {
  session_id: string;
  journal_id: number;
  budget_bytes: number;
  required_window_ms: number;
  bookmark_ms: number | null;
}

interface OpenImage {
  id: number;
  session: string;
  image: ImageAccess;
  point: CdpPoint;
  openedAt: string;
  /** Export name -> device. */
  devices: Map<string, { volume: string; device: ImageDevice }>;
}

interface Feed {
  sessionId: string;
  journal: CdpJournal;
  row: JournalRow;
  /** Volume name -> engine id, of the replica volumes in the journal. */
  volumes: Map<string, number>;
  /** Replicated writes go through these (one per replica volume). */
  devices: Map<string, JournaledDevice>;
  distributing: boolean;
  warnings: string;
  /** When the source last started a new mirroring run here (a resync may follow): no points until it is duplex again. */
  fencedAt: number | null;
}

/** What the journals use of the service and the other parts (hooks.ts). */
export type JournalFeedHooks = Pick<ReplicationHooks, 'engine' | 'logger' | 'session' | 'sessions' | 'pairsOf' | 'role' | 'peers' | 'refreshTaps' | 'applier' | 'receiver'>;

export class JournalFeed implements TapSource {
  private readonly feeds = new Map<string, Feed>();
  private readonly images = new Map<number, OpenImage>();
  private nextImage = 1;
  private readonly pointTimer: NodeJS.Timeout;
  private readonly retentionTimer: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly service: JournalFeedHooks) {
    const engine = service.engine;
    const rows = engine.catalog.db.prepare('SELECT * FROM session_journals').all() as JournalRow[];
    for (const row of rows) {
      try {
        this.open(row);
      } catch (error) {
        service.logger.error({ error: problemMessage(error), session: row.session_id }, 'the journal of a session could not be opened');
      }
    }
    // A journal made just before a crash, its catalog row never written: nothing names it, it goes.
    const named = new Set(rows.map((row) => row.journal_id));
    for (const id of CdpJournal.list(engine)) {
      if (!named.has(id)) {
        service.logger.warn({ journal: id }, 'a journal no session names is deleted');
        void CdpJournal.open(engine, id).delete();
      }
    }
    engine.addVolumeGuard((name) => this.dependents(name));
    this.pointTimer = setInterval(() => {
      this.reconcile();
      this.markPoints();
    }, POINT_MS);
    this.pointTimer.unref();
    this.retentionTimer = setInterval(() => void this.retention(), RETENTION_MS);
    this.retentionTimer.unref();
  }

  private open(row: JournalRow): Feed {
    const engine = this.service.engine;
    const journal = CdpJournal.open(engine, row.journal_id);
    const volumes = new Map<string, number>();
    const names = new Map(engine.listVolumes().map((info) => [info.id, info.name]));
    for (const id of journal.meta.volumes) {
      const name = names.get(id);
      if (name !== undefined) volumes.set(name, id);
    }
    const session = this.service.sessions.get(row.session_id);
    const feed: Feed = { sessionId: row.session_id, journal, row, volumes, devices: new Map(), distributing: false, warnings: '', fencedAt: session ? resyncSince(session) : null };
    for (const [name, id] of volumes) feed.devices.set(name, new JournaledDevice(engine.device(name), journal, id, () => this.distribute(feed)));
    this.feeds.set(row.session_id, feed);
    // Records a crash left undistributed go to the replica now.
    this.distribute(feed);
    return feed;
  }

  // --- hooks of the replication paths ---

  /** The device replicated writes of a copy set reach here: its journal's when its session has one, else the volume. */
  replicaDevice(pair: HeldCopySet): BlockDevice {
    const name = localVolumeName(this.service.engine, pair);
    return this.feeds.get(pair.sessionId)?.devices.get(name) ?? this.service.engine.device(name);
  }

  /** An async round (or a multi-primary round) was applied here: a point at its time (this site's clock). */
  roundApplied(sessionId: string, timeMs: number): void {
    const feed = this.feeds.get(sessionId);
    if (!feed || feed.journal.meta.lastSeq === this.lastPointSeq(feed) || !this.consistent(feed)) return;
    feed.journal.markPoint({ timeMs }).catch((error) => this.service.logger.warn({ error: problemMessage(error) }, 'journal point failed'));
  }

  /**
   * The source started a new mirroring run (stream.fence: a start, a resume, a restart of either agent): the resync
   * that follows copies tracks in track order, so the replica is no consistent image until the session is duplex
   * again. The replica as it is now (what the earlier run left, a consistent image when the session was recoverable)
   * gets an automatic bookmark, `before-resync-TIME`; points stop until the source reports the session prepared.
   */
  async runFenced(session: SessionRecord): Promise<void> {
    const feed = this.feeds.get(session.id);
    // Snapshot shipping: a resync is the next cycle, committed whole, so every cycle stays a consistent image.
    if (!feed || session.type === 'snapshot-shipping') return;
    // A run started while an earlier one was still resyncing: the replica is no consistent image to bookmark.
    const mid = feed.fencedAt !== null;
    feed.fencedAt = Date.now();
    const newest = feed.journal.meta.points.at(-1);
    const marked = newest !== undefined && newest.seq === feed.journal.meta.lastSeq && newest.name?.startsWith('before-resync-') === true;
    if (mid || marked) return;
    const name = `before-resync-${new Date(feed.fencedAt).toISOString()}`;
    try {
      const point = await this.between(session, () => feed.journal.markPoint({ name }));
      this.event(session, 'session.bookmark', `session ${session.name}: bookmark ${name} at point ${point.seq} (automatic: the replica before a resync)`, {
        bookmark: name,
        seq: point.seq,
        timeMs: point.timeMs,
        automatic: 'before-resync',
      });
    } catch (error) {
      this.service.logger.warn({ error: problemMessage(error), session: session.name }, 'the bookmark before a resync failed');
    }
  }

  /** A point now is a consistent image: no mirroring run started since the source last reported the session prepared. */
  private consistent(feed: Feed): boolean {
    if (feed.fencedAt === null) return true;
    const session = this.service.sessions.get(feed.sessionId);
    if (!session || session.state !== 'prepared' || session.recoverable === false || Date.parse(session.updatedAt) < feed.fencedAt) return false;
    feed.fencedAt = null;
    return true;
  }

  private lastPointSeq(feed: Feed): number {
    const points = feed.journal.meta.points;
    return points.length > 0 ? points[points.length - 1].seq : -1;
  }

  /**
   * A journal whose session is gone here, or whose copy sets no longer name
   * its volumes (removed, or the session reversed so this site is its
   * source), ends: points and images go, the replica keeps every write.
   */
  private reconcile(): void {
    for (const feed of [...this.feeds.values()]) {
      let reason: string | null = null;
      let session: SessionRecord | null = null;
      try {
        session = this.service.session(feed.sessionId);
      } catch {
        reason = 'the session is gone';
      }
      if (session) {
        const held = new Set(this.service.pairsOf(session).map((pair) => pair.localVolume));
        const removed = [...feed.volumes.keys()].filter((volume) => !held.has(volume));
        if (removed.length > 0) reason = `copy set(s) of ${removed.join(', ')} were removed`;
        else if (this.service.role(session).source) reason = 'this site is now the source of the session';
      }
      if (reason === null) continue;
      this.feeds.delete(feed.sessionId);
      this.service.refreshTaps();
      for (const open of [...this.images.values()]) if (open.session === feed.sessionId) void open.image.close().then(() => this.images.delete(open.id));
      void feed.journal
        .delete()
        .then(() => {
          this.service.engine.catalog.db.prepare('DELETE FROM session_journals WHERE session_id = ?').run(feed.sessionId);
          this.service.engine.catalog.recordEvent('session.journal-disabled', 'warning', session?.name ?? feed.sessionId, `session ${session?.name ?? feed.sessionId}: journal ended (${reason}); its points and bookmarks are gone`, {
            reason,
          });
        })
        .catch((error) => this.service.logger.error({ error: problemMessage(error) }, 'a journal could not be deleted'));
    }
  }

  /** A point a second for journals that took records since their last point (sync and semi-sync: points at write granularity, coalesced). */
  private markPoints(): void {
    for (const feed of this.feeds.values()) {
      if (feed.journal.meta.lastSeq === this.lastPointSeq(feed)) continue;
      // Async: points only between rounds (roundApplied), never inside one.
      const type = this.service.sessions.get(feed.sessionId)?.type;
      if (type !== 'sync' && type !== 'semi-sync') continue;
      // During a resync: none (the replica is no consistent image until duplex).
      if (!this.consistent(feed)) continue;
      feed.journal.markPoint().catch((error) => this.service.logger.warn({ error: problemMessage(error) }, 'journal point failed'));
    }
  }

  /** Distribution follows the appends: one pass at a time, again while records wait. */
  private distribute(feed: Feed): void {
    if (feed.distributing || this.closed) return;
    feed.distributing = true;
    setImmediate(() => {
      feed.journal
        .distribute()
        .catch((error) => this.service.logger.warn({ error: problemMessage(error) }, 'journal distribution failed'))
        .finally(() => {
          feed.distributing = false;
          if (this.feeds.get(feed.sessionId) === feed && feed.journal.meta.pending.length > 0) this.distribute(feed);
        });
    });
  }

  private policy(row: JournalRow): RetentionPolicy {
    return { requiredWindowMs: row.required_window_ms, budgetBytes: row.budget_bytes, tiers: DEFAULT_TIERS, bookmarkMs: row.bookmark_ms ?? Infinity };
  }

  /** Retention of every journal, and an event when its warnings change. */
  async retention(): Promise<void> {
    for (const feed of [...this.feeds.values()]) {
      try {
        const result = await applyRetention(feed.journal, this.policy(feed.row));
        const session = this.service.session(feed.sessionId);
        if (result.droppedForSpace > 0) {
          this.service.engine.catalog.recordEvent(
            'session.journal-space',
            'warning',
            session.name,
            `session ${session.name}: the journal dropped its ${result.droppedForSpace} oldest point(s) to stay within ${feed.row.budget_bytes} bytes`,
            { dropped: result.droppedForSpace },
          );
        }
        const status = journalStatus(feed.journal, this.policy(feed.row));
        const key = status.warnings.map((warning) => `${warning.code}:${warning.level}`).join(',');
        if (key !== feed.warnings) {
          feed.warnings = key;
          const text = status.warnings.map((warning) => warning.message).join('; ');
          this.service.engine.catalog.recordEvent(
            'session.journal-warning',
            status.warnings.length > 0 ? 'warning' : 'info',
            session.name,
            status.warnings.length > 0 ? `session ${session.name}: ${text}` : `session ${session.name}: the journal warnings cleared`,
            { warnings: status.warnings.map(({ level, code }) => ({ level, code })) },
          );
        }
      } catch (error) {
        this.service.logger.warn({ error: problemMessage(error) }, 'journal retention failed');
      }
    }
  }

  /** The warnings of the session's journal now (alerts: journal-nearly-full, journal-window-short); undefined without one. */
  warnings(sessionId: string): Array<{ level: 'warning' | 'severe'; code: 'window-short' | 'nearly-full'; message: string }> | undefined {
    const feed = this.feeds.get(sessionId);
    if (!feed) return undefined;
    return journalStatus(feed.journal, this.policy(feed.row)).warnings.map(({ level, code, message }) => ({ level, code, message }));
  }

  // --- the volume guard ---

  private journalOf(volume: string): { feed: Feed; session: SessionRecord } | null {
    for (const feed of this.feeds.values()) {
      if (feed.volumes.has(volume) && this.service.engine.volumeIdOrNull(volume) === feed.volumes.get(volume)) {
        return { feed, session: this.service.session(feed.sessionId) };
      }
    }
    return null;
  }

  tapsFor(volume: string): WriteTap[] {
    const found = this.journalOf(volume);
    return found ? [new JournalGuardTap(volume, found.session.name)] : [];
  }

  private dependents(volume: string): VolumeDependent[] {
    const found = this.journalOf(volume);
    if (!found) return [];
    const name = found.session.name;
    return [
      {
        kind: 'cdp-journal',
        session: name,
        step: 'turn the journal of the session off',
        action: `tandem-agent journal off ${name} (its points and bookmarks go)`,
      },
    ];
  }

  // --- administration (API and CLI) ---

  /** The session, refused unless this agent is its secondary (where the journal is). */
  private secondarySession(name: string): SessionRecord {
    const session = this.service.session(name);
    if (!this.service.role(session).secondary) {
      const site = this.service.peers.records().find((peer) => peer.agentId === session.peerAgentId)?.site ?? session.peerAgentId;
      throw new ProblemError('invalid-state', `the journal of session ${session.name} is kept at its secondary agent (site ${site}); ask that agent`);
    }
    return session;
  }

  private feed(name: string): { feed: Feed; session: SessionRecord } {
    const session = this.secondarySession(name);
    const feed = this.feeds.get(session.id);
    if (!feed) throw new ProblemError('not-found', `session ${session.name} has no journal here; turn it on with tandem-agent journal set ${session.name}`);
    return { feed, session };
  }

  /** Turns the journal on (a new CdpJournal over the session's replica volumes here) or changes its policy. */
  async set(name: string, request: SetJournalRequest): Promise<JournalView> {
    const session = this.secondarySession(name);
    // Running H2 -> H1 (after a failback) this site is the source: there is no replica here to journal.
    if (!this.feeds.has(session.id) && this.service.role(session).source) {
      throw new ProblemError('invalid-state', `session ${session.name} runs ${session.direction} and this site is its source: a journal is kept at the secondary while it receives writes`);
    }
    const requiredMs = Math.round(request.requiredWindowSeconds * 1000);
    const bookmarkMs = request.bookmarkRetentionSeconds == null ? null : Math.round(request.bookmarkRetentionSeconds * 1000);
    const db = this.service.engine.catalog.db;
    const now = new Date().toISOString();
    const existing = this.feeds.get(session.id);
    if (existing) {
      db.prepare('UPDATE session_journals SET budget_bytes = ?, required_window_ms = ?, bookmark_ms = ?, updated_at = ? WHERE session_id = ?').run(
        request.budgetBytes,
        requiredMs,
        bookmarkMs,
        now,
        session.id,
      );
      existing.row = { ...existing.row, budget_bytes: request.budgetBytes, required_window_ms: requiredMs, bookmark_ms: bookmarkMs };
      this.event(session, 'session.journal-policy', `session ${session.name}: journal policy ${this.policyText(existing.row)}`, this.policyView(existing.row));
      return this.view(session.name);
    }
    const pairs = this.service.pairsOf(session);
    if (pairs.length === 0) throw new ProblemError('invalid-state', `session ${session.name} has no copy sets here: add them first`);
    const volumes = pairs.map((pair) => localVolumeName(this.service.engine, pair));
    const journal = await CdpJournal.create(this.service.engine, volumes);
    const row: JournalRow = { session_id: session.id, journal_id: journal.id, budget_bytes: request.budgetBytes, required_window_ms: requiredMs, bookmark_ms: bookmarkMs };
    try {
      db.prepare(
        'INSERT INTO session_journals (session_id, journal_id, budget_bytes, required_window_ms, bookmark_ms, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ).run(row.session_id, row.journal_id, row.budget_bytes, row.required_window_ms, row.bookmark_ms, now, now);
    } catch (error) {
      await journal.delete();
      throw error;
    }
    this.open(row);
    this.service.refreshTaps();
    // The first point: the replica as it is now, when it is a consistent image (else once the session is prepared).
    if (resyncSince(session) === null) await this.between(session, () => journal.markPoint());
    this.event(session, 'session.journal-enabled', `session ${session.name}: journal on over ${volumes.join(', ')}, ${this.policyText(row)}`, {
      volumes,
      ...this.policyView(row),
    });
    return this.view(session.name);
  }

  /** Turns the journal off: images end, what is left is distributed, every point and its space go. */
  async disable(name: string): Promise<void> {
    const { feed, session } = this.feed(name);
    for (const open of [...this.images.values()]) if (open.session === session.id) await this.closeImage(open, session);
    this.feeds.delete(session.id);
    this.service.refreshTaps();
    await feed.journal.delete();
    this.service.engine.catalog.db.prepare('DELETE FROM session_journals WHERE session_id = ?').run(session.id);
    this.event(session, 'session.journal-disabled', `session ${session.name}: journal off; its points and bookmarks are gone`, {});
  }

  view(name: string): JournalView {
    const { feed, session } = this.feed(name);
    const status = journalStatus(feed.journal, this.policy(feed.row));
    return {
      session: session.name,
      journal: feed.journal.id,
      volumes: [...feed.volumes.keys()],
      policy: this.policyView(feed.row),
      status: {
        usedBytes: status.usedBytes,
        budgetBytes: status.budgetBytes,
        pendingBytes: status.pendingBytes,
        pendingRecords: status.pendingRecords,
        pointCount: status.pointCount,
        bookmarkCount: status.bookmarkCount,
        oldestPoint: status.oldestPoint ? pointView(status.oldestPoint) : null,
        newestPoint: status.newestPoint ? pointView(status.newestPoint) : null,
        coveredWindowSeconds: status.coveredWindowMs / 1000,
        requiredWindowSeconds: status.requiredWindowMs / 1000,
        predictedWindowSeconds: Number.isFinite(status.predictedWindowMs) ? status.predictedWindowMs / 1000 : null,
        warnings: status.warnings.map(({ level, code, message }) => ({ level, code, message })),
      },
      images: this.imagesOf(session),
    };
  }

  /** A bookmark: a named point at every record received so far. */
  async bookmark(name: string, bookmark: string): Promise<JournalPoint> {
    const { feed, session } = this.feed(name);
    if (feed.journal.meta.points.some((point) => point.name === bookmark)) {
      throw new ProblemError('already-exists', `session ${session.name} already has a bookmark ${JSON.stringify(bookmark)}`);
    }
    const point = await this.between(session, () => feed.journal.markPoint({ name: bookmark }));
    this.event(session, 'session.bookmark', `session ${session.name}: bookmark ${bookmark} at point ${point.seq}`, { bookmark, seq: point.seq, timeMs: point.timeMs });
    return pointView(point);
  }

  /**
   * Runs `work` where a point is consistent: async sessions between two applied rounds, snapshot shipping between two
   * applied cycles (the applier's or the receiver's queue held meanwhile).
   */
  private async between<T>(session: SessionRecord, work: () => Promise<T>): Promise<T> {
    if (session.type !== 'async' && session.type !== 'snapshot-shipping') return work();
    const release = await (session.type === 'async' ? this.service.applier.freeze(session.id) : this.service.receiver.freeze(session.id));
    try {
      return await work();
    } finally {
      release();
    }
  }

  /** The points, the last of each `everyMs` and every bookmark. */
  points(name: string, everyMs: number): { session: string; points: JournalPoint[] } {
    const { feed, session } = this.feed(name);
    const points = everyMs > 0 ? coalescePoints(feed.journal.points(), everyMs) : feed.journal.points();
    return { session: session.name, points: points.map(pointView) };
  }

  // --- recover (failover) ---

  /**
   * Checked before a recover changes anything: a point needs a journal here, and it must exist; an image in use by
   * NBD clients keeps the recover from running (it would end under them).
   */
  checkRecover(session: SessionRecord, request: JournalPointRequest): void {
    const named = request.bookmark !== undefined || request.at !== undefined || request.seq !== undefined;
    const feed = this.feeds.get(session.id);
    if (!feed) {
      if (named) throw new ProblemError('not-found', `session ${session.name} has no journal here: recover it without a point (its newest image)`);
      return;
    }
    if (named) this.pointOf(feed, session, request);
    if (named && this.service.role(session).controlsMembers) {
      throw new ProblemError('not-supported', `session ${session.name} has other primary agents here: their volumes have no journal to roll back with; recover it without a point`);
    }
    const busy = [...this.images.values()].filter((open) => open.session === session.id && [...open.devices.values()].some(({ device }) => device.openCount > 0));
    if (busy.length > 0) {
      throw new ProblemError('volume-busy', `session ${session.name} has image access in use by NBD clients (image ${busy.map((open) => open.id).join(', ')}); disconnect them and end it first`);
    }
  }

  /**
   * A recover at this site: the replica takes host writes from now on, so the journal ends (its points and images
   * go, as a failover in RecoverPoint erases the copy journal). With a point, the replica volumes are first rolled
   * back to it: each track written after the point gets its content of the point back (read through an image of the
   * journal, written to the replica) and is passed to `changed` before the journal goes, so the failback copies it
   * to H1 (it differs there now). A crash before the end repeats it all: the journal is deleted last.
   */
  async recoverAt(
    session: SessionRecord,
    request: JournalPointRequest,
    changed: (volume: string, tracks: number[]) => Promise<void>,
  ): Promise<{ point: JournalPoint | null; rolledTracks: number } | null> {
    const feed = this.feeds.get(session.id);
    if (!feed) return null;
    const journal = feed.journal;
    // Everything received is in the replica first (the newest image).
    while (journal.meta.pending.length > 0) {
      if ((await journal.distribute()) === 0 && journal.meta.pending.length > 0) {
        throw new ProblemError('internal-error', `session ${session.name}: the journal's last records could not be distributed; the recover can be run again`);
      }
    }
    const named = request.bookmark !== undefined || request.at !== undefined || request.seq !== undefined;
    const point = named ? this.pointOf(feed, session, request) : null;
    let rolledTracks = 0;
    if (point && point.seq < journal.meta.lastSeq) {
      const image = journal.openImage(point.seq);
      try {
        for (const [volume, volumeId] of feed.volumes) {
          const tracks = [...(journal.meta.byTrack.get(volumeId)?.entries() ?? [])]
            .filter(([, entries]) => entries.length > 0 && entries[entries.length - 1].seq > point.seq)
            .map(([track]) => track)
            .sort((a, b) => a - b);
          await this.rollBack(image, volumeId, this.service.engine.device(volume), tracks);
          await changed(volume, tracks);
          rolledTracks += tracks.length;
        }
      } finally {
        await image.close();
      }
    }
    for (const open of [...this.images.values()]) if (open.session === session.id) await this.closeImage(open, session);
    this.feeds.delete(session.id);
    this.service.refreshTaps();
    await journal.delete();
    this.service.engine.catalog.db.prepare('DELETE FROM session_journals WHERE session_id = ?').run(session.id);
    const where = point ? `rolled back to point ${point.seq}${point.name ? ` (bookmark ${point.name})` : ''} of ${new Date(point.timeMs).toISOString()}, ${rolledTracks} track(s) restored` : 'kept the newest image';
    this.service.engine.catalog.recordEvent(
      'session.journal-disabled',
      'warning',
      session.name,
      `session ${session.name}: recovered here, the replica ${where}; the journal ended (the replica takes host writes now), its points and bookmarks are gone`,
      { reason: 'recovered', seq: point?.seq ?? null, bookmark: point?.name ?? null, rolledTracks },
    );
    return { point: point ? pointView(point) : null, rolledTracks };
  }

  /** Writes each track's content at the image's point to the replica (an empty track there: trimmed), a few at a time. */
  private async rollBack(image: ImageAccess, volumeId: number, replica: BlockDevice, tracks: number[]): Promise<void> {
    const trackSize = image.trackSize;
    const size = replica.sizeBytes;
    let next = 0;
    const worker = async () => {
      const buffer = Buffer.alloc(trackSize);
      while (next < tracks.length) {
        const track = tracks[next++];
        const offset = track * trackSize;
        const length = Math.min(trackSize, size - offset);
        if (image.extentOf(volumeId, track) === NO_EXTENT) await replica.trim(offset, length);
        else {
          const data = buffer.subarray(0, length);
          await image.read(volumeId, offset, data);
          await replica.write(offset, data);
        }
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    await replica.flush();
  }

  // --- image access ---

  /** Instant image access at a bookmark, a time or a point: one read-write NBD export per replica volume. */
  openImage(name: string, request: ImageAccessRequest): ImageAccessInfo {
    const { feed, session } = this.feed(name);
    const point = this.pointOf(feed, session, request);
    const image = feed.journal.openImage(point.seq);
    const id = this.nextImage++;
    const devices = new Map<string, { volume: string; device: ImageDevice }>();
    for (const [volume, volumeId] of feed.volumes) {
      const exportName = `image-${id}-${volume}`;
      if (this.service.engine.volumeIdOrNull(exportName) !== null) {
        void image.close();
        throw new ProblemError('already-exists', `a volume named ${exportName} exists: the image cannot be exported under that name`);
      }
      devices.set(exportName, { volume, device: new ImageDevice(image, volumeId, exportName) });
    }
    const open: OpenImage = { id, session: session.id, image, point: { ...point }, openedAt: new Date().toISOString(), devices };
    this.images.set(id, open);
    const info = this.imageView(open, session);
    this.event(
      session,
      'session.image-opened',
      `session ${session.name}: image ${id} at point ${point.seq}${point.name ? ` (bookmark ${point.name})` : ''} of ${info.point.time}, exported as ${info.exports.map((each) => each.export).join(', ')}`,
      { image: id, seq: point.seq, bookmark: point.name, exports: info.exports },
    );
    return info;
  }

  /** Ends image access: its exports go, its writes are discarded. */
  async endImage(name: string, id: number): Promise<void> {
    const session = this.secondarySession(name);
    const open = this.images.get(id);
    if (!open || open.session !== session.id) throw new ProblemError('not-found', `session ${session.name} has no open image ${id}`);
    const busy = [...open.devices.entries()].filter(([, { device }]) => device.openCount > 0);
    if (busy.length > 0) {
      throw new ProblemError('volume-busy', `image ${id} is open by NBD clients on ${busy.map(([exportName]) => exportName).join(', ')}; disconnect them first`);
    }
    await this.closeImage(open, session);
  }

  private async closeImage(open: OpenImage, session: SessionRecord): Promise<void> {
    const written = open.image.writtenBytes;
    this.images.delete(open.id);
    await open.image.close();
    this.event(session, 'session.image-ended', `session ${session.name}: image ${open.id} ended (${written} bytes written to it discarded)`, {
      image: open.id,
      discardedBytes: written,
    });
  }

  imagesOf(session: SessionRecord): ImageAccessInfo[] {
    return [...this.images.values()].filter((open) => open.session === session.id).map((open) => this.imageView(open, session));
  }

  listImages(name: string): ImageAccessInfo[] {
    return this.imagesOf(this.secondarySession(name));
  }

  private imageView(open: OpenImage, session: SessionRecord): ImageAccessInfo {
    return {
      id: open.id,
      session: session.name,
      point: pointView(open.point),
      openedAt: open.openedAt,
      exports: [...open.devices.entries()].map(([exportName, { volume }]) => ({ volume, export: exportName })),
      writtenBytes: open.image.writtenBytes,
    };
  }

  /** The NBD listener's view: image exports first, then `base`. */
  exports(base: ExportCatalog): ExportCatalog {
    const find = (name: string): ImageDevice | undefined => {
      for (const open of this.images.values()) {
        const found = open.devices.get(name);
        if (found) return found.device;
      }
      return undefined;
    };
    return {
      listExports: () => [
        ...[...this.images.values()].flatMap((open) =>
          [...open.devices.entries()].map(([exportName, { volume }]) => ({
            name: exportName,
            description: `image of ${volume} at point ${open.point.seq}${open.point.name ? ` (bookmark ${open.point.name})` : ''}, writes discarded at the end`,
          })),
        ),
        ...base.listExports(),
      ],
      openExport: (name: string) => find(name) ?? base.openExport(name),
    };
  }

  // --- helpers ---

  /** The point a request names: the last bookmark of that name, the newest point at or before a time, or a seq. */
  private pointOf(feed: Feed, session: SessionRecord, request: JournalPointRequest): CdpPoint {
    const points = feed.journal.meta.points;
    let point: CdpPoint | undefined;
    if (request.bookmark !== undefined) {
      point = points.findLast((each) => each.name === request.bookmark);
      if (!point) throw new ProblemError('not-found', `session ${session.name} has no bookmark ${JSON.stringify(request.bookmark)}`);
    } else if (request.at !== undefined) {
      const at = Date.parse(request.at);
      point = points.findLast((each) => each.timeMs <= at);
      if (!point) throw new ProblemError('out-of-range', `session ${session.name} has no point at or before ${request.at} (its oldest: ${points[0] ? new Date(points[0].timeMs).toISOString() : 'none'})`);
    } else {
      point = points.find((each) => each.seq === request.seq);
      if (!point) throw new ProblemError('not-found', `session ${session.name} has no point ${request.seq}`);
    }
    return point;
  }

  private policyView(row: JournalRow): JournalPolicy {
    return {
      budgetBytes: row.budget_bytes,
      requiredWindowSeconds: row.required_window_ms / 1000,
      bookmarkRetentionSeconds: row.bookmark_ms === null ? null : row.bookmark_ms / 1000,
    };
  }

  private policyText(row: JournalRow): string {
    return `${row.budget_bytes} bytes, window ${row.required_window_ms / 1000} s required, bookmarks kept ${row.bookmark_ms === null ? 'until space runs out' : `${row.bookmark_ms / 1000} s`}`;
  }

  private event(session: SessionRecord, type: string, message: string, data: Record<string, unknown>): void {
    this.service.engine.catalog.recordEvent(type, 'info', session.name, message, data);
  }

  /** Stops the timers and closes open images; what is appended stays (durable), distribution resumes at the next start. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.pointTimer);
    clearInterval(this.retentionTimer);
    for (const open of [...this.images.values()]) await open.image.close();
    this.images.clear();
    await Promise.all([...this.feeds.values()].map((feed) => feed.journal.flush().catch(() => {})));
  }
}

/**
 * Where a journal opens (a start, or the journal turned on): the replica is a consistent image when the session here
 * is prepared, or suspended from a consistent state; else (an initial copy or a resync under way) no point is made
 * until the source reports the session prepared (the time returned: like a run fenced now).
 */
function resyncSince(session: SessionRecord): number | null {
  // Snapshot shipping: the replica only ever holds whole committed cycles.
  if (session.type === 'snapshot-shipping') return null;
  const consistent = session.state === 'prepared' || (session.state === 'suspended' && session.recoverable !== false);
  return consistent ? null : Date.now();
}

function pointView(point: CdpPoint): JournalPoint {
  return { seq: point.seq, time: new Date(point.timeMs).toISOString(), timeMs: point.timeMs, bookmark: point.name };
}
