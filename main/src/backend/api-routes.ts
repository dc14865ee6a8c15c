import { z } from 'zod';
import {
  AuditListQuerySchema,
  CreateSnapshotRequestSchema,
  CreateVolumeRequestSchema,
  ResizeVolumeRequestSchema,
  SetClientRoleRequestSchema,
  TrackMapQuerySchema,
  VolumeNameSchema,
} from '@tandem/contract';
import { ConnectSiteRequestSchema, ProbeSiteRequestSchema } from '../shared/console-api.ts';
import { parseInput, Router } from './router.ts';
import type { SiteManager } from './site-manager.ts';

const VolumeParams = z.object({ siteId: z.string().min(1), name: VolumeNameSchema });
const TrackParams = VolumeParams.extend({ track: z.coerce.number().int().min(0) });
const SiteParams = z.object({ siteId: z.string().min(1) });
const ClientParams = SiteParams.extend({ serial: z.string().regex(/^[0-9A-Fa-f:]{1,128}$/, 'a serial is hexadecimal') });

/** The backend's JSON API for the renderer (see shared/console-api.ts for the shapes). */
export function consoleRoutes(sites: SiteManager): Router {
  const client = (params: Record<string, string>) => sites.client(parseInput(SiteParams, params).siteId);
  return new Router()
    .add('GET', '/api/sites', async () => ({ body: { sites: sites.list() } }))
    .add('POST', '/api/sites/probe', async ({ body }) => ({ body: await sites.probe(parseInput(ProbeSiteRequestSchema, body).address) }))
    .add('POST', '/api/sites', async ({ body }) => ({ status: 201, body: await sites.connect(parseInput(ConnectSiteRequestSchema, body)) }))
    .add('GET', '/api/sites/:siteId', async ({ params }) => ({ body: sites.get(parseInput(SiteParams, params).siteId) }))
    .add('DELETE', '/api/sites/:siteId', async ({ params }) => {
      await sites.remove(parseInput(SiteParams, params).siteId);
      return { status: 204 };
    })
    .add('GET', '/api/sites/:siteId/audit', async ({ params, query }) => {
      const { since, limit, session } = parseInput(AuditListQuerySchema, Object.fromEntries(query));
      return { body: await client(params).audit({ since, limit, session }) };
    })
    .add('GET', '/api/sites/:siteId/clients', async ({ params }) => ({ body: await client(params).clients() }))
    .add('PATCH', '/api/sites/:siteId/clients/:serial', async ({ params, body }) => {
      const { serial } = parseInput(ClientParams, params);
      return { body: await client(params).setClientRole(serial, parseInput(SetClientRoleRequestSchema, body)) };
    })
    .add('DELETE', '/api/sites/:siteId/clients/:serial', async ({ params }) => {
      const { serial } = parseInput(ClientParams, params);
      return { body: await client(params).revokeClient(serial) };
    })
    .add('GET', '/api/sites/:siteId/pool', async ({ params }) => ({ body: await client(params).pool() }))
    .add('GET', '/api/sites/:siteId/volumes', async ({ params }) => ({ body: await client(params).listVolumes() }))
    .add('POST', '/api/sites/:siteId/volumes', async ({ params, body }) => ({
      status: 201,
      body: await client(params).createVolume(parseInput(CreateVolumeRequestSchema, body)),
    }))
    .add('GET', '/api/sites/:siteId/volumes/:name', async ({ params }) => {
      const { name } = parseInput(VolumeParams, params);
      return { body: await client(params).getVolume(name) };
    })
    .add('PATCH', '/api/sites/:siteId/volumes/:name', async ({ params, body }) => {
      const { name } = parseInput(VolumeParams, params);
      return { body: await client(params).resizeVolume(name, parseInput(ResizeVolumeRequestSchema, body)) };
    })
    .add('DELETE', '/api/sites/:siteId/volumes/:name', async ({ params }) => {
      const { name } = parseInput(VolumeParams, params);
      await client(params).deleteVolume(name);
      return { status: 204 };
    })
    .add('POST', '/api/sites/:siteId/volumes/:name/snapshots', async ({ params, body }) => {
      const { name } = parseInput(VolumeParams, params);
      return { status: 201, body: await client(params).createSnapshot(name, parseInput(CreateSnapshotRequestSchema, body)) };
    })
    .add('GET', '/api/sites/:siteId/volumes/:name/track-map', async ({ params, query }) => {
      const { name } = parseInput(VolumeParams, params);
      return { body: await client(params).trackMap(name, parseInput(TrackMapQuerySchema, Object.fromEntries(query))) };
    })
    .add('GET', '/api/sites/:siteId/volumes/:name/tracks/:track', async ({ params }) => {
      const { name, track } = parseInput(TrackParams, params);
      return { body: await client(params).track(name, track) };
    });
}
