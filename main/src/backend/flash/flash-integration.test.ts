import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlashSessionInfoSchema, FlashSessionListSchema, FlashTrackMapSchema, flashEventTypes, type AgentEvent } from '@tandem/contract';
import { initAgent, pairingToken, startAgent, type RunningAgent } from '../../../../scripts/lib/agents.mjs';
import type { ConsoleEvent } from '../../shared/console-api.ts';
import { startBackend, type RunningBackend } from '../backend.ts';

const mib = 1024 * 1024;
const execFileAsync = promisify(execFile);

/**
 * The flash routes of the console backend against a real agent on loopback:
 * establish (contract defaults filled in), list, one session, track maps at
 * the resolution asked for, pause and rate changes, refresh, reverse,
 * withdraw (at once or after the copy), forget, a session's events without
 * the copy-progress ticks. Bodies the backend refuses never reach the agent;
 * the agent's refusals keep their problem codes; flash events reach the
 * console's event fan-in.
 */
describe('flash copy through the backend with a real agent', { timeout: 120_000 }, () => {
  let dir: string;
  let agent: RunningAgent;
  let backend: RunningBackend;
  let siteId = '';
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
  const session = async (name: string) => FlashSessionInfoSchema.parse((await call('GET', `${base}/flash-sessions/${name}`)).body);
  const waitFor = async (predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await predicate())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  /** The agent's whole event log, read with the real client page by page (no filter). */
  const agentLog = async (): Promise<AgentEvent[]> => {
    const all: AgentEvent[] = [];
    for (;;) {
      const { events: page } = await backend.sites.client(siteId).events(all.at(-1)?.id ?? 0, 1000);
      all.push(...page);
      if (page.length < 1000) return all;
    }
  };
  const sessionNames = async () => FlashSessionListSchema.parse((await call('GET', `${base}/flash-sessions`)).body).sessions.map((each) => each.name);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-flash-backend-'));
    await initAgent({ dataDir: path.join(dir, 'agent'), site: 'primary' });
    agent = await startAgent({ dataDir: path.join(dir, 'agent') });
    backend = await startBackend({ configDir: path.join(dir, 'console'), rendererDir: path.join(dir, 'none'), backoff: { initialMs: 100, maxMs: 500, factor: 2 } });
    backend.sites.subscribe((event) => events.push(event));
    const { token, certificateFingerprint } = await pairingToken(agent.dataDir);
    const connected = await call('POST', '/api/sites', { address: agent.apiAddress, token, expectedFingerprint: certificateFingerprint });
    expect(connected.status).toBe(201);
    siteId = String(connected.body.id);
    base = `/api/sites/${siteId}`;
    await waitFor(() => backend.sites.list()[0]?.connection.state === 'connected', 'connected');
    for (const [name, sizeBytes] of [
      ['db', 16 * mib],
      ['db-pit', 16 * mib],
      ['small', 8 * mib],
      // A volume with the flash session's name: its events are not the session's.
      ['nightly', 1 * mib],
    ] as const) {
      expect((await call('POST', `${base}/volumes`, { name, sizeBytes })).status).toBe(201);
    }
    // 4 MiB to copy: at 1 MiB/s the background copy runs long enough for progress ticks, a pause and a withdraw that waits for it.
    await execFileAsync('qemu-io', ['-f', 'raw', '-c', 'write -P 0x31 0 4M', `nbd://${agent.nbdAddress}/db`]);
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
    expect(await sessionNames()).toEqual([]);
  });

  it('refuses bad establish bodies in the backend: the agent records no flash event and has no session', async () => {
    const logBefore = await agentLog();
    const refused = async (body: unknown) => {
      const answer = await call('POST', `${base}/flash-sessions`, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      return answer.body;
    };
    expect(await refused({ pairs: [] })).toMatchObject({ problem: 'bad-request' });
    expect(await refused({ name: '-x', pairs: [{ source: 'db', target: 'db-pit' }] })).toMatchObject({ problem: 'invalid-name' });
    expect(await refused({ pairs: [{ source: 'db', target: 'db' }] })).toMatchObject({ problem: 'bad-request', message: expect.stringContaining('its own') });
    expect(await refused({ pairs: [{ source: 'db', target: 'db-pit' }, { source: 'small', target: 'db-pit' }] })).toMatchObject({
      message: expect.stringContaining('db-pit is the target of more than one pair'),
    });
    expect(await refused({ pairs: [{ source: 'db', target: 'db-pit' }, { source: 'db-pit', target: 'small' }] })).toMatchObject({
      message: expect.stringContaining('db-pit is both a source and a target'),
    });
    expect(await refused({ pairs: [{ source: 'db', target: 'db-pit' }], rateMiBps: 0 })).toMatchObject({ problem: 'bad-request', message: expect.stringContaining('rateMiBps') });
    expect(await refused({ pairs: [{ source: 'db', target: 'db-pit' }], holdTimeoutMs: 5 })).toMatchObject({ problem: 'bad-request' });
    expect(await sessionNames()).toEqual([]);
    expect((await agentLog()).slice(logBefore.length).filter((event) => event.type.startsWith('flash.'))).toEqual([]);
  });

  it('establishes with the contract defaults, lists, maps, lists its events without progress ticks, pauses, withdraws after the copy and forgets', async () => {
    const established = await call('POST', `${base}/flash-sessions`, { name: 'nightly', pairs: [{ source: 'db', target: 'db-pit' }], rateMiBps: 1, incremental: true });
    expect(established.status).toBe(201);
    const created = FlashSessionInfoSchema.parse(established.body);
    expect(created).toMatchObject({
      name: 'nightly',
      state: 'copying',
      coordinated: false,
      options: { backgroundCopy: true, rateMiBps: 1, incremental: true, writeInhibitTarget: false, preserveMirror: false },
      pairs: [{ source: 'db', target: 'db-pit', totalTracks: 256 }],
    });
    expect(created.pointInTime).not.toBeNull();
    await waitFor(
      () => events.some((event) => event.kind === 'agent-event' && event.event.type === flashEventTypes.established && event.event.subject === 'nightly'),
      'flash.established event',
    );

    expect(await sessionNames()).toEqual(['nightly']);
    expect(await session('nightly')).toMatchObject({ name: 'nightly', pairs: [{ id: created.pairs[0].id }] });
    const pair = created.pairs[0];
    const mapOf = async (query: string) => FlashTrackMapSchema.parse((await call('GET', `${base}/flash-sessions/nightly/pairs/${pair.id}/track-map${query}`)).body);
    const coarse = await mapOf('?buckets=16');
    expect(coarse).toMatchObject({ session: 'nightly', pair: pair.id, target: 'db-pit', trackCount: 256, buckets: 16, bucketTracks: 16 });
    expect(coarse.runs.reduce((sum, [repeat]) => sum + repeat, 0)).toBe(16);
    expect(await mapOf('?start=0&count=256&buckets=128')).toMatchObject({ start: 0, count: 256, buckets: 128, bucketTracks: 2 });
    expect(await mapOf('')).toMatchObject({ start: 0, count: 256, bucketTracks: 1 });
    expect((await call('GET', `${base}/flash-sessions/nightly/pairs/${pair.id}/track-map?buckets=0`)).body).toMatchObject({ problem: 'bad-request' });
    expect((await call('GET', `${base}/flash-sessions/nightly/pairs/nope/track-map`)).body).toMatchObject({ problem: 'not-found' });

    // The session's events: its flash events only, not the copy-progress ticks the agent records, nor the volume named nightly.
    await waitFor(async () => (await agentLog()).some((event) => event.type === flashEventTypes.copyProgress && event.subject === 'nightly'), 'a copy-progress tick');
    const listed = (await call('GET', `${base}/flash-sessions/nightly/events`)).body.events as AgentEvent[];
    const log = await agentLog();
    expect(log.some((event) => event.type === 'volume.created' && event.subject === 'nightly')).toBe(true);
    const expected = log.filter((event) => event.subject === 'nightly' && event.type.startsWith('flash.') && event.type !== flashEventTypes.copyProgress);
    expect(listed.map((event) => event.type)).toContain(flashEventTypes.established);
    expect(listed).toEqual(expected.filter((event) => event.id <= listed.at(-1)!.id));
    expect((await call('GET', `${base}/flash-sessions/nightly/events?limit=1`)).body.events).toEqual([listed.at(-1)]);
    expect((await call('GET', `${base}/flash-sessions/nightly/events?limit=0`)).body).toMatchObject({ problem: 'bad-request' });

    // The background copy changes only with something to change.
    expect((await call('PATCH', `${base}/flash-sessions/nightly`, {})).body).toMatchObject({ problem: 'bad-request' });
    expect((await call('PATCH', `${base}/flash-sessions/nightly`, { rateMiBps: -1 })).body).toMatchObject({ problem: 'bad-request' });
    expect((await session('nightly')).options.rateMiBps).toBe(1);
    const paused = await call('PATCH', `${base}/flash-sessions/nightly`, { paused: true });
    expect(paused.status).toBe(200);
    expect(FlashSessionInfoSchema.parse(paused.body).state).toBe('suspended');

    // With finishCopy the withdraw waits for the copy (stopping); lifting the rate limit lets it finish.
    const stopping = FlashSessionInfoSchema.parse((await call('POST', `${base}/flash-sessions/nightly/withdraw`, { finishCopy: true })).body);
    expect(stopping.state).toBe('stopping');
    expect(stopping.withdrawnAt ?? null).toBeNull();
    const unlimited = FlashSessionInfoSchema.parse((await call('PATCH', `${base}/flash-sessions/nightly`, { rateMiBps: null })).body);
    expect(unlimited.options.rateMiBps).toBeNull();
    await waitFor(() => events.some((event) => event.kind === 'agent-event' && event.event.type === flashEventTypes.withdrawn && event.event.subject === 'nightly'), 'flash.withdrawn event');
    expect(await session('nightly')).toMatchObject({ state: 'idle-copied', withdrawnAt: expect.any(String) });

    // The agent's own refusal passes through with its problem code; a bad name is refused by the backend.
    const late = await call('POST', `${base}/flash-sessions/nightly/reverse`, {});
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ problem: 'invalid-state', message: expect.stringContaining('nightly was withdrawn') });
    expect((await call('GET', `${base}/flash-sessions/bad name!`)).body).toMatchObject({ problem: 'invalid-name' });

    expect((await call('DELETE', `${base}/flash-sessions/nightly`)).status).toBe(204);
    expect((await call('GET', `${base}/flash-sessions/nightly`)).body).toMatchObject({ problem: 'not-found' });
  });

  it('refreshes and reverses with their hold timeouts, and withdraws at once', async () => {
    expect((await call('POST', `${base}/flash-sessions`, { name: 'pit2', pairs: [{ source: 'db', target: 'db-pit' }], incremental: true })).status).toBe(201);
    const typesOf = async () => (await agentLog()).filter((event) => event.subject === 'pit2').map((event) => event.type);
    const refreshed = await call('POST', `${base}/flash-sessions/pit2/refresh`);
    expect(refreshed.status).toBe(200);
    expect(await typesOf()).toContain(flashEventTypes.refreshed);
    expect((await call('POST', `${base}/flash-sessions/pit2/reverse`, { holdTimeoutMs: 5 })).body).toMatchObject({ problem: 'bad-request' });
    expect(await typesOf()).not.toContain(flashEventTypes.reversed);
    const reversed = await call('POST', `${base}/flash-sessions/pit2/reverse`, { holdTimeoutMs: 500 });
    expect(reversed.status).toBe(200);
    expect(await typesOf()).toContain(flashEventTypes.reversed);
    const withdrawn = FlashSessionInfoSchema.parse((await call('POST', `${base}/flash-sessions/pit2/withdraw`, {})).body);
    expect(withdrawn.withdrawnAt).toEqual(expect.any(String));
    expect((await call('DELETE', `${base}/flash-sessions/pit2`)).status).toBe(204);
    expect(await sessionNames()).toEqual([]);
  });
});
