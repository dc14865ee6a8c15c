import { describe, expect, it } from 'vitest';
import { ProblemError, type FlashSessionInfo } from '@tandem/contract';
import type { z } from 'zod';
import type { AgentClient } from '../agent-client.ts';
import { Router } from '../router.ts';
import type { SiteManager } from '../site-manager.ts';
import { flashRoutes } from './flash-routes.ts';

const session: FlashSessionInfo = {
  name: 'nightly',
  state: 'copying',
  options: { backgroundCopy: true, rateMiBps: 50, incremental: true, writeInhibitTarget: false, preserveMirror: false },
  coordinated: false,
  pairs: [
    {
      id: 'fp1',
      source: 'db',
      target: 'db-pit',
      state: 'copying',
      trackSize: 65536,
      totalTracks: 256,
      copiedTracks: 64,
      percent: 25,
      changedTracks: { source: 0, target: 0 },
      mirror: 'none',
      remoteTarget: null,
      reason: null,
    },
  ],
  pointInTime: '2026-01-01T00:00:00.000Z',
  holdMs: 3,
  copyBytesPerSecond: 52428800,
  etaSeconds: 0.3,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
};

type Answer = unknown | (() => unknown);

/** An agent client whose answers come from a table `METHOD /path` and are validated like the real one. */
function fakeAgent(answers: Record<string, Answer>, calls: string[]): AgentClient {
  const answer = (method: string, path: string, body?: unknown) => {
    calls.push(body === undefined ? `${method} ${path}` : `${method} ${path} ${JSON.stringify(body)}`);
    const found = answers[`${method} ${path}`];
    if (found === undefined) throw new ProblemError('not-found', `no fake for ${method} ${path}`);
    return typeof found === 'function' ? (found as () => unknown)() : found;
  };
  return {
    request: async <T extends z.ZodType>(method: string, path: string, schema: T, body?: unknown) => schema.parse(answer(method, path, body)),
    perform: async (method: string, path: string, body?: unknown) => void answer(method, path, body),
  } as unknown as AgentClient;
}

function setup(answers: Record<string, Answer>) {
  const calls: string[] = [];
  const sites = {
    client: (id: string) => {
      if (id !== 'a') throw new ProblemError('not-found', `no site ${id}`);
      return fakeAgent(answers, calls);
    },
  } as unknown as SiteManager;
  const router = flashRoutes(sites, new Router());
  const call = async (method: string, url: string, body?: unknown) => {
    const parsed = new URL(url, 'http://x');
    const match = router.match(method, parsed.pathname);
    if (!match || match === 'wrong-method') throw new Error(`no route ${method} ${url}`);
    return match.handler({ params: match.params, query: parsed.searchParams, body });
  };
  return { call, calls };
}

describe('flash routes', () => {
  it('establishes at the site: the body is validated and sent with the contract defaults filled in', async () => {
    const { call, calls } = setup({ 'POST /v1/flash-sessions': session });
    const result = await call('POST', '/api/sites/a/flash-sessions', { name: 'nightly', pairs: [{ source: 'db', target: 'db-pit' }], rateMiBps: 50, incremental: true });
    expect(result).toEqual({ status: 201, body: session });
    expect(calls).toEqual([
      'POST /v1/flash-sessions ' +
        JSON.stringify({
          backgroundCopy: true,
          rateMiBps: 50,
          incremental: true,
          writeInhibitTarget: false,
          preserveMirror: false,
          name: 'nightly',
          pairs: [{ source: 'db', target: 'db-pit' }],
          holdTimeoutMs: 2000,
          coordinated: false,
        }),
    ]);
  });

  it('refuses bad establish requests before any agent is called', async () => {
    const { call, calls } = setup({});
    const refused = (body: unknown) => call('POST', '/api/sites/a/flash-sessions', body);
    await expect(refused({ pairs: [] })).rejects.toMatchObject({ problem: 'bad-request' });
    await expect(refused({ name: '-x', pairs: [{ source: 'db', target: 'db-pit' }] })).rejects.toMatchObject({ problem: 'invalid-name' });
    await expect(refused({ pairs: [{ source: 'db', target: 'db' }] })).rejects.toMatchObject({ problem: 'bad-request', message: expect.stringContaining('its own') });
    await expect(refused({ pairs: [{ source: 'a', target: 't' }, { source: 'b', target: 't' }] })).rejects.toMatchObject({ message: expect.stringContaining('t is the target of more than one pair') });
    await expect(refused({ pairs: [{ source: 'a', target: 'b' }, { source: 'b', target: 'c' }] })).rejects.toMatchObject({ message: expect.stringContaining('b is both a source and a target') });
    await expect(refused({ pairs: [{ source: 'db', target: 'db-pit' }], rateMiBps: 0 })).rejects.toMatchObject({ problem: 'bad-request', message: expect.stringContaining('rateMiBps') });
    await expect(refused({ pairs: [{ source: 'db', target: 'db-pit' }], holdTimeoutMs: 5 })).rejects.toMatchObject({ problem: 'bad-request' });
    expect(calls).toEqual([]);
  });

  it('proxies list, one session, refresh, reverse, withdraw and forget with their bodies', async () => {
    const { call, calls } = setup({
      'GET /v1/flash-sessions': { sessions: [session] },
      'GET /v1/flash-sessions/nightly': session,
      'POST /v1/flash-sessions/nightly/refresh': session,
      'POST /v1/flash-sessions/nightly/reverse': session,
      'POST /v1/flash-sessions/nightly/withdraw': { ...session, state: 'stopping' },
      'DELETE /v1/flash-sessions/nightly': null,
    });
    expect((await call('GET', '/api/sites/a/flash-sessions')).body).toEqual({ sessions: [session] });
    expect((await call('GET', '/api/sites/a/flash-sessions/nightly')).body).toEqual(session);
    await call('POST', '/api/sites/a/flash-sessions/nightly/refresh');
    await call('POST', '/api/sites/a/flash-sessions/nightly/reverse', { holdTimeoutMs: 500 });
    expect((await call('POST', '/api/sites/a/flash-sessions/nightly/withdraw', { finishCopy: true })).body).toMatchObject({ state: 'stopping' });
    expect(await call('DELETE', '/api/sites/a/flash-sessions/nightly')).toEqual({ status: 204 });
    expect(calls).toEqual([
      'GET /v1/flash-sessions',
      'GET /v1/flash-sessions/nightly',
      'POST /v1/flash-sessions/nightly/refresh {"holdTimeoutMs":2000}',
      'POST /v1/flash-sessions/nightly/reverse {"holdTimeoutMs":500}',
      'POST /v1/flash-sessions/nightly/withdraw {"finishCopy":true}',
      'DELETE /v1/flash-sessions/nightly',
    ]);
  });

  it('changes the background copy only with something to change', async () => {
    const { call, calls } = setup({ 'PATCH /v1/flash-sessions/nightly': { ...session, state: 'suspended' } });
    await expect(call('PATCH', '/api/sites/a/flash-sessions/nightly', {})).rejects.toMatchObject({ problem: 'bad-request' });
    await expect(call('PATCH', '/api/sites/a/flash-sessions/nightly', { rateMiBps: -1 })).rejects.toMatchObject({ problem: 'bad-request' });
    expect((await call('PATCH', '/api/sites/a/flash-sessions/nightly', { paused: true })).body).toMatchObject({ state: 'suspended' });
    await call('PATCH', '/api/sites/a/flash-sessions/nightly', { rateMiBps: null });
    expect(calls).toEqual(['PATCH /v1/flash-sessions/nightly {"paused":true}', 'PATCH /v1/flash-sessions/nightly {"rateMiBps":null}']);
  });

  it("asks for a pair's track map at the resolution drawn and refuses an answer that breaks the contract", async () => {
    const map = { session: 'nightly', pair: 'fp1', target: 'db-pit', trackSize: 65536, trackCount: 256, start: 0, count: 256, bucketTracks: 2, buckets: 128, runs: [[32, 2], [96, 0]] };
    const { call, calls } = setup({
      'GET /v1/flash-sessions/nightly/pairs/fp1/track-map?start=0&count=256&buckets=128': map,
      'GET /v1/flash-sessions/nightly/pairs/fp2/track-map?start=0&buckets=4096': { ...map, runs: [[1, 2, 3]] },
    });
    expect((await call('GET', '/api/sites/a/flash-sessions/nightly/pairs/fp1/track-map?start=0&count=256&buckets=128')).body).toEqual(map);
    await expect(call('GET', '/api/sites/a/flash-sessions/nightly/pairs/fp2/track-map')).rejects.toThrow();
    await expect(call('GET', '/api/sites/a/flash-sessions/nightly/pairs/fp1/track-map?buckets=0')).rejects.toMatchObject({ problem: 'bad-request' });
    expect(calls).toEqual([
      'GET /v1/flash-sessions/nightly/pairs/fp1/track-map?start=0&count=256&buckets=128',
      'GET /v1/flash-sessions/nightly/pairs/fp2/track-map?start=0&buckets=4096',
    ]);
  });

  it("lists a session's flash events from the agent's log, without the copy progress ticks", async () => {
    const events = [
      { id: 1, time: 't1', type: 'flash.established', severity: 'info', subject: 'nightly', message: 'established' },
      { id: 2, time: 't2', type: 'flash.copy-progress', severity: 'info', subject: 'nightly', message: '50 %' },
      { id: 3, time: 't3', type: 'flash.state', severity: 'info', subject: 'other', message: 'other' },
      { id: 4, time: 't4', type: 'volume.created', severity: 'info', subject: 'nightly', message: 'a volume' },
      { id: 5, time: 't5', type: 'flash.state', severity: 'info', subject: 'nightly', message: 'idle-copied' },
    ];
    const { call } = setup({ 'GET /v1/events?after=0&limit=1000': { events } });
    expect((await call('GET', '/api/sites/a/flash-sessions/nightly/events')).body).toEqual({ events: [events[0], events[4]] });
  });

  it('refuses a bad session name and passes the agent’s own problem through', async () => {
    const { call } = setup({ 'POST /v1/flash-sessions/nightly/reverse': () => { throw new ProblemError('invalid-state', 'nightly is not incremental'); } });
    await expect(call('GET', '/api/sites/a/flash-sessions/bad name!')).rejects.toMatchObject({ problem: 'invalid-name' });
    await expect(call('POST', '/api/sites/a/flash-sessions/nightly/reverse', {})).rejects.toMatchObject({ problem: 'invalid-state', message: 'nightly is not incremental' });
  });
});
