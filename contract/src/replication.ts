import { z } from 'zod';
import { ProblemSchema } from './problems.ts';
import { VolumeNameSchema } from './volumes.ts';

/**
 * Another agent's clock as this one measured it over its peer link
 * (heartbeats carry both clocks; the sample with the shortest round trip):
 * `offsetMs` is the other clock minus this agent's (positive: it runs
 * ahead), right to within `rttMs / 2`; `measuredAt` in this agent's clock.
 * Times the other agent stamps (cut times, shipped cycles, suspensions) are
 * read in this agent's clock with it, so consistency times and exposure are
 * honest across clocks that differ.
 */
export const ClockSkewSchema = z.object({ offsetMs: z.number(), rttMs: z.number(), measuredAt: z.string() });
export type ClockSkew = z.infer<typeof ClockSkewSchema>;

/** A paired site as this agent knows it. */
export const PeerInfoSchema = z.object({
  agentId: z.string(),
  site: z.string(),
  linkAddress: z.string(),
  apiAddress: z.string().nullable(),
  caFingerprint: z.string(),
  pairedAt: z.string(),
  link: z.enum(['connected', 'connecting', 'down']),
  /** Why the link is refused (`peer-version`: the sites speak different major versions of the peer protocol), null otherwise. */
  linkProblem: ProblemSchema.nullable().optional(),
  /** The site's clock minus this agent's, ms, as measured over the peer link (`ClockSkewSchema`); null before a measurement. */
  clock: ClockSkewSchema.nullable().optional(),
});
export type PeerInfo = z.infer<typeof PeerInfoSchema>;
export const PeerListSchema = z.object({ peers: z.array(PeerInfoSchema) });

/**
 * Pair this agent with another: the other agent's API address and a
 * pairing token printed there by `tandem-agent token`. The fingerprint, when
 * given, must match the other agent's API certificate.
 */
export const PairSiteRequestSchema = z.object({
  apiAddress: z.string().min(3),
  token: z.string().min(1),
  fingerprint: z.string().optional(),
});
export type PairSiteRequest = z.infer<typeof PairSiteRequestSchema>;

/** Agent-to-agent: sent by the initiating agent to the other's /v1/peers/accept. */
export const PeerAcceptRequestSchema = z.object({
  token: z.string().min(1),
  agentId: z.string().min(1),
  site: z.string().min(1),
  caCertificate: z.string().min(1),
  linkAddress: z.string().min(3),
  apiAddress: z.string().min(3),
});
export type PeerAcceptRequest = z.infer<typeof PeerAcceptRequestSchema>;
export const PeerAcceptResponseSchema = z.object({
  agentId: z.string(),
  site: z.string(),
  caCertificate: z.string(),
  linkAddress: z.string(),
});
export type PeerAcceptResponse = z.infer<typeof PeerAcceptResponseSchema>;

export const SessionTypeSchema = z.enum(['sync', 'semi-sync', 'async', 'snapshot-shipping']);
export type SessionType = z.infer<typeof SessionTypeSchema>;

export const SessionStateSchema = z.enum([
  'defined',
  'preparing',
  'prepared',
  'suspending',
  'suspended',
  'recovering',
  'target-available',
]);
export type SessionState = z.infer<typeof SessionStateSchema>;

/** h1-h2: the site where the session was defined is the source. */
export const DirectionSchema = z.enum(['h1-h2', 'h2-h1']);
export type Direction = z.infer<typeof DirectionSchema>;

export const SessionHealthSchema = z.enum(['normal', 'warning', 'severe', 'inactive']);
export type SessionHealth = z.infer<typeof SessionHealthSchema>;

export const PairStateSchema = z.enum(['defined', 'connecting', 'syncing', 'duplex', 'suspended', 'failed', 'target-available']);
export type PairState = z.infer<typeof PairStateSchema>;

export const PairInfoSchema = z.object({
  id: z.string(),
  h1Volume: z.string(),
  h2Volume: z.string(),
  state: PairStateSchema,
  /**
   * Why the pair is suspended or failed. `failed`: the copy set is broken,
   * its volume at one site deleted (perhaps made again under its name, which
   * is then another volume: copy sets hold volumes by id); it mirrors nothing
   * until removed from the session (PROTOCOL.md, *Copy sets hold volumes by id*).
   */
  reason: z.string().nullable(),
  /** A broken (`failed`) copy set: since when this agent knows it (ISO). */
  brokenSince: z.string().nullable().optional(),
  /**
   * The id (`VolumeInfo.id`) of the copy set's volume at the reporting site:
   * copy sets hold volumes by this immutable id, never by name alone. Null for
   * a copy set whose volume was already gone when its catalog learned ids.
   */
  localVolumeId: z.number().int().nullable().optional(),
  /** Tracks that may differ, as the source knows them. */
  outOfSyncTracks: z.number(),
  /** Tracks written at the target since it became writable (after failover). */
  targetChangedTracks: z.number(),
  trackCount: z.number(),
  /** Bytes per track at this site (tracks shown with bytes: tracks x trackSize). */
  trackSize: z.number(),
  /** While syncing: share of the data to copy that is copied, 0..100 (by bytes; unallocated tracks move no data). */
  syncedPercent: z.number().nullable(),
  /**
   * While syncing: the data the copy moves (allocated bytes of the tracks it
   * copies; an unallocated track is a trim) and the bytes moved so far
   * (tracks copied again because a host write changed them meanwhile count
   * again). Null otherwise.
   */
  copyBytes: z.object({ total: z.number(), done: z.number() }).nullable().optional(),
  etaSeconds: z.number().nullable(),
  /**
   * Multi-primary async sessions: the site whose agent holds the primary
   * (H1) volume, when it is not the session's H1 site (the control agent). Absent
   * for copy sets whose primary is the session's own H1 site.
   */
  primarySite: z.string().optional(),
  /**
   * At the target (H2) of a copy set whose initial copy (added to a running
   * session) has not completed, before and after a recover: false, its volume
   * there is no consistent image (`inconsistentReason` says why). Absent otherwise.
   */
  consistent: z.boolean().optional(),
  inconsistentReason: z.string().optional(),
});
export type PairInfo = z.infer<typeof PairInfoSchema>;

/** Snapshot shipping: the time between cycles, seconds (0.1 s .. 1 day). */
export const ShipIntervalSecondsSchema = z.number().min(0.1).max(86_400);

/** One copy set's part of the last verify (`LastVerify.pairs`). */
export const LastVerifyPairSchema = z.object({
  pair: z.string(),
  h1Volume: z.string(),
  h2Volume: z.string(),
  /** The site holding the copy set's H1 volume (multi-primary sessions: the control agent or a member). */
  primarySite: z.string().optional(),
  comparedTracks: z.number(),
  differingTracks: z.number(),
  unverifiedTracks: z.number(),
});
export type LastVerifyPair = z.infer<typeof LastVerifyPairSchema>;

/** The last online verify by segment codes the session's source ran (on request, or by itself after a failback). */
export const LastVerifySchema = z.object({
  startedAt: z.string(),
  finishedAt: z.string(),
  /** `failback`: the agent verified by itself when a failback reached Prepared; `request`: `session verify`. */
  trigger: z.enum(['failback', 'request']),
  comparedTracks: z.number(),
  differingTracks: z.number(),
  unverifiedTracks: z.number(),
  /** No track differed and none was left unverified. */
  ok: z.boolean(),
  /** Differing tracks were marked and a resync copying them started. */
  resyncStarted: z.boolean(),
  /** Per copy set (absent in results recorded before agents reported it). */
  pairs: z.array(LastVerifyPairSchema).optional(),
});
export type LastVerify = z.infer<typeof LastVerifySchema>;

/**
 * Another agent of the session as the reporting agent sees it over its own
 * peer link (it dials every agent it shares a started session with, with
 * heartbeats every second): the other side of the mirror, or a multi-primary
 * session's other primary agents.
 */

export const SessionPeerSchema = z.object({
  site: z.string(),
  /** Its part in the session's current direction: it sends data (`source`) or receives it (`target`). */
  role: z.enum(['source', 'target']),
  link: z.enum(['connected', 'connecting', 'down']),
  /** Since when the link is in this state (ISO; null before the first dial). */
  since: z.string().nullable(),
  /** Since when it has not been reachable (ISO, the moment the link was last lost); null while connected. */
  unreachableSince: z.string().nullable(),
  /** Its clock as measured over the link (null before the first measurement; older agents do not report it). */
  clock: ClockSkewSchema.nullable().optional(),
});
export type SessionPeer = z.infer<typeof SessionPeerSchema>;

export const SessionInfoSchema = z.object({
  id: z.string(),
  name: z.string(),
  type: SessionTypeSchema,
  state: SessionStateSchema,
  health: SessionHealthSchema,
  direction: DirectionSchema,
  recoverable: z.boolean(),
  /** This agent's role in the session. */
  role: z.enum(['h1', 'h2']),
  h1Site: z.string(),
  h2Site: z.string(),
  /** The instant the targets hold a consistent image of (ISO time), null when none. */
  consistencyTime: z.string().nullable(),
  /** How far the targets lag the sources, seconds. */
  exposureSeconds: z.number().nullable(),
  detail: z.string().nullable(),
  pairs: z.array(PairInfoSchema),
  /** Snapshot-shipping sessions: the time between cycles in effect, seconds (null for other types). */
  shipIntervalSeconds: z.number().nullable().optional(),
  /** The last online verify (null before the first). */
  lastVerify: LastVerifySchema.nullable().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  /** When the reporting agent composed this view (its clock): every figure here is as of then. */
  observedAt: z.string(),
  /** Which site executed the transition `state` reflects (this one, or the other site that reported it), and when this agent learned it. */
  stateFrom: z.object({ site: z.string(), at: z.string() }),
  /** The other agents of the session as this one sees them (reachable or not, since when). */
  peers: z.array(SessionPeerSchema),
});
export type SessionInfo = z.infer<typeof SessionInfoSchema>;
export const SessionListSchema = z.object({ sessions: z.array(SessionInfoSchema) });

export const SessionNameSchema = VolumeNameSchema;

export const CreateSessionRequestSchema = z.object({
  name: SessionNameSchema,
  type: SessionTypeSchema,
  /** The other site: its site name or agent id (it must be paired). */
  peer: z.string().min(1),
  /** Snapshot-shipping sessions only: the time between cycles (default 30 s, or the agent's TANDEM_SHIP_INTERVAL_MS). */
  shipIntervalSeconds: ShipIntervalSecondsSchema.optional(),
});
export type CreateSessionRequest = z.infer<typeof CreateSessionRequestSchema>;

/** `PATCH /v1/sessions/:name`: settings changeable while the session runs (both sites learn them). */
export const UpdateSessionRequestSchema = z
  .object({
    /** Snapshot-shipping sessions only; a running source counts the new interval from now. */
    shipIntervalSeconds: ShipIntervalSecondsSchema.optional(),
  })
  .strict();
export type UpdateSessionRequest = z.infer<typeof UpdateSessionRequestSchema>;

/** `POST /v1/sessions/:name/ship-now`: one snapshot-shipping cycle, committed at the target. */
export const ShipCycleReportSchema = z.object({
  session: z.string(),
  cycle: z.number(),
  /** The cycle's snapshot instant (ISO): the target now holds every copy set's image as of it (the consistency time). */
  time: z.string(),
  tracks: z.number(),
  bytesSent: z.number(),
  durationMs: z.number(),
});
export type ShipCycleReport = z.infer<typeof ShipCycleReportSchema>;

/**
 * `GET /v1/sessions/:name/pairs/:pair/bitmap?which=out-of-sync|target-changed`:
 * the raw track bitmap a copy set keeps at this site, exact (one run per
 * stretch of set bits). The out-of-sync bitmap is kept at the copy set's
 * source: every set track may differ from the other site; a track not set
 * holds, durably at the other site, what it holds here (PROTOCOL.md, "No
 * write left behind"). It also counts tracks set only because a change of
 * them is on its way (`markedTracks` >= the pair's `outOfSyncTracks`).
 */
export const PairBitmapSchema = z.object({
  session: z.string(),
  pair: z.string(),
  h1Volume: z.string(),
  h2Volume: z.string(),
  which: z.enum(['out-of-sync', 'target-changed']),
  /** False when this site keeps no such bitmap for the copy set (defined session, or not its source). */
  kept: z.boolean(),
  trackCount: z.number(),
  markedTracks: z.number(),
  /** `[firstTrack, count]` per run of set bits, ascending. */
  runs: z.array(z.tuple([z.number(), z.number()])),
});
export type PairBitmap = z.infer<typeof PairBitmapSchema>;
export const PairBitmapQuerySchema = z.object({ which: z.enum(['out-of-sync', 'target-changed']).default('out-of-sync') });

export const AddPairRequestSchema = z.object({
  h1Volume: VolumeNameSchema,
  h2Volume: VolumeNameSchema,
  /**
   * Multi-primary async sessions: the paired agent (site name or agent id)
   * that owns `h1Volume`, when it is not this agent (the session's control agent).
   * That agent must be paired with this one and with the session's
   * secondary site. Only async sessions take such copy sets (`not-supported`
   * otherwise).
   */
  primaryAgent: z.string().min(1).optional(),
});
export type AddPairRequest = z.infer<typeof AddPairRequestSchema>;

/** Query of `DELETE /v1/sessions/:name/pairs/:volume`. */
export const RemovePairQuerySchema = z.object({
  /**
   * Multi-primary sessions: the site (or agent id) holding the H1 volume of
   * the copy set to remove. Needed when volumes of that name at several
   * primary agents are copy sets of the session (`conflict` without it).
   */
  primaryAgent: z.string().min(1).optional(),
});
export type RemovePairQuery = z.infer<typeof RemovePairQuerySchema>;

export const SessionActionSchema = z.enum(['start', 'suspend', 'resume', 'recover', 'failback', 'terminate']);
export type SessionAction = z.infer<typeof SessionActionSchema>;

/** What failback would copy, reported before anything moves. */
export const FailbackPreflightSchema = z.object({
  session: z.string(),
  pairs: z.array(
    z.object({
      pair: z.string(),
      /** Tracks written at the production site since failover. */
      targetChangedTracks: z.number(),
      /** Tracks written at the original source that never reached the other site. */
      outOfSyncTracks: z.number(),
      /** The union of both: what a copy by bitmaps would move. */
      candidateTracks: z.number(),
      /** Of those, tracks whose segment codes differ (null without code verification). */
      differingTracks: z.number().nullable(),
      /** Codes that had to be computed (invalid ones) to answer. */
      codesComputed: z.number(),
      /** The copy set's H1 volume. */
      h1Volume: z.string().optional(),
      /** Multi-primary sessions: the site holding the copy set's H1 volume when it is not the session's H1 site. */
      primarySite: z.string().optional(),
      /** What this copy set's failback copies: tracks, bytes and estimated seconds. */
      tracksToCopy: z.number().optional(),
      bytesToCopy: z.number().optional(),
      estimatedSeconds: z.number().optional(),
    }),
  ),
  tracksToCopy: z.number(),
  bytesToCopy: z.number(),
  estimatedSeconds: z.number(),
  verifyCodes: z.boolean(),
  fullCompare: z.boolean(),
});
export type FailbackPreflight = z.infer<typeof FailbackPreflightSchema>;

export const FailbackOptionsSchema = z.object({
  verifyCodes: z.boolean().default(true),
  fullCompare: z.boolean().default(false),
});
export type FailbackOptions = z.infer<typeof FailbackOptionsSchema>;

/**
 * `POST /v1/sessions/:name/actions/:action`: a failback's planning options; a recover of a session whose secondary
 * keeps a journal may name the point to recover at (one of a bookmark, a time: the newest point at or before it, or
 * a point's seq). Without one a recover keeps the newest image.
 */
export const SessionActionOptionsSchema = z
  .object({
    verifyCodes: z.boolean().optional(),
    fullCompare: z.boolean().optional(),
    bookmark: z.string().min(1).max(200).optional(),
    at: z.string().datetime({ offset: true }).optional(),
    seq: z.number().int().min(0).optional(),
  })
  .refine((body) => [body.bookmark, body.at, body.seq].filter((value) => value !== undefined).length <= 1, {
    message: 'give at most one of bookmark, at or seq',
  });
export type SessionActionOptions = z.infer<typeof SessionActionOptionsSchema>;

/** Track numbers listed per pair in a verify report (the counts are always complete). */
export const VERIFY_LISTED_TRACKS = 4096;

/** One pair of an online verify: segment codes compared at both sites, track by track. */
export const VerifyPairReportSchema = z.object({
  pair: z.string(),
  h1Volume: z.string(),
  h2Volume: z.string(),
  /** The site holding the copy set's H1 volume (multi-primary sessions: the control agent or a member). */
  primarySite: z.string().optional(),
  trackCount: z.number(),
  /** Tracks whose codes were compared with no write in flight or landing meanwhile. */
  comparedTracks: z.number(),
  /** Of those, tracks whose codes differ: real differences, marked out-of-sync. */
  differingCount: z.number(),
  /** Their track numbers, ascending (the first VERIFY_LISTED_TRACKS). */
  differingTracks: z.array(z.number()),
  /** Tracks compared again because host writes or copies touched them during a compare. */
  recheckedTracks: z.number(),
  /** Tracks kept busy by writes through every re-check: neither reported differing nor verified. */
  unverifiedCount: z.number(),
  unverifiedTracks: z.array(z.number()),
  /** Codes that had to be computed (invalid ones), at both sites. */
  codesComputed: z.number(),
});
export type VerifyPairReport = z.infer<typeof VerifyPairReportSchema>;

/** The report of `POST /v1/sessions/:name/verify` (`tandem-agent session verify`). */
export const VerifyReportSchema = z.object({
  session: z.string(),
  startedAt: z.string(),
  finishedAt: z.string(),
  pairs: z.array(VerifyPairReportSchema),
  comparedTracks: z.number(),
  differingTracks: z.number(),
  unverifiedTracks: z.number(),
  /** Differing tracks were marked out-of-sync and a resync copying them started. */
  resyncStarted: z.boolean(),
});
export type VerifyReport = z.infer<typeof VerifyReportSchema>;

/** One copy set's part of a `session.synced` event: what its resync (after a start, resume or failback) copied. */
export const SessionSyncedPairSchema = z.object({
  pair: z.string(),
  h1Volume: z.string(),
  h2Volume: z.string(),
  /** The site holding the copy set's H1 volume (multi-primary sessions: the control agent or a member). */
  primarySite: z.string().optional(),
  copiedTracks: z.number(),
  /** Of `copiedTracks`, copies made again because a host write changed the track while it was being copied. */
  recopiedTracks: z.number().optional(),
  bytesSent: z.number(),
});
export type SessionSyncedPair = z.infer<typeof SessionSyncedPairSchema>;

/**
 * The data of the event `session.synced`: the resync of the session's copy
 * sets at the recording site completed (a failback's copy, a resume, a
 * start). Totals, and per copy set (`pairs`, absent for a snapshot-shipping
 * session's first cycle and in events of older agents).
 */
export const SessionSyncedSchema = z.object({
  copiedTracks: z.number(),
  /** Of `copiedTracks`, copies made again because a host write changed the track while it was being copied. */
  recopiedTracks: z.number().optional(),
  bytesSent: z.number(),
  pairs: z.array(SessionSyncedPairSchema).optional(),
});
export type SessionSynced = z.infer<typeof SessionSyncedSchema>;
