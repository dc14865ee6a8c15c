import { ProblemError, type ClusterInfo } from '@tandem/contract';
import type { ReportDocument, SessionReport } from '../../shared/sessions-api.ts';
import type { ReplicationClient } from '../sessions/replication-client.ts';

/** Reads one session and its recent events at a site. */
async function sessionReport(site: string, client: ReplicationClient, name: string, eventLimit: number): Promise<SessionReport> {
  const [session, events] = await Promise.all([client.session(name), client.sessionEvents(name, eventLimit)]);
  return { site, session, events };
}

export async function buildSessionReport(site: string, client: ReplicationClient, name: string, eventLimit: number, now = new Date()): Promise<ReportDocument> {
  return {
    kind: 'session',
    title: `Session ${name}`,
    generatedAt: now.toISOString(),
    cluster: null,
    sessions: [await sessionReport(site, client, name, eventLimit)],
  };
}

/** How the report reaches another site of the console by its site name (null: not connected here). */
export type SiteClientLookup = (site: string) => { site: string; client: ReplicationClient } | null;

/**
 * A cluster and every member session the console can reach: local members
 * from the processor's site, remote ones from their own site when this
 * console is connected to it. Unreachable members still appear in the
 * cluster's member table (as the processor last saw them).
 */
export async function buildClusterReport(
  site: string,
  client: ReplicationClient,
  name: string,
  lookup: SiteClientLookup,
  eventLimit: number,
  now = new Date(),
): Promise<ReportDocument> {
  const cluster: ClusterInfo = await client.cluster(name);
  const sessions: SessionReport[] = [];
  for (const member of cluster.members) {
    const reach = member.local ? { site, client } : lookup(member.site);
    if (!reach) continue;
    try {
      sessions.push(await sessionReport(reach.site, reach.client, member.session, eventLimit));
    } catch (error) {
      if (!(error instanceof ProblemError)) throw error;
    }
  }
  return { kind: 'cluster', title: `Cluster ${name}`, generatedAt: now.toISOString(), cluster, sessions };
}
