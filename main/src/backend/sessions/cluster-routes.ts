import { z } from 'zod';
import { AddClusterMemberRequestSchema, ClusterNameSchema, CreateClusterRequestSchema, SessionNameSchema } from '@tandem/contract';
import { parseInput, type Router } from '../router.ts';
import type { SiteManager } from '../site-manager.ts';
import { ReplicationClient } from './replication-client.ts';

const SiteParams = z.object({ siteId: z.string().min(1) });
const ClusterParams = SiteParams.extend({ name: ClusterNameSchema });
const MemberParams = ClusterParams.extend({ session: SessionNameSchema });
const MemberQuery = z.object({ site: z.string().min(1).optional() });

/**
 * Defining clusters and changing their members, at the site whose agent
 * runs the cluster's processor (the site in the path). Thin proxies: the
 * agent checks that the session exists and is in no other cluster, and its
 * refusals keep their problem codes. Reading clusters is in
 * replication-routes.ts.
 */
export function clusterRoutes(sites: SiteManager, router: Router): Router {
  const replication = (siteId: string) => new ReplicationClient(sites.client(siteId));
  return router
    .add('POST', '/api/sites/:siteId/clusters', async ({ params, body }) => {
      const { siteId } = parseInput(SiteParams, params);
      return { status: 201, body: await replication(siteId).createCluster(parseInput(CreateClusterRequestSchema, body)) };
    })
    .add('DELETE', '/api/sites/:siteId/clusters/:name', async ({ params }) => {
      const { siteId, name } = parseInput(ClusterParams, params);
      await replication(siteId).deleteCluster(name);
      return { status: 204 };
    })
    .add('POST', '/api/sites/:siteId/clusters/:name/members', async ({ params, body }) => {
      const { siteId, name } = parseInput(ClusterParams, params);
      return { status: 201, body: await replication(siteId).addClusterMember(name, parseInput(AddClusterMemberRequestSchema, body)) };
    })
    .add('DELETE', '/api/sites/:siteId/clusters/:name/members/:session', async ({ params, query }) => {
      const { siteId, name, session } = parseInput(MemberParams, params);
      const { site } = parseInput(MemberQuery, Object.fromEntries(query));
      return { body: await replication(siteId).removeClusterMember(name, session, site) };
    });
}
