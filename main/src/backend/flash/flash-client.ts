import {
  FlashSessionInfoSchema,
  FlashSessionListSchema,
  FlashTrackMapSchema,
  flashEventTypes,
  type AgentEvent,
  type EstablishFlashRequest,
  type FlashRefreshRequest,
  type FlashReverseRequest,
  type FlashSessionInfo,
  type FlashTrackMap,
  type FlashUpdateRequest,
  type FlashWithdrawRequest,
  type TrackMapQuery,
} from '@tandem/contract';
import type { AgentClient } from '../agent-client.ts';
import { eventsAbout } from '../sessions/replication-client.ts';

/** Agent paths for flash copy (contract/PROTOCOL.md, "Flash copy"). */
const session = (name: string) => `/v1/flash-sessions/${encodeURIComponent(name)}`;

export const flashPaths = {
  sessions: '/v1/flash-sessions',
  session,
  refresh: (name: string) => `${session(name)}/refresh`,
  reverse: (name: string) => `${session(name)}/reverse`,
  withdraw: (name: string) => `${session(name)}/withdraw`,
  trackMap: (name: string, pair: string) => `${session(name)}/pairs/${encodeURIComponent(pair)}/track-map`,
} as const;

/** Flash copy calls on one paired agent; every answer validated with the contract. */
export class FlashClient {
  constructor(private readonly agent: AgentClient) {}

  sessions(): Promise<FlashSessionInfo[]> {
    return this.agent.request('GET', flashPaths.sessions, FlashSessionListSchema).then((list) => list.sessions);
  }

  session(name: string): Promise<FlashSessionInfo> {
    return this.agent.request('GET', flashPaths.session(name), FlashSessionInfoSchema);
  }

  establish(request: EstablishFlashRequest): Promise<FlashSessionInfo> {
    return this.agent.request('POST', flashPaths.sessions, FlashSessionInfoSchema, request);
  }

  refresh(name: string, request: FlashRefreshRequest): Promise<FlashSessionInfo> {
    return this.agent.request('POST', flashPaths.refresh(name), FlashSessionInfoSchema, request);
  }

  reverse(name: string, request: FlashReverseRequest): Promise<FlashSessionInfo> {
    return this.agent.request('POST', flashPaths.reverse(name), FlashSessionInfoSchema, request);
  }

  withdraw(name: string, request: FlashWithdrawRequest): Promise<FlashSessionInfo> {
    return this.agent.request('POST', flashPaths.withdraw(name), FlashSessionInfoSchema, request);
  }

  /** Forgets a withdrawn session (the agent refuses any other with `invalid-state`). */
  remove(name: string): Promise<void> {
    return this.agent.perform('DELETE', flashPaths.session(name));
  }

  update(name: string, request: FlashUpdateRequest): Promise<FlashSessionInfo> {
    return this.agent.request('PATCH', flashPaths.session(name), FlashSessionInfoSchema, request);
  }

  /** The last `limit` flash events about a session, oldest first; the once-a-second copy progress is left out (the session shows it). */
  sessionEvents(name: string, limit: number): Promise<AgentEvent[]> {
    return eventsAbout(this.agent, name, { type: ['flash.*'], excludeType: [flashEventTypes.copyProgress] }, limit);
  }

  trackMap(name: string, pair: string, query: Partial<TrackMapQuery>): Promise<FlashTrackMap> {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) search.set(key, String(value));
    const suffix = search.size > 0 ? `?${search}` : '';
    return this.agent.request('GET', `${flashPaths.trackMap(name, pair)}${suffix}`, FlashTrackMapSchema);
  }
}
