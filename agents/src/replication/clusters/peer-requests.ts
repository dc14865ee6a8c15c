import { ProblemError, type SessionHealth, type SessionState } from '@tandem/contract';
import type { RpcRequest, RpcResult } from '../link/rpc-connection.ts';
import { problemMessage } from '../pair-source.ts';
import type { ReplicationService } from '../service.ts';

/** One member session as its agent reports it to a cluster's processor (`cluster.report`). */
export type SessionReport =
  | {
      key: string;
      ok: true;
      sessionId: string;
      session: string;
      state: SessionState;
      health: SessionHealth;
      consistencyTime: string | null;
      exposureSeconds: number | null;
      detail: string | null;
    }
  | { key: string; ok: false; error: string };

/** Reports sessions of this agent, by name or id, from the replication service. */
export function reportSessions(service: ReplicationService, keys: string[]): SessionReport[] {
  return keys.map((key): SessionReport => {
    try {
      const info = service.info(service.session(key));
      return {
        key,
        ok: true,
        sessionId: info.id,
        session: info.name,
        state: info.state,
        health: info.health,
        consistencyTime: info.consistencyTime,
        exposureSeconds: info.exposureSeconds,
        detail: info.detail,
      };
    } catch (error) {
      return { key, ok: false, error: problemMessage(error) };
    }
  });
}

/** What the peer link needs from the cluster manager of this agent. */
export interface ClusterPeerServer {
  servePeer(request: RpcRequest): Promise<RpcResult>;
}

const servers = new WeakMap<ReplicationService, ClusterPeerServer>();

export function registerClusterPeerServer(service: ReplicationService, server: ClusterPeerServer | null): void {
  if (server) servers.set(service, server);
  else servers.delete(service);
}

/**
 * The peer-link requests of clusters, reached from the target's dispatch:
 * `cluster.report` (a processor elsewhere gathers member sessions of this
 * agent) and `cluster.history` (a paired site reads a master data set this
 * agent keeps).
 */
export async function handleClusterRequest(service: ReplicationService, request: RpcRequest): Promise<RpcResult> {
  if (request.method === 'cluster.report') {
    const sessions = request.params.sessions;
    if (!Array.isArray(sessions) || !sessions.every((s) => typeof s === 'string') || sessions.length > 10_000) {
      throw new ProblemError('bad-request', 'peer request: sessions must be a list of session names or ids');
    }
    return { result: { site: service.site, reports: reportSessions(service, sessions as string[]) } };
  }
  const server = servers.get(service);
  if (!server) throw new ProblemError('not-supported', 'this agent keeps no clusters');
  return server.servePeer(request);
}
