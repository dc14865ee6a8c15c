import { z } from 'zod';
import {
  AddPairRequestSchema,
  ClusterNameSchema,
  CreateSessionRequestSchema,
  FailbackOptionsSchema,
  ProblemError,
  SessionActionOptionsSchema,
  SessionActionSchema,
  SessionHistoryQuerySchema,
  SessionNameSchema,
  UpdateSessionRequestSchema,
  VolumeNameSchema,
  type SessionActionOptions,
} from '@tandem/contract';
import { PairSitesRequestSchema, ReportQuerySchema } from '../../shared/sessions-api.ts';
import { FlashClient } from '../flash/flash-client.ts';
import { buildClusterReport, buildSessionReport, type ReportOptions, type SiteAccess } from '../reports/report-builder.ts';
import { renderReport } from '../reports/report-formats.ts';
import { parseInput, type Router } from '../router.ts';
import type { SiteManager } from '../site-manager.ts';
import { ReplicationClient } from './replication-client.ts';

const SiteParams = z.object({ siteId: z.string().min(1) });
const SessionParams = SiteParams.extend({ name: SessionNameSchema });
const PairParams = SessionParams.extend({ volume: VolumeNameSchema });
const ActionParams = SessionParams.extend({ action: SessionActionSchema });
const ClusterParams = SiteParams.extend({ name: ClusterNameSchema });
const booleanText = z.enum(['true', 'false']).transform((value) => value === 'true');
const PreflightQuery = z.object({ verifyCodes: booleanText.default(true), fullCompare: booleanText.default(false) });
const HistoryQuery = z.object({ limit: z.coerce.number().int().min(1).max(10_000).default(100) });
const EventsQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) });

/** A recover's journal point only: the failback's options mean nothing to it. */
function recoverPoint({ bookmark, at, seq }: SessionActionOptions): SessionActionOptions {
  return { ...(bookmark !== undefined && { bookmark }), ...(at !== undefined && { at }), ...(seq !== undefined && { seq }) };
}

/** How many recent events a report lists per session and site. */
const reportEventLimit = 100;
/** Points of exposure history per site in a report (the worst sample of each stretch when the range holds more). */
const reportHistoryPoints = 288;

/** The report's way to every site the console knows, by site name: connected ones with clients, others with since when and why not. */
function siteAccess(sites: SiteManager): SiteAccess {
  return {
    reach(siteName) {
      const known = sites.list().find((site) => site.site === siteName);
      if (!known) return { site: siteName, since: new Date().toISOString(), problem: 'not connected to this console' };
      if (known.connection.state !== 'connected') {
        const why = known.connection.lastProblem ? `${known.connection.lastProblem.problem}: ${known.connection.lastProblem.message}` : 'no answer';
        return { site: siteName, since: known.connection.since, problem: `${known.connection.state} (${why})` };
      }
      const agent = sites.client(known.id);
      return { site: siteName, replication: new ReplicationClient(agent), flash: new FlashClient(agent) };
    },
    connected: () => sites.list().filter((site) => site.connection.state === 'connected').map((site) => site.site),
  };
}

/**
 * Mirroring routes for the renderer: peers, sessions and their actions,
 * failback preflight, verify, clusters and reports. Thin proxies to the
 * site's agent; bodies are validated here with the contract's schemas and
 * the agent's answers by the client.
 */
export function replicationRoutes(sites: SiteManager, router: Router): Router {
  const replication = (siteId: string) => new ReplicationClient(sites.client(siteId));
  const siteOf = (params: Record<string, string>) => parseInput(SiteParams, params).siteId;

  return router
    .add('GET', '/api/sites/:siteId/peers', async ({ params }) => ({ body: { peers: await replication(siteOf(params)).peers() } }))
    .add('POST', '/api/sites/:siteId/peers', async ({ params, body }) => {
      const siteId = siteOf(params);
      const { otherSiteId } = parseInput(PairSitesRequestSchema, body);
      if (otherSiteId === siteId) throw new ProblemError('bad-request', 'a site cannot be paired with itself');
      const other = sites.get(otherSiteId);
      // The console holds client certificates for both sites: it mints a one-time token at the other site and hands it to this one.
      const token = await replication(otherSiteId).mintPairingToken();
      const apiAddress = other.agent?.apiAddress ?? other.address;
      const peer = await replication(siteId).pairWith({ apiAddress, token: token.token, fingerprint: token.certificateFingerprint });
      return { status: 201, body: peer };
    })
    .add('GET', '/api/sites/:siteId/sessions', async ({ params }) => ({ body: { sessions: await replication(siteOf(params)).sessions() } }))
    .add('POST', '/api/sites/:siteId/sessions', async ({ params, body }) => ({
      status: 201,
      body: await replication(siteOf(params)).createSession(parseInput(CreateSessionRequestSchema, body)),
    }))
    .add('GET', '/api/sites/:siteId/sessions/:name', async ({ params }) => {
      const { siteId, name } = parseInput(SessionParams, params);
      return { body: await replication(siteId).session(name) };
    })
    .add('PATCH', '/api/sites/:siteId/sessions/:name', async ({ params, body }) => {
      const { siteId, name } = parseInput(SessionParams, params);
      return { body: await replication(siteId).updateSession(name, parseInput(UpdateSessionRequestSchema, body ?? {})) };
    })
    .add('POST', '/api/sites/:siteId/sessions/:name/ship-now', async ({ params }) => {
      const { siteId, name } = parseInput(SessionParams, params);
      return { body: await replication(siteId).shipNow(name) };
    })
    .add('POST', '/api/sites/:siteId/sessions/:name/pairs', async ({ params, body }) => {
      const { siteId, name } = parseInput(SessionParams, params);
      return { status: 201, body: await replication(siteId).addPair(name, parseInput(AddPairRequestSchema, body)) };
    })
    .add('DELETE', '/api/sites/:siteId/sessions/:name/pairs/:volume', async ({ params }) => {
      const { siteId, name, volume } = parseInput(PairParams, params);
      await replication(siteId).removePair(name, volume);
      return { status: 204 };
    })
    .add('POST', '/api/sites/:siteId/sessions/:name/actions/:action', async ({ params, body }) => {
      const { siteId, name, action } = parseInput(ActionParams, params);
      // A failback's options; a recover's journal point (at most one of bookmark, at, seq), forwarded to the agent.
      const options =
        action === 'failback'
          ? parseInput(FailbackOptionsSchema.partial(), body ?? {})
          : action === 'recover'
            ? recoverPoint(parseInput(SessionActionOptionsSchema, body ?? {}))
            : undefined;
      return { body: await replication(siteId).act(name, action, options) };
    })
    .add('GET', '/api/sites/:siteId/sessions/:name/failback-preflight', async ({ params, query }) => {
      const { siteId, name } = parseInput(SessionParams, params);
      return { body: await replication(siteId).preflight(name, parseInput(PreflightQuery, Object.fromEntries(query))) };
    })
    .add('POST', '/api/sites/:siteId/sessions/:name/verify', async ({ params }) => {
      const { siteId, name } = parseInput(SessionParams, params);
      return { body: await replication(siteId).verify(name) };
    })
    .add('GET', '/api/sites/:siteId/sessions/:name/events', async ({ params, query }) => {
      const { siteId, name } = parseInput(SessionParams, params);
      const { limit } = parseInput(EventsQuery, Object.fromEntries(query));
      return { body: { events: await replication(siteId).sessionEvents(name, limit) } };
    })
    .add('GET', '/api/sites/:siteId/sessions/:name/history', async ({ params, query }) => {
      const { siteId, name } = parseInput(SessionParams, params);
      return { body: await replication(siteId).sessionHistory(name, parseInput(SessionHistoryQuerySchema, Object.fromEntries(query))) };
    })
    .add('GET', '/api/sites/:siteId/sessions/:name/report', async ({ params, query }) => {
      const { siteId, name } = parseInput(SessionParams, params);
      const { format, historySeconds } = parseInput(ReportQuerySchema, Object.fromEntries(query));
      const options: ReportOptions = { eventLimit: reportEventLimit, historySeconds, historyPoints: reportHistoryPoints };
      const document = await buildSessionReport(siteAccess(sites), sites.get(siteId).site, name, options);
      return { body: await renderReport(document, format) };
    })
    .add('GET', '/api/sites/:siteId/clusters', async ({ params }) => ({ body: { clusters: await replication(siteOf(params)).clusters() } }))
    .add('GET', '/api/sites/:siteId/clusters/:name', async ({ params }) => {
      const { siteId, name } = parseInput(ClusterParams, params);
      return { body: await replication(siteId).cluster(name) };
    })
    .add('GET', '/api/sites/:siteId/clusters/:name/history', async ({ params, query }) => {
      const { siteId, name } = parseInput(ClusterParams, params);
      return { body: await replication(siteId).clusterHistory(name, parseInput(HistoryQuery, Object.fromEntries(query)).limit) };
    })
    .add('GET', '/api/sites/:siteId/clusters/:name/report', async ({ params, query }) => {
      const { siteId, name } = parseInput(ClusterParams, params);
      const { format, historySeconds } = parseInput(ReportQuerySchema, Object.fromEntries(query));
      const options: ReportOptions = { eventLimit: reportEventLimit, historySeconds, historyPoints: reportHistoryPoints };
      const document = await buildClusterReport(siteAccess(sites), sites.get(siteId).site, name, options);
      return { body: await renderReport(document, format) };
    });
}
