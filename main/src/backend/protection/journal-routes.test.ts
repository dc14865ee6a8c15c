import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuditListSchema,
  ImageAccessInfoSchema,
  ImageAccessListSchema,
  JournalPointListSchema,
  JournalPointSchema,
  JournalViewSchema,
  SessionInfoSchema,
} from '@tandem/contract';
import { initAgent, pairingToken, startAgent, type RunningAgent } from '../../../../scripts/lib/agents.mjs';
import { startBackend, type RunningBackend } from '../backend.ts';

/**
 * The journal routes of the console backend against a real agent: bodies the
 * backend refuses (a negative budget, unknown fields, two image points, an
 * empty bookmark name, an image id that is not a number) never reach the
 * agent (its audit trail shows no such call); well-formed calls reach it and
 * its own refusals (a session it does not have) keep their problem codes.
 */
describe('journal routes through the backend with a real agent', { timeout: 120_000 }, () => {
  let dir: string;
  let agent: RunningAgent;
  let backend: RunningBackend;
  let siteId = '';

  const call = async (method: string, route: string, body?: unknown) => {
    const response = await fetch(`${backend.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${backend.token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as unknown };
  };
  const audit = async () => AuditListSchema.parse(await backend.sites.client(siteId).audit({ limit: 1000 })).entries;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-journal-backend-'));
    await initAgent({ dataDir: path.join(dir, 'alpha'), site: 'alpha' });
    agent = await startAgent({ dataDir: path.join(dir, 'alpha') });
    backend = await startBackend({ configDir: path.join(dir, 'console'), rendererDir: path.join(dir, 'none'), backoff: { initialMs: 100, maxMs: 500, factor: 2 } });
    const { token, certificateFingerprint } = await pairingToken(agent.dataDir);
    const added = await call('POST', '/api/sites', { address: agent.apiAddress, token, expectedFingerprint: certificateFingerprint });
    siteId = (added.body as { id: string }).id;
    const deadline = Date.now() + 60_000;
    while (backend.sites.list().some((each) => each.connection.state !== 'connected')) {
      if (Date.now() > deadline) throw new Error('the site did not connect');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }, 180_000);

  afterAll(async () => {
    await backend?.close();
    await agent?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses bad bodies before the agent', async () => {
    const before = (await audit()).length;
    const base = `/api/sites/${siteId}/sessions/gold`;
    expect(await call('PUT', `${base}/journal`, { budgetBytes: -1, requiredWindowSeconds: 3600 })).toMatchObject({ status: 400, body: { problem: 'bad-request' } });
    expect(await call('PUT', `${base}/journal`, { budgetBytes: 1 << 30, requiredWindowSeconds: 3600, size: 3 })).toMatchObject({ status: 400, body: { problem: 'bad-request' } });
    expect(await call('POST', `${base}/journal/bookmarks`, { name: '' })).toMatchObject({ status: 400, body: { problem: 'invalid-name' } });
    expect(await call('POST', `${base}/images`, { bookmark: 'b', seq: 3 })).toMatchObject({ status: 400, body: { problem: 'bad-request' } });
    expect(await call('DELETE', `${base}/images/first`)).toMatchObject({ status: 400, body: { problem: 'bad-request' } });
    expect(await call('GET', `${base}/journal/points?every=-1`)).toMatchObject({ status: 400, body: { problem: 'bad-request' } });
    expect((await audit()).length).toBe(before);
  });

  it('passes well-formed calls to the agent and its refusals on with their codes', async () => {
    const base = `/api/sites/${siteId}/sessions/gold`;
    const notFound = { status: 404, body: { problem: 'not-found', message: 'there is no session named gold' } };
    expect(await call('GET', `${base}/journal`)).toMatchObject(notFound);
    expect(await call('PUT', `${base}/journal`, { budgetBytes: 1 << 30, requiredWindowSeconds: 3600, bookmarkRetentionSeconds: null })).toMatchObject(notFound);
    expect((await audit()).at(-1)).toMatchObject({ method: 'PUT', route: '/v1/sessions/:name/journal', session: 'gold', status: 404, problem: 'not-found' });
    expect(await call('POST', `${base}/journal/bookmarks`, { name: 'before-upgrade' })).toMatchObject(notFound);
    expect((await audit()).at(-1)).toMatchObject({ method: 'POST', route: '/v1/sessions/:name/journal/bookmarks', status: 404 });
    expect(await call('POST', `${base}/images`, { bookmark: 'before-upgrade' })).toMatchObject(notFound);
    expect(await call('DELETE', `${base}/images/4`)).toMatchObject(notFound);
    expect((await audit()).at(-1)).toMatchObject({ method: 'DELETE', route: '/v1/sessions/:name/images/:id', status: 404 });
  });
});

/**
 * A session's journal through the backend with two real agents: the
 * primary's agent refuses it (409 `invalid-state` naming the secondary's
 * site); at the secondary the journal is turned on, bookmarked, an image
 * opened at the bookmark and ended, and the journal turned off, each answer
 * valid by the contract's schema.
 */
describe('a journal through the backend with two real agents', { timeout: 180_000 }, () => {
  let dir: string;
  let primary: RunningAgent;
  let secondary: RunningAgent;
  let backend: RunningBackend;
  const ids = { primary: '', secondary: '' };
  const site = (which: keyof typeof ids) => `/api/sites/${ids[which]}`;

  const call = async (method: string, route: string, body?: unknown) => {
    const response = await fetch(`${backend.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${backend.token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as Record<string, unknown> };
  };
  const ok = async (method: string, route: string, body?: unknown, status = 200) => {
    const answer = await call(method, route, body);
    expect(answer.status, `${method} ${route}: ${JSON.stringify(answer.body)}`).toBe(status);
    return answer.body;
  };
  const waitFor = async <T>(probe: () => Promise<T | false | null | undefined>, what: string, timeoutMs = 90_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await probe();
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-journal-backend2-'));
    await initAgent({ dataDir: path.join(dir, 'primary'), site: 'west' });
    await initAgent({ dataDir: path.join(dir, 'secondary'), site: 'east' });
    [primary, secondary] = await Promise.all([startAgent({ dataDir: path.join(dir, 'primary') }), startAgent({ dataDir: path.join(dir, 'secondary') })]);
    backend = await startBackend({ configDir: path.join(dir, 'console'), rendererDir: path.join(dir, 'none'), backoff: { initialMs: 100, maxMs: 500, factor: 2 } });
    for (const [which, agent] of [
      ['primary', primary],
      ['secondary', secondary],
    ] as const) {
      const { token, certificateFingerprint } = await pairingToken(agent.dataDir);
      ids[which] = String((await ok('POST', '/api/sites', { address: agent.apiAddress, token, expectedFingerprint: certificateFingerprint }, 201)).id);
    }
    await waitFor(async () => backend.sites.list().every((each) => each.connection.state === 'connected'), 'both sites connected');
    await ok('POST', `${site('primary')}/volumes`, { name: 'db', sizeBytes: 16 * 1024 * 1024 }, 201);
    await ok('POST', `${site('secondary')}/volumes`, { name: 'db-copy', sizeBytes: 16 * 1024 * 1024 }, 201);
    await ok('POST', `${site('primary')}/peers`, { otherSiteId: ids.secondary }, 201);
    await ok('POST', `${site('primary')}/sessions`, { name: 'orders', type: 'sync', peer: 'east' }, 201);
    await ok('POST', `${site('primary')}/sessions/orders/pairs`, { h1Volume: 'db', h2Volume: 'db-copy' }, 201);
    await ok('POST', `${site('primary')}/sessions/orders/actions/start`);
    await waitFor(async () => SessionInfoSchema.parse(await ok('GET', `${site('primary')}/sessions/orders`)).state === 'prepared', 'orders prepared');
  }, 240_000);

  afterAll(async () => {
    await backend?.close();
    await Promise.allSettled([primary?.stop(), secondary?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is refused at the primary, and at the secondary turned on, bookmarked, an image opened and ended, turned off', async () => {
    const policy = { budgetBytes: 64 * 1024 * 1024, requiredWindowSeconds: 3600 };
    const atPrimary = await call('PUT', `${site('primary')}/sessions/orders/journal`, policy);
    expect(atPrimary).toMatchObject({ status: 409, body: { problem: 'invalid-state', message: expect.stringContaining('east') } });
    expect(await call('GET', `${site('secondary')}/sessions/orders/journal`)).toMatchObject({ status: 404, body: { problem: 'not-found' } });

    const on = JournalViewSchema.parse(await ok('PUT', `${site('secondary')}/sessions/orders/journal`, policy));
    expect(on).toMatchObject({ session: 'orders', volumes: ['db-copy'], policy: { budgetBytes: policy.budgetBytes, requiredWindowSeconds: 3600, bookmarkRetentionSeconds: null } });
    const bookmark = JournalPointSchema.parse(await ok('POST', `${site('secondary')}/sessions/orders/journal/bookmarks`, { name: 'before-upgrade' }, 201));
    expect(bookmark.bookmark).toBe('before-upgrade');
    const points = JournalPointListSchema.parse(await ok('GET', `${site('secondary')}/sessions/orders/journal/points?every=0`));
    expect(points.points.map((point) => point.bookmark)).toContain('before-upgrade');

    const image = ImageAccessInfoSchema.parse(await ok('POST', `${site('secondary')}/sessions/orders/images`, { bookmark: 'before-upgrade' }, 201));
    expect(image.point.bookmark).toBe('before-upgrade');
    expect(image.exports).toEqual([{ volume: 'db-copy', export: `image-${image.id}-db-copy` }]);
    expect(ImageAccessListSchema.parse(await ok('GET', `${site('secondary')}/sessions/orders/images`)).images.map((each) => each.id)).toEqual([image.id]);
    expect(JournalViewSchema.parse(await ok('GET', `${site('secondary')}/sessions/orders/journal`)).images.map((each) => each.id)).toEqual([image.id]);
    expect(await call('DELETE', `${site('secondary')}/sessions/orders/images/${image.id}`)).toEqual({ status: 204, body: undefined });
    expect(ImageAccessListSchema.parse(await ok('GET', `${site('secondary')}/sessions/orders/images`)).images).toEqual([]);

    expect(await call('DELETE', `${site('secondary')}/sessions/orders/journal`)).toEqual({ status: 204, body: undefined });
    expect(await call('GET', `${site('secondary')}/sessions/orders/journal`)).toMatchObject({ status: 404, body: { problem: 'not-found' } });
  });
});
