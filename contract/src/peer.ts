import { z } from 'zod';
import { ClusterHistorySchema } from './clusters.ts';
import { FlashOptionsSchema } from './flash.ts';
import {
  DirectionSchema,
  FailbackPreflightSchema,
  LastVerifySchema,
  SessionActionSchema,
  SessionHealthSchema,
  SessionStateSchema,
  SessionTypeSchema,
  VerifyReportSchema,
} from './replication.ts';

/**
 * The peer protocol: every request one agent sends another over the peer
 * link (contract/PROTOCOL.md, "Peer link"), with the schema of its
 * parameters and of its result, and whether a binary payload travels with
 * the request or the answer. Payloads are never in the JSON: they are the
 * frame's bytes after the metadata (track data, bitmaps, segment codes),
 * described here only as `none`, `optional` or `required`.
 *
 * A receiving agent parses every request's parameters with its schema
 * before any handler runs: an unknown method is answered `not-supported`,
 * parameters that do not match (or a payload missing or unexpected) are
 * answered `bad-request` naming the method and the field. Neither ends the
 * connection.
 *
 * Parsing keeps only the fields a schema lists (records exchanged whole,
 * sessions and copy sets, list every field they have): a field a newer
 * minor version adds is dropped by an older receiver, so it must be one an
 * older agent can do without. A change that an older agent of the same
 * major version could not serve needs a new major version
 * (PEER_PROTOCOL_VERSION).
 */

/**
 * `major.minor`. Agents whose major versions differ refuse each other at
 * the link handshake (`peer.hello`, problem `peer-version`); a minor
 * version only adds optional fields or methods an older agent answers
 * `not-supported`.
 */
export const PEER_PROTOCOL_VERSION = '2.1';

export const PeerProtocolVersionSchema = z.string().regex(/^\d{1,6}\.\d{1,6}$/, 'a peer protocol version is major.minor');

/** The major version of a `major.minor` peer protocol version. */
export function peerProtocolMajor(version: string): number {
  return Number(version.split('.')[0]);
}

// --- building blocks ---

/** An id, name or run token: a non-empty string (bounded, as everything arriving from the wire). */
const Id = z.string().min(1).max(1024);
/** A mirroring run or an epoch: a token its sender made (compared, never looked up; an empty one matches nothing). */
const Token = z.string().max(1024);
/** A non-negative safe integer (offsets, lengths, track numbers, rounds, times in ms). */
const Count = z.int().nonnegative();
/** A list of track numbers. */
const Tracks = z.array(Count).max(16 * 1024 * 1024);
const Empty = z.object({});
/** Nothing comes back but success. */
const NoResult = z.null().or(z.undefined()).or(Empty);

/** A session as both sites keep it (agents/src/replication/session-store.ts). */
export const PeerSessionRecordSchema = z.object({
  id: Id,
  name: z.string().min(1),
  type: SessionTypeSchema,
  controlAgentId: Id,
  peerAgentId: Id,
  state: SessionStateSchema,
  direction: DirectionSchema,
  recoverable: z.boolean(),
  detail: z.string().nullable(),
  consistencyTime: z.string().nullable(),
  shipIntervalMs: z.number().nullable().optional(),
  lastVerify: LastVerifySchema.nullable().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type PeerSessionRecord = z.infer<typeof PeerSessionRecordSchema>;

/** A copy set as the sending site describes it to the other (its `local*` fields are the receiver's), with its agents (the holders of its H1 and H2 volumes). */
export const PeerPairRecordSchema = z.object({
  id: Id,
  sessionId: Id,
  primaryAgentId: Id,
  secondaryAgentId: Id,
  h1Volume: z.string().min(1),
  h2Volume: z.string().min(1),
  localVolume: z.string().min(1),
  localVolumeId: z.int().nullable(),
  localSite: z.enum(['h1', 'h2']),
  outOfSyncBitmap: z.int().nullable(),
  targetChangedBitmap: z.int().nullable(),
  joining: z.boolean().optional(),
  broken: z.object({ reason: z.string(), since: z.string() }).nullable().optional(),
  createdAt: z.string(),
});
export type PeerPairRecord = z.infer<typeof PeerPairRecordSchema>;

/** A request carried inside a stream at its place (a multi-primary part's `marker` entry); today only `flash.mirror`. */
export const StreamMarkerRequestSchema = z.object({ method: z.string().min(1), params: z.record(z.string(), z.unknown()) });

/** One change of a consistency group or part; its data (writes, markers) is in the payload at `dataOffset`. */
export const GroupEntrySchema = z.object({
  pair: Id,
  /** `marker`: a multi-primary stream marker at this point of the part (its data, if any, at dataOffset). */
  kind: z.enum(['write', 'trim', 'zeroes', 'marker']),
  offset: Count,
  length: Count,
  /** Where the entry's data starts in the group's payload (writes and markers). */
  dataOffset: Count,
  /** The request a `marker` entry carries, performed by the secondary when it applies the part up to here. */
  marker: StreamMarkerRequestSchema.optional(),
});
export type GroupEntry = z.infer<typeof GroupEntrySchema>;

/** One change of a shipped cycle's chunk; a write's data is in the payload at `dataOffset`. */
export const ShippedEntrySchema = z.object({
  pair: Id,
  kind: z.enum(['write', 'trim']),
  offset: Count,
  length: Count,
  /** Where the data starts in the chunk's payload (writes only). */
  dataOffset: Count,
});
export type ShippedEntry = z.infer<typeof ShippedEntrySchema>;

const Entries = <T extends z.ZodType>(entry: T) => z.array(entry).max(1_000_000);

/** A multi-primary member's answer to a hold (agents/src/replication/cut-coordinator.ts). */
export const MemberStatusSchema = z.object({
  /** Every copy set of the session there mirrors and none is resyncing. */
  duplex: z.boolean(),
  /** The last round whose part the secondary acknowledged as staged. */
  stagedThrough: z.number(),
  /** Out-of-sync tracks per pair id. */
  outOfSync: z.record(z.string(), z.number()),
  /** Per pair id: syncing progress 0..100 while resyncing, null when not. */
  syncedPercent: z.record(z.string(), z.number().nullable()),
  /** Per pair id: the primary volume's track count. */
  trackCount: z.record(z.string(), z.number()),
  /** The member's track size, bytes (absent from older members: the control agent's is assumed). */
  trackSize: z.number().optional(),
  /** Pair ids added while the session ran that have not joined the consistency group yet (left out of `duplex`). */
  joining: z.array(z.string()).optional(),
});
export type MemberStatus = z.infer<typeof MemberStatusSchema>;

/** A commit of a multi-primary session's rounds at its secondary site. */
export const RoundCommitSchema = z.object({ epoch: Token, through: Count, time: Count });
export type RoundCommit = z.infer<typeof RoundCommitSchema>;

/** Failback planning options as they travel (absent: the receiver's defaults); a recover's point (2.1). */
const PlanOptions = z.object({
  verifyCodes: z.boolean().optional(),
  fullCompare: z.boolean().optional(),
  bookmark: z.string().min(1).max(200).optional(),
  at: z.string().datetime({ offset: true }).optional(),
  seq: Count.optional(),
});

/** A copy set's failback plan counts (FailbackPreflight's pairs, plus the tracks to copy). */
export const PlanSummarySchema = z.looseObject({
  pair: z.string(),
  targetChangedTracks: z.number(),
  outOfSyncTracks: z.number(),
  tracksToCopy: z.number(),
});

/** A flash pair of `flash.mirror`: volumes named by copy sets both sites know. */
export const MirrorPairParamsSchema = z.object({
  sourcePair: Id,
  targetPair: Id.optional(),
  remoteTarget: z.string().min(1).optional(),
});
export type MirrorPairParams = z.infer<typeof MirrorPairParamsSchema>;

export const FlashMirrorPerformSchema = z.object({
  op: z.literal('perform'),
  token: Id,
  kind: z.enum(['establish', 'refresh', 'reverse']),
  session: z.string().min(1),
  options: FlashOptionsSchema,
  coordinated: z.boolean(),
  pairs: z.array(MirrorPairParamsSchema).min(1).max(10_000),
  /** Tracks the secondary writes into a pair's target after its flash, their data in the payload, in order. */
  fixups: z.array(z.object({ pair: Count, track: Count })).max(1_000_000).optional(),
});
export type FlashMirrorPerform = z.infer<typeof FlashMirrorPerformSchema>;

export const FlashMirrorParamsSchema = z.discriminatedUnion('op', [
  FlashMirrorPerformSchema,
  z.object({ op: z.literal('cancel'), token: Id }),
  z.object({ op: z.literal('withdraw'), token: Id, session: z.string().min(1) }),
  z.object({ op: z.literal('sync-point'), token: Id }),
]);
export type FlashMirrorParams = z.infer<typeof FlashMirrorParamsSchema>;

/** One member session as its agent reports it to a cluster's processor. */
export const ClusterSessionReportSchema = z.discriminatedUnion('ok', [
  z.object({
    key: z.string(),
    ok: z.literal(true),
    sessionId: z.string(),
    session: z.string(),
    state: SessionStateSchema,
    health: SessionHealthSchema,
    consistencyTime: z.string().nullable(),
    exposureSeconds: z.number().nullable(),
    detail: z.string().nullable(),
  }),
  z.object({ key: z.string(), ok: z.literal(false), error: z.string() }),
]);
export type ClusterSessionReport = z.infer<typeof ClusterSessionReportSchema>;

/** A shipping cycle as the target committed it (times in ms; the API's ShipCycleReport has ISO times). */
export const PeerCycleReportSchema = z.object({
  cycle: z.number(),
  time: z.number(),
  tracks: z.number(),
  bytesSent: z.number(),
  durationMs: z.number(),
});

// --- the methods ---

export type PayloadRule = 'none' | 'optional' | 'required';

export interface PeerMethodSpec<P extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType> {
  params: P;
  result: R;
  /** The request's binary payload. */
  payload: PayloadRule;
  /** The answer's binary payload. */
  resultPayload: PayloadRule;
  /**
   * A mirroring stream request: names the run it belongs to (`run`) and is
   * served only if that run is the one its sender fenced last (stream-fence).
   */
  stream?: true;
}

function method<P extends z.ZodType, R extends z.ZodType>(
  params: P,
  result: R,
  rules: { payload?: PayloadRule; resultPayload?: PayloadRule; stream?: true } = {},
): PeerMethodSpec<P, R> {
  return { params, result, payload: rules.payload ?? 'none', resultPayload: rules.resultPayload ?? 'none', ...(rules.stream ? { stream: true } : {}) };
}

const session = { session: Id };
const pair = { pair: Id };
const streamOf = { run: Token };

/**
 * Every peer method: its parameters, its result, its payloads. Keyed by the
 * method name as it travels (`m` in the request frame's metadata).
 */
export const peerMethods = {
  /** Link handshake: the dialling agent's protocol version; the answer is the listener's. Sent first on every connection. */
  'peer.hello': method(z.object({ version: PeerProtocolVersionSchema }), z.object({ version: PeerProtocolVersionSchema })),

  // Session bookkeeping (both sites keep the session).
  'session.put': method(z.object({ record: PeerSessionRecordSchema }), NoResult),
  'session.state': method(z.object({ ...session, record: PeerSessionRecordSchema }), NoResult),
  'session.action': method(z.object({ ...session, action: SessionActionSchema, options: PlanOptions.optional() }), NoResult),
  'session.settings': method(z.object({ ...session, shipIntervalMs: Count }), NoResult),
  'session.ship-now': method(z.object(session), PeerCycleReportSchema),
  'session.verify': method(z.object(session), VerifyReportSchema),
  'session.prepare-target': method(z.object(session), NoResult),
  'session.stop-source': method(z.object(session), NoResult),
  'session.become-target': method(z.object({ ...session, direction: DirectionSchema }), NoResult),
  'session.terminated': method(z.object(session), NoResult),
  'session.preflight': method(z.object({ ...session, options: PlanOptions.optional() }), FailbackPreflightSchema),

  // Copy sets.
  'pair.put': method(z.object({ pair: PeerPairRecordSchema }), NoResult),
  'pair.remove': method(z.object(pair), NoResult),
  'pair.broken': method(z.object({ ...pair, reason: z.string().max(64 * 1024) }), NoResult),
  'pair.attach': method(z.object({ ...session, pair: PeerPairRecordSchema }), NoResult),
  'pair.joined': method(z.object(pair), NoResult),
  'volume.size': method(z.object({ name: z.string().min(1).max(1024) }), z.object({ sizeBytes: Count })),

  // The mirroring stream (sync, semi-sync), fenced by run.
  'stream.fence': method(z.object({ ...session, ...streamOf }), NoResult),
  'pair.write': method(
    z.object({ ...pair, ...streamOf, offset: Count, ack: z.enum(['arrival', 'durable']), fua: z.boolean().optional() }),
    NoResult,
    { payload: 'required', stream: true },
  ),
  'pair.trim': method(z.object({ ...pair, ...streamOf, offset: Count, length: Count, zeroes: z.boolean().optional() }), NoResult, { stream: true }),
  'pair.flush': method(z.object({ ...pair, ...streamOf }), z.object({ repairing: Tracks }), { stream: true }),

  // Failback and verify: bitmaps, codes, repairs.
  'pair.bitmap': method(z.object({ ...pair, which: z.enum(['out-of-sync', 'target-changed']) }), NoResult, { resultPayload: 'optional' }),
  'pair.codes': method(z.object({ ...pair, tracks: Tracks, settle: z.boolean().optional() }), z.object({ computed: Count, busy: Tracks }), {
    resultPayload: 'required',
  }),
  'pair.repair': method(z.object({ ...pair, tracks: Tracks }), z.object({ repaired: z.boolean() })),
  'pair.read-track': method(z.object({ ...pair, track: Count }), NoResult, { resultPayload: 'required' }),

  // Async consistency groups.
  'cg.stage': method(
    z.object({
      ...session,
      ...streamOf,
      epoch: Token,
      from: Id,
      round: Count,
      time: Count,
      entries: Entries(GroupEntrySchema),
      piece: Count.optional(),
      last: z.boolean().optional(),
    }),
    NoResult,
    { payload: 'optional', stream: true },
  ),

  // Snapshot shipping.
  'ship.begin': method(z.object({ ...session, ...streamOf, epoch: Token, cycle: Count, time: Count.optional() }), NoResult, { stream: true }),
  'ship.chunk': method(z.object({ ...session, ...streamOf, epoch: Token, cycle: Count, entries: Entries(ShippedEntrySchema) }), NoResult, {
    payload: 'optional',
    stream: true,
  }),
  'ship.commit': method(z.object({ ...session, ...streamOf, epoch: Token, cycle: Count, time: Count }), NoResult, { stream: true }),

  // Multi-primary sessions: membership, the control agent's rounds, running changes, failback.
  'mp.join': method(z.object({ record: PeerSessionRecordSchema, pair: PeerPairRecordSchema }), NoResult),
  'mp.secondary-pair': method(z.object({ pair: PeerPairRecordSchema }), NoResult),
  'mp.run': method(z.object(session), NoResult),
  'mp.hold': method(z.object({ ...session, round: Count, epoch: Token, committed: Count }), MemberStatusSchema),
  'mp.cut': method(z.object({ ...session, round: Count, time: Count }), NoResult),
  'mp.release': method(z.object({ ...session, round: Count }), NoResult),
  'mp.stop': method(z.object({ ...session, reason: z.string().max(64 * 1024).nullable().optional() }), NoResult),
  'mp.commit': method(z.object({ ...session, epoch: Token, through: Count, time: Count }), NoResult),
  'mp.add': method(z.object({ ...session, ...pair, newcomer: z.boolean().optional() }), NoResult),
  'mp.remove': method(z.object({ ...session, ...pair, last: z.boolean().optional() }), NoResult),
  'mp.pair-removed': method(z.object({ ...session, ...pair }), NoResult),
  'mp.recover': method(z.object({ ...session, commit: RoundCommitSchema.nullable().optional() }), NoResult),
  'mp.verify': method(z.object({ ...session, trigger: z.enum(['failback', 'request']).optional() }), VerifyReportSchema),
  'mp.last-commit': method(z.object(session), RoundCommitSchema.nullable()),
  'mp.failback-plan': method(
    z.object({ ...session, options: PlanOptions.optional(), apply: z.boolean().optional() }),
    z.object({ plans: z.array(PlanSummarySchema) }),
  ),

  // Flash copy of mirrored volumes.
  'flash.mirror': method(
    FlashMirrorParamsSchema,
    z.object({ performed: z.boolean().optional(), why: z.string().optional(), withdrawn: z.boolean().optional() }),
    { payload: 'optional' },
  ),

  // Clusters.
  'cluster.report': method(
    z.object({ sessions: z.array(z.string()).max(10_000) }),
    z.object({ site: z.string(), reports: z.array(ClusterSessionReportSchema) }),
  ),
  'cluster.history': method(z.object({ cluster: z.string().min(1), limit: z.int().optional() }), ClusterHistorySchema),
} satisfies Record<string, PeerMethodSpec>;

export type PeerMethods = typeof peerMethods;
export type PeerMethod = keyof PeerMethods;
/** Parameters as a caller passes them. */
export type PeerParamsIn<M extends PeerMethod> = z.input<PeerMethods[M]['params']>;
/** Parameters as a handler receives them (parsed). */
export type PeerParams<M extends PeerMethod> = z.output<PeerMethods[M]['params']>;
/** The result as a handler gives it and a caller receives it. */
export type PeerResult<M extends PeerMethod> = z.output<PeerMethods[M]['result']>;

export const peerMethodNames = Object.keys(peerMethods) as PeerMethod[];

export function isPeerMethod(name: unknown): name is PeerMethod {
  return typeof name === 'string' && Object.hasOwn(peerMethods, name);
}
