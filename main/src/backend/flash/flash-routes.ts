import { z } from 'zod';
import {
  EstablishFlashRequestSchema,
  FlashRefreshRequestSchema,
  FlashReverseRequestSchema,
  FlashSessionNameSchema,
  FlashUpdateRequestSchema,
  FlashWithdrawRequestSchema,
  ProblemError,
  TrackMapQuerySchema,
} from '@tandem/contract';
import { parseInput, type Router } from '../router.ts';
import type { SiteManager } from '../site-manager.ts';
import { FlashClient } from './flash-client.ts';

const SiteParams = z.object({ siteId: z.string().min(1) });
const SessionParams = SiteParams.extend({ name: FlashSessionNameSchema });
const PairParams = SessionParams.extend({ pair: z.string().min(1).max(128) });
const EventsQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) });

/**
 * Flash copy routes for the renderer: establish, list, refresh, reverse,
 * withdraw, forget, change the background copy, a session's events and a
 * pair's copied-track map.
 * Thin proxies to the site's agent (flash copy never leaves one agent);
 * bodies are validated here with the contract's schemas before any agent
 * is called, and the agent's answers by the client.
 */
export function flashRoutes(sites: SiteManager, router: Router): Router {
  const flash = (siteId: string) => new FlashClient(sites.client(siteId));
  const siteOf = (params: Record<string, string>) => parseInput(SiteParams, params).siteId;

  return router
    .add('GET', '/api/sites/:siteId/flash-sessions', async ({ params }) => ({ body: { sessions: await flash(siteOf(params)).sessions() } }))
    .add('POST', '/api/sites/:siteId/flash-sessions', async ({ params, body }) => {
      const siteId = siteOf(params);
      const request = parseInput(EstablishFlashRequestSchema, body);
      refuseOverlappingPairs(request.pairs);
      return { status: 201, body: await flash(siteId).establish(request) };
    })
    .add('GET', '/api/sites/:siteId/flash-sessions/:name', async ({ params }) => {
      const { siteId, name } = parseInput(SessionParams, params);
      return { body: await flash(siteId).session(name) };
    })
    .add('PATCH', '/api/sites/:siteId/flash-sessions/:name', async ({ params, body }) => {
      const { siteId, name } = parseInput(SessionParams, params);
      const request = parseInput(FlashUpdateRequestSchema, body);
      if (Object.values(request).every((value) => value === undefined)) throw new ProblemError('bad-request', 'say what to change: backgroundCopy, rateMiBps or paused');
      return { body: await flash(siteId).update(name, request) };
    })
    .add('DELETE', '/api/sites/:siteId/flash-sessions/:name', async ({ params }) => {
      const { siteId, name } = parseInput(SessionParams, params);
      await flash(siteId).remove(name);
      return { status: 204 };
    })
    .add('POST', '/api/sites/:siteId/flash-sessions/:name/refresh', async ({ params, body }) => {
      const { siteId, name } = parseInput(SessionParams, params);
      return { body: await flash(siteId).refresh(name, parseInput(FlashRefreshRequestSchema, body ?? {})) };
    })
    .add('POST', '/api/sites/:siteId/flash-sessions/:name/reverse', async ({ params, body }) => {
      const { siteId, name } = parseInput(SessionParams, params);
      return { body: await flash(siteId).reverse(name, parseInput(FlashReverseRequestSchema, body ?? {})) };
    })
    .add('POST', '/api/sites/:siteId/flash-sessions/:name/withdraw', async ({ params, body }) => {
      const { siteId, name } = parseInput(SessionParams, params);
      return { body: await flash(siteId).withdraw(name, parseInput(FlashWithdrawRequestSchema, body ?? {})) };
    })
    .add('GET', '/api/sites/:siteId/flash-sessions/:name/events', async ({ params, query }) => {
      const { siteId, name } = parseInput(SessionParams, params);
      const { limit } = parseInput(EventsQuery, Object.fromEntries(query));
      return { body: { events: await flash(siteId).sessionEvents(name, limit) } };
    })
    .add('GET', '/api/sites/:siteId/flash-sessions/:name/pairs/:pair/track-map', async ({ params, query }) => {
      const { siteId, name, pair } = parseInput(PairParams, params);
      return { body: await flash(siteId).trackMap(name, pair, parseInput(TrackMapQuerySchema, Object.fromEntries(query))) };
    });
}

/** A volume is in one role once per group: never its own target, never the target of two pairs, never both a source and a target. */
function refuseOverlappingPairs(pairs: { source: string; target: string }[]): void {
  const sources = new Set(pairs.map((pair) => pair.source));
  const targets = new Set<string>();
  for (const pair of pairs) {
    if (pair.source === pair.target) throw new ProblemError('bad-request', `pairs: ${pair.source} cannot be its own flash copy target`);
    if (targets.has(pair.target)) throw new ProblemError('bad-request', `pairs: ${pair.target} is the target of more than one pair`);
    if (sources.has(pair.target)) throw new ProblemError('bad-request', `pairs: ${pair.target} is both a source and a target in this group`);
    targets.add(pair.target);
  }
}
