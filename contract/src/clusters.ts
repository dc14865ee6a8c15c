import { z } from 'zod';
import { SessionHealthSchema, SessionNameSchema, SessionStateSchema } from './replication.ts';

/**
 * Clusters and master data sets: sessions (on one or several agents)
 * coupled into a cluster. The agent where a cluster is defined runs its
 * processor: every interval it gathers each member's state, health,
 * consistency time and exposure, consolidates them and appends the result
 * to the cluster's master data set, a durable checksummed record store that
 * any paired site can read.
 */

export const ClusterNameSchema = SessionNameSchema;

/** A member that has not reported within the cluster's timeout is `unknown`. */
export const MemberHealthSchema = z.union([SessionHealthSchema, z.literal('unknown')]);
export type MemberHealth = z.infer<typeof MemberHealthSchema>;
export const MemberStateSchema = z.union([SessionStateSchema, z.literal('unknown')]);
export type MemberState = z.infer<typeof MemberStateSchema>;

/** One member as the processor last consolidated it. */
export const ClusterMemberSchema = z.object({
  session: z.string(),
  sessionId: z.string(),
  /** The site whose agent reports the member (this agent's site for local members). */
  site: z.string(),
  agentId: z.string(),
  local: z.boolean(),
  /** `reporting`: reported within the timeout; `unknown`: silent for longer (or never reported). */
  status: z.enum(['reporting', 'unknown']),
  state: MemberStateSchema,
  health: MemberHealthSchema,
  /** The member's consistency time; for an unknown member, the last one it reported. */
  consistencyTime: z.string().nullable(),
  exposureSeconds: z.number().nullable(),
  /** When the member last reported (ISO time), null when it never did. */
  reportedAt: z.string().nullable(),
  /** Why it is unknown (the last failure), or the session's own detail. */
  detail: z.string().nullable(),
});
export type ClusterMember = z.infer<typeof ClusterMemberSchema>;

export const ClusterInfoSchema = z.object({
  name: z.string(),
  /** The site whose agent runs the processor and keeps the master data set. */
  processorSite: z.string(),
  intervalSeconds: z.number(),
  /** A member silent for this long is unknown. */
  timeoutSeconds: z.number(),
  /** Worst member health (severe > warning > normal > inactive); an unknown member makes it at least warning. */
  health: SessionHealthSchema,
  /** Minimum of the members' consistency times; null when a member has none. */
  consistencyTime: z.string().nullable(),
  /** Maximum of the members' exposures, seconds; null when a member has none. */
  exposureSeconds: z.number().nullable(),
  members: z.array(ClusterMemberSchema),
  /** When the processor last consolidated (ISO time). */
  consolidatedAt: z.string().nullable(),
  /** The master data set: sequence number of its last record and its file size. */
  masterDataSet: z.object({ lastSequence: z.number(), records: z.number(), bytes: z.number() }),
  createdAt: z.string(),
});
export type ClusterInfo = z.infer<typeof ClusterInfoSchema>;
export const ClusterListSchema = z.object({ clusters: z.array(ClusterInfoSchema) });

const IntervalSchema = z.number().min(0.05).max(3600);

export const CreateClusterRequestSchema = z.object({
  name: ClusterNameSchema,
  /** Seconds between consolidations (default 2). */
  intervalSeconds: IntervalSchema.optional(),
  /** Seconds of silence after which a member is unknown (default 3 intervals). */
  timeoutSeconds: IntervalSchema.optional(),
});
export type CreateClusterRequest = z.infer<typeof CreateClusterRequestSchema>;

export const UpdateClusterRequestSchema = z.object({
  intervalSeconds: IntervalSchema.optional(),
  /** null: back to 3 intervals. */
  timeoutSeconds: IntervalSchema.nullable().optional(),
});
export type UpdateClusterRequest = z.infer<typeof UpdateClusterRequestSchema>;

export const AddClusterMemberRequestSchema = z.object({
  session: SessionNameSchema,
  /** A paired site whose agent reports the session; this agent when absent. */
  site: z.string().min(1).optional(),
});
export type AddClusterMemberRequest = z.infer<typeof AddClusterMemberRequestSchema>;

/** A member as a master data set record keeps it. */
export const MdsMemberSchema = ClusterMemberSchema.pick({
  session: true,
  site: true,
  status: true,
  state: true,
  health: true,
  consistencyTime: true,
  exposureSeconds: true,
  reportedAt: true,
});
export type MdsMember = z.infer<typeof MdsMemberSchema>;

/** One consolidation, as the master data set keeps it. */
export const MdsRecordSchema = z.object({
  /** Sequence number: 1, 2, 3, … across compactions. */
  sequence: z.number(),
  time: z.string(),
  cluster: z.string(),
  health: SessionHealthSchema,
  consistencyTime: z.string().nullable(),
  exposureSeconds: z.number().nullable(),
  members: z.array(MdsMemberSchema),
});
export type MdsRecord = z.infer<typeof MdsRecordSchema>;

export const ClusterHistorySchema = z.object({
  cluster: z.string(),
  /** The site that served the history (the processor's). */
  site: z.string(),
  /** Oldest first. */
  records: z.array(MdsRecordSchema),
  /** When the reader stopped early: a torn tail (harmless) or a corrupt record. */
  damage: z.string().nullable(),
});
export type ClusterHistory = z.infer<typeof ClusterHistorySchema>;

export const ClusterHistoryQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(10_000).default(100),
  /** Read the master data set kept by this paired site (over the peer link). */
  site: z.string().min(1).optional(),
});
