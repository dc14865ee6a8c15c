import {
  AuditListSchema,
  ClusterHistorySchema,
  ClusterInfoSchema,
  ClusterListSchema,
  EventListSchema,
  FailbackPreflightSchema,
  JournalPointListSchema,
  JournalViewSchema,
  PairingTokenSchema,
  PeerInfoSchema,
  PeerListSchema,
  SessionHistorySchema,
  SessionInfoSchema,
  SessionListSchema,
  ShipCycleReportSchema,
  VerifyReportSchema,
  type AddClusterMemberRequest,
  type AddPairRequest,
  type AgentEvent,
  type AuditEntry,
  type ClusterHistory,
  type ClusterInfo,
  type CreateClusterRequest,
  type CreateSessionRequest,
  type FailbackOptions,
  type SessionActionOptions,
  type FailbackPreflight,
  type JournalPoint,
  type JournalView,
  type PairingToken,
  type PairSiteRequest,
  type PeerInfo,
  type SessionAction,
  type SessionHistory,
  type SessionHistoryQuery,
  type SessionInfo,
  type ShipCycleReport,
  type UpdateSessionRequest,
  type VerifyReport,
} from '@tandem/contract';
import type { AgentClient } from '../agent-client.ts';

/** Agent paths for mirroring (contract/PROTOCOL.md, "Routes"). */
const session = (name: string) => `/v1/sessions/${encodeURIComponent(name)}`;
const cluster = (name: string) => `/v1/clusters/${encodeURIComponent(name)}`;

export const replicationPaths = {
  pairingTokens: '/v1/pairing-tokens',
  peers: '/v1/peers',
  sessions: '/v1/sessions',
  session,
  pairs: (name: string) => `${session(name)}/pairs`,
  pair: (name: string, volume: string) => `${session(name)}/pairs/${encodeURIComponent(volume)}`,
  action: (name: string, action: SessionAction) => `${session(name)}/actions/${action}`,
  preflight: (name: string) => `${session(name)}/failback-preflight`,
  verify: (name: string) => `${session(name)}/verify`,
  shipNow: (name: string) => `${session(name)}/ship-now`,
  sessionHistory: (name: string) => `${session(name)}/history`,
  journal: (name: string) => `${session(name)}/journal`,
  clusters: '/v1/clusters',
  cluster,
  history: (name: string) => `${cluster(name)}/history`,
  members: (name: string) => `${cluster(name)}/members`,
  member: (name: string, session: string) => `${cluster(name)}/members/${encodeURIComponent(session)}`,
} as const;

/** Mirroring calls on one paired agent; every answer validated with the contract. */
export class ReplicationClient {
  constructor(private readonly agent: AgentClient) {}

  mintPairingToken(): Promise<PairingToken> {
    return this.agent.request('POST', replicationPaths.pairingTokens, PairingTokenSchema);
  }

  peers(): Promise<PeerInfo[]> {
    return this.agent.request('GET', replicationPaths.peers, PeerListSchema).then((list) => list.peers);
  }

  pairWith(request: PairSiteRequest): Promise<PeerInfo> {
    return this.agent.request('POST', replicationPaths.peers, PeerInfoSchema, request);
  }

  sessions(): Promise<SessionInfo[]> {
    return this.agent.request('GET', replicationPaths.sessions, SessionListSchema).then((list) => list.sessions);
  }

  session(name: string): Promise<SessionInfo> {
    return this.agent.request('GET', replicationPaths.session(name), SessionInfoSchema);
  }

  createSession(request: CreateSessionRequest): Promise<SessionInfo> {
    return this.agent.request('POST', replicationPaths.sessions, SessionInfoSchema, request);
  }

  addPair(name: string, request: AddPairRequest): Promise<SessionInfo> {
    return this.agent.request('POST', replicationPaths.pairs(name), SessionInfoSchema, request);
  }

  removePair(name: string, volume: string): Promise<void> {
    return this.agent.perform('DELETE', replicationPaths.pair(name, volume));
  }

  /** Settings changeable while the session runs (snapshot shipping's interval). */
  updateSession(name: string, request: UpdateSessionRequest): Promise<SessionInfo> {
    return this.agent.request('PATCH', replicationPaths.session(name), SessionInfoSchema, request);
  }

  /** Snapshot shipping: one cycle now, answered once the target committed it. */
  shipNow(name: string): Promise<ShipCycleReport> {
    return this.agent.request('POST', replicationPaths.shipNow(name), ShipCycleReportSchema);
  }

  /** A session action; `options`: a failback's `verifyCodes`/`fullCompare`, a recover's journal point (`bookmark`, `at` or `seq`). */
  /** The session's CDP journal at this site (404 `not-found`: none here). */
  journal(name: string): Promise<JournalView> {
    return this.agent.request('GET', replicationPaths.journal(name), JournalViewSchema);
  }

  /** Every bookmark of the session's journal here, oldest first (points coalesced to one a year; bookmarks are always listed). */
  async bookmarks(name: string): Promise<JournalPoint[]> {
    const list = await this.agent.request('GET', `${replicationPaths.journal(name)}/points?every=31536000`, JournalPointListSchema);
    return list.points.filter((point) => point.bookmark !== null);
  }

  act(name: string, action: SessionAction, options?: SessionActionOptions): Promise<SessionInfo> {
    return this.agent.request('POST', replicationPaths.action(name, action), SessionInfoSchema, options ?? {});
  }

  preflight(name: string, options: FailbackOptions): Promise<FailbackPreflight> {
    const query = new URLSearchParams({ verifyCodes: String(options.verifyCodes), fullCompare: String(options.fullCompare) });
    return this.agent.request('GET', `${replicationPaths.preflight(name)}?${query}`, FailbackPreflightSchema);
  }

  verify(name: string): Promise<VerifyReport> {
    return this.agent.request('POST', replicationPaths.verify(name), VerifyReportSchema);
  }

  /** The agent's own samples of the session over [from, to] (at most maxPoints points; gaps where it took none). */
  sessionHistory(name: string, query: Partial<SessionHistoryQuery>): Promise<SessionHistory> {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) search.set(key, String(value));
    const suffix = search.size > 0 ? `?${search}` : '';
    return this.agent.request('GET', `${replicationPaths.sessionHistory(name)}${suffix}`, SessionHistorySchema);
  }

  clusters(): Promise<ClusterInfo[]> {
    return this.agent.request('GET', replicationPaths.clusters, ClusterListSchema).then((list) => list.clusters);
  }

  cluster(name: string): Promise<ClusterInfo> {
    return this.agent.request('GET', replicationPaths.cluster(name), ClusterInfoSchema);
  }

  /** Defines a cluster at this agent: it runs the processor and keeps the master data set. */
  createCluster(request: CreateClusterRequest): Promise<ClusterInfo> {
    return this.agent.request('POST', replicationPaths.clusters, ClusterInfoSchema, request);
  }

  deleteCluster(name: string): Promise<void> {
    return this.agent.perform('DELETE', replicationPaths.cluster(name));
  }

  /** A session joins the cluster (asked at the processor's agent; `site` names the paired site reporting the session, when not this one). */
  addClusterMember(name: string, request: AddClusterMemberRequest): Promise<ClusterInfo> {
    return this.agent.request('POST', replicationPaths.members(name), ClusterInfoSchema, request);
  }

  /** A session leaves the cluster (`site`: which member, when sessions of that name at several sites are members). */
  removeClusterMember(name: string, session: string, site?: string): Promise<ClusterInfo> {
    const query = site ? `?${new URLSearchParams({ site })}` : '';
    return this.agent.request('DELETE', `${replicationPaths.member(name, session)}${query}`, ClusterInfoSchema);
  }

  clusterHistory(name: string, limit: number): Promise<ClusterHistory> {
    return this.agent.request('GET', `${replicationPaths.history(name)}?limit=${limit}`, ClusterHistorySchema);
  }

  /** The last `limit` events about a session (subject = its name), oldest first. */
  /** The newest `limit` audit entries whose route names the session (oldest first). */
  sessionAudit(name: string, limit: number): Promise<AuditEntry[]> {
    const query = new URLSearchParams({ session: name, limit: String(limit) });
    return this.agent.request('GET', `/v1/audit?${query}`, AuditListSchema).then((list) => list.entries);
  }

  sessionEvents(name: string, limit: number): Promise<AgentEvent[]> {
    return eventsAbout(this.agent, name, { type: sessionFamilies }, limit);
  }
}

/** Which events of a subject a view lists: types or families (`session.*`) to keep, and to leave out. */
export interface EventKinds {
  type: readonly string[];
  excludeType?: readonly string[];
}

/**
 * The last `limit` events of an agent about `subject` of the `kinds` asked
 * for, oldest first: one request, filtered by the agent
 * (`GET /v1/events?subject&type&excludeType&newest`).
 */
export async function eventsAbout(agent: AgentClient, subject: string, kinds: EventKinds, limit: number): Promise<AgentEvent[]> {
  const query = new URLSearchParams({ subject, type: kinds.type.join(','), newest: 'true', limit: String(limit) });
  if (kinds.excludeType?.length) query.set('excludeType', kinds.excludeType.join(','));
  const { events } = await agent.request('GET', `/v1/events?${query}`, EventListSchema);
  return events;
}

/** The event families of a mirroring session's view. */
const sessionFamilies = ['session.*', 'pair.*', 'link.*', 'cluster.*', 'peer.*'];
