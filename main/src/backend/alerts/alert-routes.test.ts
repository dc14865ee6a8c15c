import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertListSchema, AlertSettingsSchema, AuditListSchema } from '@tandem/contract';
import { initAgent, pairingToken, startAgent, type RunningAgent } from '../../../../scripts/lib/agents.mjs';
import { startBackend, type RunningBackend } from '../backend.ts';

/**
 * The alert routes of the console backend against a real agent: the site's
 * alerts and settings read and changed through the backend; bodies the
 * backend refuses (a negative threshold: `invalid-threshold`, unknown
 * fields) never reach the agent (its audit trail shows no such call); the
 * agent's own refusals (an unknown session) keep their problem codes.
 */
describe('alerts through the backend with a real agent', { timeout: 120_000 }, () => {
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

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-alerts-backend-'));
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

  it('reads the alerts and the settings, and changes the settings', async () => {
    const alerts = await call('GET', `/api/sites/${siteId}/alerts?recent=5`);
    expect(alerts.status).toBe(200);
    expect(AlertListSchema.parse(alerts.body)).toMatchObject({ site: 'alpha', active: [], recent: [] });
    const changed = await call('PUT', `/api/sites/${siteId}/alerts/settings`, { poolFullPercent: 85, sessionDefaults: { rpoTargetSeconds: 120 } });
    expect(changed.status).toBe(200);
    expect(AlertSettingsSchema.parse(changed.body)).toEqual({
      poolFullPercent: 85,
      webhookUrl: null,
      sessionDefaults: { rpoTargetSeconds: 120, linkDownSeconds: 30, backlogPercent: 80, enabled: true },
    });
    expect(AlertSettingsSchema.parse((await call('GET', `/api/sites/${siteId}/alerts/settings`)).body).poolFullPercent).toBe(85);
  });

  it('refuses bad thresholds before the agent, and passes the agent\'s refusals on with their codes', async () => {
    const before = AuditListSchema.parse(await backend.sites.client(siteId).audit({ limit: 1000 })).entries.length;
    expect(await call('PUT', `/api/sites/${siteId}/alerts/settings`, { poolFullPercent: -1 })).toMatchObject({ status: 400, body: { problem: 'invalid-threshold' } });
    expect(await call('PUT', `/api/sites/${siteId}/alerts/settings`, { poolFullPercent: 'full' })).toMatchObject({ status: 400, body: { problem: 'bad-request' } });
    expect(await call('PUT', `/api/sites/${siteId}/sessions/gold/alert-thresholds`, { linkDownSeconds: -3 })).toMatchObject({
      status: 400,
      body: { problem: 'invalid-threshold', message: 'linkDownSeconds: linkDownSeconds must be above 0 seconds' },
    });
    expect(await call('PUT', `/api/sites/${siteId}/sessions/gold/alert-thresholds`, { rpo: 3 })).toMatchObject({ status: 400, body: { problem: 'bad-request' } });
    const after = AuditListSchema.parse(await backend.sites.client(siteId).audit({ limit: 1000 })).entries;
    expect(after.length).toBe(before);
    // A well-formed change for a session the agent does not have: the agent's not-found, audited there.
    expect(await call('PUT', `/api/sites/${siteId}/sessions/gold/alert-thresholds`, { linkDownSeconds: 5 })).toMatchObject({ status: 404, body: { problem: 'not-found' } });
    const audited = AuditListSchema.parse(await backend.sites.client(siteId).audit({ limit: 1000 })).entries;
    expect(audited.at(-1)).toMatchObject({ method: 'PUT', route: '/v1/sessions/:name/alert-thresholds', session: 'gold', status: 404, problem: 'not-found' });
  });
});
