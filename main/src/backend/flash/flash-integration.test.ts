import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlashSessionInfoSchema, FlashSessionListSchema, FlashTrackMapSchema, flashEventTypes } from '@tandem/contract';
import { initAgent, pairingToken, startAgent, type RunningAgent } from '../../../../scripts/lib/agents.mjs';
import type { ConsoleEvent } from '../../shared/console-api.ts';
import { startBackend, type RunningBackend } from '../backend.ts';

const mib = 1024 * 1024;

/**
 * The flash routes of the console backend against a real agent on loopback:
 * establish, list, track map, pause, withdraw and forget go through to the
 * agent and back with the contract's shapes; the agent's refusals keep their
 * problem codes; flash events reach the console's event fan-in.
 */
describe('flash copy through the backend with a real agent', () => {
  let dir: string;
  let agent: RunningAgent;
  let backend: RunningBackend;
  let base = '';
  const events: ConsoleEvent[] = [];

  const call = async (method: string, route: string, body?: unknown) => {
    const response = await fetch(`${backend.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${backend.token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as Record<string, unknown> };
  };
  const waitFor = async (predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await predicate())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-flash-backend-'));
    await initAgent({ dataDir: path.join(dir, 'agent'), site: 'primary' });
    agent = await startAgent({ dataDir: path.join(dir, 'agent') });
    backend = await startBackend({ configDir: path.join(dir, 'console'), rendererDir: path.join(dir, 'none'), backoff: { initialMs: 100, maxMs: 500, factor: 2 } });
    backend.sites.subscribe((event) => events.push(event));
    const { token, certificateFingerprint } = await pairingToken(agent.dataDir);
    const connected = await call('POST', '/api/sites', { address: agent.apiAddress, token, expectedFingerprint: certificateFingerprint });
    expect(connected.status).toBe(201);
    base = `/api/sites/${String(connected.body.id)}`;
    await waitFor(() => backend.sites.list()[0]?.connection.state === 'connected', 'connected');
    for (const [name, sizeBytes] of [
      ['db', 16 * mib],
      ['db-pit', 16 * mib],
      ['small', 8 * mib],
    ] as const) {
      expect((await call('POST', `${base}/volumes`, { name, sizeBytes })).status).toBe(201);
    }
  }, 120_000);

  afterAll(async () => {
    await backend?.close();
    await agent?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("passes the agent's refusals through with their problem codes and establishes nothing", async () => {
    const mismatch = await call('POST', `${base}/flash-sessions`, { pairs: [{ source: 'db', target: 'small' }] });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body).toMatchObject({ problem: 'invalid-size' });
    const unknown = await call('POST', `${base}/flash-sessions`, { pairs: [{ source: 'db', target: 'nowhere' }] });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ problem: 'not-found' });
    expect(FlashSessionListSchema.parse((await call('GET', `${base}/flash-sessions`)).body).sessions).toEqual([]);
  });

  it('establishes, lists, maps, pauses, withdraws and forgets a session; flash events reach the console', async () => {
    const established = await call('POST', `${base}/flash-sessions`, { name: 'nightly', pairs: [{ source: 'db', target: 'db-pit' }], rateMiBps: 1, incremental: true });
    expect(established.status).toBe(201);
    const session = FlashSessionInfoSchema.parse(established.body);
    expect(session).toMatchObject({ name: 'nightly', options: { backgroundCopy: true, rateMiBps: 1, incremental: true }, pairs: [{ source: 'db', target: 'db-pit', totalTracks: 256 }] });
    expect(session.pointInTime).not.toBeNull();
    await waitFor(
      () => events.some((event) => event.kind === 'agent-event' && event.event.type === flashEventTypes.established && event.event.subject === 'nightly'),
      'flash.established event',
    );

    const list = FlashSessionListSchema.parse((await call('GET', `${base}/flash-sessions`)).body);
    expect(list.sessions.map((each) => each.name)).toEqual(['nightly']);
    const pair = session.pairs[0];
    const map = FlashTrackMapSchema.parse((await call('GET', `${base}/flash-sessions/nightly/pairs/${pair.id}/track-map?buckets=16`)).body);
    expect(map).toMatchObject({ session: 'nightly', pair: pair.id, target: 'db-pit', trackCount: 256, buckets: 16, bucketTracks: 16 });
    expect(map.runs.reduce((sum, [repeat]) => sum + repeat, 0)).toBe(16);

    const paused = await call('PATCH', `${base}/flash-sessions/nightly`, { paused: true });
    expect(paused.status).toBe(200);
    expect(FlashSessionInfoSchema.parse(paused.body).state).toMatch(/suspended|idle-copied/);
    const empty = await call('PATCH', `${base}/flash-sessions/nightly`, {});
    expect(empty.body).toMatchObject({ problem: 'bad-request' });

    const withdrawn = FlashSessionInfoSchema.parse((await call('POST', `${base}/flash-sessions/nightly/withdraw`, {})).body);
    expect(withdrawn.withdrawnAt).toEqual(expect.any(String));
    await waitFor(() => events.some((event) => event.kind === 'agent-event' && event.event.type === flashEventTypes.withdrawn), 'flash.withdrawn event');
    expect((await call('DELETE', `${base}/flash-sessions/nightly`)).status).toBe(204);
    expect((await call('GET', `${base}/flash-sessions/nightly`)).body).toMatchObject({ problem: 'not-found' });
  });
});
