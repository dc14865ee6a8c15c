import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditListSchema } from '@tandem/contract';
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
