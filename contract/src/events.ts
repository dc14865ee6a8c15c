import { z } from 'zod';

export const SeveritySchema = z.enum(['info', 'warning', 'error']);
export type Severity = z.infer<typeof SeveritySchema>;

/**
 * Something that happened at an agent: kept in its catalog and pushed to
 * every connected console. `type` is a dotted name (`volume.created`,
 * `snapshot.created`, `agent.started`, `client.paired`, …).
 */
/** Event types the agent records today. `type` stays an open string so newer agents can add more. */
export const agentEventTypes = {
  agentStarted: 'agent.started',
  agentStopped: 'agent.stopped',
  clientPaired: 'client.paired',
  /** An administrator revoked a client certificate (`DELETE /v1/clients/:serial`). */
  clientRevoked: 'client.revoked',
  /** An administrator changed the role a client acts as (`PATCH /v1/clients/:serial`). */
  clientRole: 'client.role',
  volumeCreated: 'volume.created',
  volumeResized: 'volume.resized',
  volumeDeleted: 'volume.deleted',
  /** At start, a volume whose creation a crash interrupted was removed. */
  volumeRecovered: 'volume.recovered',
  /** Host writes changed a volume's allocated space (at most one every 2 s per volume). */
  volumeUsage: 'volume.usage',
  snapshotCreated: 'snapshot.created',
  snapshotDeleted: 'snapshot.deleted',
} as const;

export const AgentEventSchema = z.object({
  id: z.number().int(),
  time: z.string(),
  type: z.string(),
  severity: SeveritySchema,
  /** What the event is about, e.g. a volume name. */
  subject: z.string().nullable(),
  message: z.string(),
  data: z.record(z.string(), z.unknown()).optional(),
});
export type AgentEvent = z.infer<typeof AgentEventSchema>;

/** An event type (`session.state`) or a whole family of types (`session.*`). */
const eventTypePattern = /^[a-z][a-z0-9-]*(\.[a-z0-9-]+)*(\.\*)?$/;

/** A comma-separated list of event types and families (`session.*,pair.*`), at most 20. */
const EventTypeListSchema = z
  .string()
  .transform((text) => text.split(','))
  .pipe(
    z
      .array(z.string().regex(eventTypePattern, 'each entry is an event type (flash.state) or a family (flash.*)'))
      .min(1)
      .max(20, 'at most 20 event types or families'),
  );

export const EventListQuerySchema = z.object({
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(200),
  /** Only events about this subject (exact match: a volume, session, flash session, cluster, site or client name). */
  subject: z.string().min(1).max(256).optional(),
  /** Only events of these types or families. */
  type: EventTypeListSchema.optional(),
  /** Leave out events of these types or families. */
  excludeType: EventTypeListSchema.optional(),
  /** `true`: the newest `limit` matching events above `after` instead of the oldest (still answered oldest first). */
  newest: z.enum(['true', 'false']).transform((value) => value === 'true').default(false),
});
export type EventListQuery = z.output<typeof EventListQuerySchema>;
export const EventListSchema = z.object({ events: z.array(AgentEventSchema) });
export type EventList = z.infer<typeof EventListSchema>;

/**
 * Frames on the event WebSocket (agent -> client). The first frame is
 * `hello`; then one `event` frame per event recorded after the connection
 * opened. A client that missed events reads `GET /v1/events?after=` first.
 */
export const EventStreamMessageSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('hello'), site: z.string(), agentId: z.string(), lastEventId: z.number() }),
  z.object({ kind: z.literal('event'), event: AgentEventSchema }),
]);
export type EventStreamMessage = z.infer<typeof EventStreamMessageSchema>;
