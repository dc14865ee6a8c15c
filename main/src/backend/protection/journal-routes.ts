import { z } from 'zod';
import {
  BookmarkRequestSchema,
  ImageAccessInfoSchema,
  ImageAccessListSchema,
  ImageAccessRequestSchema,
  JournalPointListSchema,
  JournalPointSchema,
  JournalPointsQuerySchema,
  JournalViewSchema,
  SessionNameSchema,
  SetJournalRequestSchema,
} from '@tandem/contract';
import { parseInput, type Router } from '../router.ts';
import type { SiteManager } from '../site-manager.ts';

const SiteParams = z.object({ siteId: z.string().min(1) });
const SessionParams = SiteParams.extend({ name: SessionNameSchema });
const ImageParams = SessionParams.extend({ id: z.coerce.number().int().min(1) });

/** Agent paths of continuous data protection (contract/PROTOCOL.md, "Continuous data protection"). */
export const journalPaths = {
  journal: (session: string) => `/v1/sessions/${encodeURIComponent(session)}/journal`,
  points: (session: string) => `/v1/sessions/${encodeURIComponent(session)}/journal/points`,
  bookmarks: (session: string) => `/v1/sessions/${encodeURIComponent(session)}/journal/bookmarks`,
  images: (session: string) => `/v1/sessions/${encodeURIComponent(session)}/images`,
  image: (session: string, id: number) => `/v1/sessions/${encodeURIComponent(session)}/images/${id}`,
} as const;

/**
 * Journal routes for the renderer: a session's CDP journal, its points and
 * bookmarks, and instant image access. Thin proxies to the site's agent (the
 * renderer addresses the session's secondary site; any other agent answers
 * 409 `invalid-state`, passed on); bodies validated here with the contract's
 * schemas, answers by the agent client.
 */
export function journalRoutes(sites: SiteManager, router: Router): Router {
  const agent = (params: Record<string, string>) => sites.client(parseInput(SiteParams, params).siteId);
  const session = (params: Record<string, string>) => parseInput(SessionParams, params).name;
  return router
    .add('GET', '/api/sites/:siteId/sessions/:name/journal', async ({ params }) => ({
      body: await agent(params).request('GET', journalPaths.journal(session(params)), JournalViewSchema),
    }))
    .add('PUT', '/api/sites/:siteId/sessions/:name/journal', async ({ params, body }) => {
      const name = session(params);
      const policy = parseInput(SetJournalRequestSchema, body);
      return { body: await agent(params).request('PUT', journalPaths.journal(name), JournalViewSchema, policy) };
    })
    .add('DELETE', '/api/sites/:siteId/sessions/:name/journal', async ({ params }) => {
      await agent(params).perform('DELETE', journalPaths.journal(session(params)));
      return { status: 204 };
    })
    .add('GET', '/api/sites/:siteId/sessions/:name/journal/points', async ({ params, query }) => {
      const name = session(params);
      const { every } = parseInput(JournalPointsQuerySchema, Object.fromEntries(query));
      const search = new URLSearchParams({ every: String(every) });
      return { body: await agent(params).request('GET', `${journalPaths.points(name)}?${search}`, JournalPointListSchema) };
    })
    .add('POST', '/api/sites/:siteId/sessions/:name/journal/bookmarks', async ({ params, body }) => {
      const name = session(params);
      const bookmark = parseInput(BookmarkRequestSchema, body);
      return { status: 201, body: await agent(params).request('POST', journalPaths.bookmarks(name), JournalPointSchema, bookmark) };
    })
    .add('GET', '/api/sites/:siteId/sessions/:name/images', async ({ params }) => ({
      body: await agent(params).request('GET', journalPaths.images(session(params)), ImageAccessListSchema),
    }))
    .add('POST', '/api/sites/:siteId/sessions/:name/images', async ({ params, body }) => {
      const name = session(params);
      const access = parseInput(ImageAccessRequestSchema, body);
      return { status: 201, body: await agent(params).request('POST', journalPaths.images(name), ImageAccessInfoSchema, access) };
    })
    .add('DELETE', '/api/sites/:siteId/sessions/:name/images/:id', async ({ params }) => {
      const { name, id } = parseInput(ImageParams, params);
      await agent(params).perform('DELETE', journalPaths.image(name, id));
      return { status: 204 };
    });
}
