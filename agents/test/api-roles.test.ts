/**
 * Every control API route says who may call it: the app is built with a
 * collector of its routes, and each one (HEAD aside, which follows its GET)
 * must carry the role of the contract's `agentRouteRoles`, which in turn
 * names no route the agent does not have. A route missing from the table
 * stops the app from starting.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentRouteRoles, roleAllows, roles, type AgentInfo } from '@tandem/contract';
import { apiApp, type ApiDependencies } from '../src/api/app.ts';
import { certificateRole } from '../src/api/auth.ts';
import { StorageEngine } from '../src/storage/engine.ts';
import { initDataDir } from '../src/storage/init.ts';
import { initTls, loadServerTls } from '../src/tls/files.ts';

let root: string;
let engine: StorageEngine;
let deps: ApiDependencies;
const apps: FastifyInstance[] = [];

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'tandem-api-roles-'));
  const dataDir = path.join(root, 'data');
  const identity = await initDataDir(dataDir, { site: 'east' });
  await initTls(dataDir, identity);
  const tls = await loadServerTls(dataDir);
  engine = await StorageEngine.open(dataDir);
  const info: AgentInfo = {
    site: identity.site,
    agentId: identity.agentId,
    version: 'test',
    trackSize: identity.trackSize,
    startedAt: new Date().toISOString(),
    apiAddress: 'inject',
    nbdAddress: null,
    nbdSocket: null,
    certificateFingerprint: tls.fingerprint,
  };
  deps = { engine, authority: tls.authority, agentInfo: () => info };
});

afterAll(async () => {
  for (const app of apps) await app.close();
  await engine?.close();
  await rm(root, { recursive: true, force: true });
});

describe('route roles', () => {
  it('gives every registered route the role the contract table names, and the table names only registered routes', async () => {
    const app = Fastify();
    apps.push(app);
    const registered = new Map<string, { config?: { access?: unknown } }>();
    await app.register(async (instance) => {
      instance.addHook('onRoute', (route) => {
        const methods = Array.isArray(route.method) ? route.method : [route.method];
        for (const method of methods) if (method !== 'HEAD') registered.set(`${method} ${route.url}`, route);
      });
      await instance.register(apiApp, deps);
    });
    await app.ready();
    // Read once every onRoute hook ran (apiApp's sets the role on the route's options).
    const seen = new Map([...registered].map(([route, options]) => [route, options.config?.access]));
    const table = agentRouteRoles as Record<string, string>;
    expect(seen.size).toBeGreaterThan(40);
    for (const [route, access] of seen) {
      expect(table[route], `${route} is missing from agentRouteRoles`).toBeDefined();
      expect(access, route).toBe(table[route]);
    }
    expect([...seen.keys()].sort()).toEqual(Object.keys(table).sort());
  });

  it('reads need monitor; nothing that changes state is open to a monitor', () => {
    for (const [route, access] of Object.entries(agentRouteRoles)) {
      if (access === 'public') continue;
      if (route.startsWith('GET ')) expect(access, route).toBe(route === 'GET /v1/clients' ? 'administrator' : 'monitor');
      else expect(access, route).not.toBe('monitor');
    }
    expect(agentRouteRoles['POST /v1/sessions/:name/actions/:action']).toBe('operator');
    expect(agentRouteRoles['DELETE /v1/volumes/:name']).toBe('administrator');
  });

  it('refuses to start with a route the table does not know', async () => {
    const app = Fastify();
    apps.push(app);
    void app.register(async (instance) => {
      await instance.register(apiApp, deps);
      instance.post('/v1/forgotten', async () => ({}));
    });
    await expect(app.ready()).rejects.toThrow(/POST \/v1\/forgotten has no role in the contract's agentRouteRoles/);
  });
});

describe('roles', () => {
  it('rank monitor < operator < administrator', () => {
    expect(roles.filter((held) => roleAllows(held, 'operator'))).toEqual(['operator', 'administrator']);
    expect(roleAllows('monitor', 'monitor')).toBe(true);
    expect(roleAllows('operator', 'administrator')).toBe(false);
  });

  it('reads the role from the certificate subject OU; none is a certificate from before roles (administrator)', () => {
    expect(certificateRole('tandem-role:operator')).toEqual({ role: 'operator', roleSource: 'certificate' });
    expect(certificateRole(['Storage', 'tandem-role:monitor'])).toEqual({ role: 'monitor', roleSource: 'certificate' });
    expect(certificateRole(undefined)).toEqual({ role: 'administrator', roleSource: 'legacy' });
    expect(certificateRole('Storage team')).toEqual({ role: 'administrator', roleSource: 'legacy' });
    expect(certificateRole('tandem-role:root')).toEqual({ role: null, roleSource: 'certificate' });
    expect(certificateRole(['tandem-role:monitor', 'tandem-role:administrator'])).toEqual({ role: null, roleSource: 'certificate' });
  });
});
