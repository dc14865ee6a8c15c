import type { SessionInfo } from '@tandem/contract';
import type { SessionRecord } from './session-store.ts';

/**
 * What clusters and the session history read of replication: this agent's
 * sessions and their reported view. The replication service provides it;
 * readers get this narrow view instead of the service (issue 12: parts
 * receive what they use, dependencies run one way).
 */
export interface SessionReader {
  readonly agentId: string;
  readonly site: string;
  readonly sessions: ReadonlyMap<string, SessionRecord>;
  /** A session by name or id; throws `not-found`. */
  session(nameOrId: string): SessionRecord;
  /** The session as the API reports it (state, health, consistency time, exposure). */
  info(session: SessionRecord): SessionInfo;
  /** A time another agent reported, on this agent's clock (clock-offset.ts). */
  toLocalIso(agentId: string, time: string | null): string | null;
}
