import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentCli, freePort, initAgent, pairingToken, startAgent, type RunningAgent } from '../../../scripts/lib/agents.mjs';
import type { ConsoleEvent, SiteSummary } from '../shared/console-api.ts';
import { startBackend, type RunningBackend } from './backend.ts';

/**
 * The backend against a real agent on loopback: probe, refused pairings,
 * pairing, mTLS calls, event fan-in, and reconnect after the agent restarts.
 */
describe('backend with a real agent', () => {
  let dir: string;
  let agent: RunningAgent;
  let apiPort: number;
  let backend: RunningBackend;
  const events: ConsoleEvent[] = [];
  let siteId = '';

  const call = async (method: string, route: string, body?: unknown) => {
    const response = await fetch(`${backend.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${backend.token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as Record<string, unknown> };
  };
  const waitFor = async (predicate: () => boolean, what: string, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const siteState = () => backend.sites.list()[0]?.connection.state;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-integration-'));
    await initAgent({ dataDir: path.join(dir, 'agent'), site: 'primary' });
    apiPort = await freePort();
    agent = await startAgent({ dataDir: path.join(dir, 'agent'), apiPort });
    backend = await startBackend({
      configDir: path.join(dir, 'console'),
      rendererDir: path.join(dir, 'none'),
      backoff: { initialMs: 100, maxMs: 500, factor: 2 },
    });
    backend.sites.subscribe((event) => events.push(event));
  }, 120_000);

  afterAll(async () => {
    await backend?.close();
    await agent?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('probes the agent: site name and certificate fingerprint, no credentials needed', async () => {
    const { certificateFingerprint } = await pairingToken(agent.dataDir);
    const probe = await call('POST', '/api/sites/probe', { address: agent.apiAddress });
    expect(probe.status).toBe(200);
    expect(probe.body).toMatchObject({ site: 'primary', certificateFingerprint, alreadyConnected: false });
  });

  it('refuses a wrong token and a mismatched fingerprint, storing nothing', async () => {
    const { certificateFingerprint } = await pairingToken(agent.dataDir);
    const wrongToken = await call('POST', '/api/sites', { address: agent.apiAddress, token: 'tdm_not-a-token', expectedFingerprint: certificateFingerprint });
    expect(wrongToken.status).toBe(403);
    expect(wrongToken.body).toMatchObject({ problem: 'token-invalid' });
    const { token } = await pairingToken(agent.dataDir);
    const mismatch = await call('POST', '/api/sites', { address: agent.apiAddress, token, expectedFingerprint: 'AB:'.repeat(31) + 'AB' });
    expect(mismatch.status).toBe(502);
    expect(mismatch.body).toMatchObject({ problem: 'certificate-mismatch' });
    expect((await call('GET', '/api/sites')).body).toEqual({ sites: [] });
  });

  it('pairs, connects over mutual TLS and reports the site connected', async () => {
    const { token, certificateFingerprint } = await pairingToken(agent.dataDir);
    const connected = await call('POST', '/api/sites', { address: agent.apiAddress, token, expectedFingerprint: certificateFingerprint });
    expect(connected.status).toBe(201);
    siteId = String(connected.body.id);
    await waitFor(() => siteState() === 'connected', 'connected state');
    const site = (await call('GET', '/api/sites')).body.sites as SiteSummary[];
    expect(site[0]).toMatchObject({ site: 'primary', certificateFingerprint, agent: { site: 'primary' } });
    // A token made without --role pairs as administrator; the agent says so for the console's certificate.
    expect(site[0]).toMatchObject({ role: 'administrator', agent: { caller: { role: 'administrator', roleSource: 'certificate' } } });
  });

  it('follows a role an administrator sets at the agent, at once (client.role event)', async () => {
    const serial = backend.sites.list()[0].agent!.caller!.serial;
    await agentCli(['clients', 'set-role', serial, 'monitor', '--data', agent.dataDir]);
    await waitFor(() => backend.sites.list()[0].role === 'monitor', 'role monitor');
    const refused = await call('POST', `/api/sites/${siteId}/volumes`, { name: 'refused', sizeBytes: 1024 * 1024 });
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ problem: 'forbidden-role', detail: { needed: 'administrator', held: 'monitor' } });
    await agentCli(['clients', 'set-role', serial, 'administrator', '--data', agent.dataDir]);
    await waitFor(() => backend.sites.list()[0].role === 'administrator', 'role administrator again');
  }, 60_000);

  it('manages volumes through the agent and fans its events in', async () => {
    const created = await call('POST', `/api/sites/${siteId}/volumes`, { name: 'vol1', sizeBytes: 64 * 1024 * 1024 });
    expect(created.status).toBe(201);
    await waitFor(() => events.some((event) => event.kind === 'agent-event' && event.event.type === 'volume.created' && event.event.subject === 'vol1'), 'volume.created event');
    const snapshot = await call('POST', `/api/sites/${siteId}/volumes/vol1/snapshots`, { name: 'vol1-snap' });
    expect(snapshot.body).toMatchObject({ kind: 'snapshot', source: 'vol1' });
    const map = await call('GET', `/api/sites/${siteId}/volumes/vol1/track-map?buckets=16`);
    expect(map.body).toMatchObject({ volume: 'vol1', buckets: 16, trackCount: 1024 });
    const duplicate = await call('POST', `/api/sites/${siteId}/volumes`, { name: 'vol1', sizeBytes: 4096 });
    expect(duplicate.body).toMatchObject({ problem: 'already-exists' });
  });

  it('shows the loss of the agent and reconnects when it is back', async () => {
    await agent.stop();
    await waitFor(() => siteState() === 'reconnecting', 'reconnecting state');
    expect(backend.sites.list()[0].connection.lastProblem?.problem).toBe('agent-unreachable');
    agent = await startAgent({ dataDir: agent.dataDir, apiPort });
    await waitFor(() => siteState() === 'connected', 'connected again');
    // Events recorded while the console was away are not lost: created via the CLI, seen through the stream.
    await agentCli(['volume', 'create', 'vol2', '1M', '--data', agent.dataDir]);
    await waitFor(() => events.some((event) => event.kind === 'agent-event' && event.event.subject === 'vol2'), 'vol2 event');
  });

  it('removing the site stops its stream and forgets it', async () => {
    const removed = await call('DELETE', `/api/sites/${siteId}`);
    expect(removed.status).toBe(204);
    expect((await call('GET', '/api/sites')).body).toEqual({ sites: [] });
  });
});
