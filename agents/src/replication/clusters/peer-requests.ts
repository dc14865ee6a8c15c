import { ProblemError, type ClusterSessionReport } from '@tandem/contract';
import type { PeerAnswer, PeerCall, PeerHandlerTable } from '../link/peer-protocol.ts';
import { problemMessage } from '../problem-message.ts';
import type { SessionReader } from '../session-reader.ts';

/** One member session as its agent reports it to a cluster's processor (`cluster.report`; the contract's schema). */
export type SessionReport = ClusterSessionReport;

/** Reports sessions of this agent, by name or id, from the replication service. */
export function reportSessions(service: SessionReader, keys: string[]): SessionReport[] {
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
  servePeer(call: PeerCall<'cluster.history'>): Promise<PeerAnswer<'cluster.history'>>;
}

const servers = new WeakMap<SessionReader, ClusterPeerServer>();

export function registerClusterPeerServer(service: SessionReader, server: ClusterPeerServer | null): void {
  if (server) servers.set(service, server);
  else servers.delete(service);
}

/**
 * The peer-link requests of clusters, in the target's dispatch table:
 * `cluster.report` (a processor elsewhere gathers member sessions of this
 * agent) and `cluster.history` (a paired site reads a master data set this
 * agent keeps).
 */
export function clusterPeerHandlers(service: SessionReader): PeerHandlerTable<'cluster.report' | 'cluster.history'> {
  return {
    'cluster.report': ({ params }) => ({ result: { site: service.site, reports: reportSessions(service, params.sessions) } }),
    'cluster.history': (call) => {
      const server = servers.get(service);
      if (!server) throw new ProblemError('not-supported', 'this agent keeps no clusters');
      return server.servePeer(call);
    },
  };
}
