import { describe, expect, it } from 'vitest';
import { ProblemError, type PairInfo, type SessionInfo } from '@tandem/contract';
import type { z } from 'zod';
import { ReportFileSchema } from '../../shared/sessions-api.ts';
import type { AgentClient } from '../agent-client.ts';
import { Router } from '../router.ts';
import type { SiteManager } from '../site-manager.ts';
import { replicationRoutes } from './replication-routes.ts';

const pair: PairInfo = {
  id: 'p1',
  h1Volume: 'db',
  h2Volume: 'db-copy',
  state: 'duplex',
  reason: null,
  outOfSyncTracks: 3,
  targetChangedTracks: 0,
  trackCount: 16,
  syncedPercent: null,
  etaSeconds: null,
};
const session: SessionInfo = {
  id: 's1',
  name: 'orders',
  type: 'sync',
  state: 'prepared',
  health: 'normal',
  direction: 'h1-h2',
  recoverable: true,
  role: 'h1',
  h1Site: 'alpha',
  h2Site: 'beta',
  consistencyTime: '2026-01-01T00:00:00.000Z',
  exposureSeconds: 0,
  detail: null,
  pairs: [pair],
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

function setup(perSite: Record<string, Record<string, Answer>>) {
  const calls: Record<string, string[]> = {};
  const summaries = Object.keys(perSite).map((id) => ({
    id,
    site: id === 'a' ? 'alpha' : 'beta',
    address: `127.0.0.1:${id === 'a' ? 7001 : 7002}`,
    connection: { state: 'connected' },
    agent: { apiAddress: `127.0.0.1:${id === 'a' ? 7001 : 7002}` },
  }));
  const sites = {
    list: () => summaries,
    get: (id: string) => {
      const found = summaries.find((site) => site.id === id);
      if (!found) throw new ProblemError('not-found', `no site ${id}`);
      return found;
    },
    client: (id: string) => fakeAgent(perSite[id] ?? {}, (calls[id] ??= [])),
  } as unknown as SiteManager;
  const router = replicationRoutes(sites, new Router());
  const call = async (method: string, url: string, body?: unknown) => {
    const parsed = new URL(url, 'http://x');
    const match = router.match(method, parsed.pathname);
    if (!match || match === 'wrong-method') throw new Error(`no route ${method} ${url}`);
    return match.handler({ params: match.params, query: parsed.searchParams, body });
  };
  return { call, calls };
}

describe('replication routes', () => {
  it('pairs two sites: mints a token at the other site, then the site pairs with it, pinning its fingerprint', async () => {
    const peer = { agentId: 'b', site: 'beta', linkAddress: '127.0.0.1:7452', apiAddress: '127.0.0.1:7002', caFingerprint: 'CA', pairedAt: 'now', link: 'connecting' };
    const { call, calls } = setup({
      a: { 'POST /v1/peers': peer },
      b: { 'POST /v1/pairing-tokens': { token: 'tdm_x', expiresAt: '2026-01-01T00:15:00Z', certificateFingerprint: 'FP:B' } },
    });
    const result = await call('POST', '/api/sites/a/peers', { otherSiteId: 'b' });
    expect(result).toEqual({ status: 201, body: peer });
    expect(calls.b).toEqual(['POST /v1/pairing-tokens']);
    expect(calls.a).toEqual([`POST /v1/peers ${JSON.stringify({ apiAddress: '127.0.0.1:7002', token: 'tdm_x', fingerprint: 'FP:B' })}`]);
  });

  it('refuses to pair a site with itself and validates bodies before calling an agent', async () => {
    const { call, calls } = setup({ a: {} });
    await expect(call('POST', '/api/sites/a/peers', { otherSiteId: 'a' })).rejects.toMatchObject({ problem: 'bad-request' });
    await expect(call('POST', '/api/sites/a/sessions', { name: 'x', type: 'mirror', peer: 'b' })).rejects.toMatchObject({ problem: 'bad-request' });
    await expect(call('POST', '/api/sites/a/sessions/orders/actions/explode')).rejects.toMatchObject({ problem: 'bad-request' });
    expect(calls.a ?? []).toEqual([]);
  });

  it('proxies session create, pairs and actions; failback carries its options', async () => {
    const { call, calls } = setup({
      a: {
        'POST /v1/sessions': session,
        'POST /v1/sessions/orders/pairs': session,
        'POST /v1/sessions/orders/actions/start': session,
        'POST /v1/sessions/orders/actions/failback': session,
      },
    });
    await call('POST', '/api/sites/a/sessions', { name: 'orders', type: 'sync', peer: 'beta' });
    await call('POST', '/api/sites/a/sessions/orders/pairs', { h1Volume: 'db', h2Volume: 'db-copy' });
    expect((await call('POST', '/api/sites/a/sessions/orders/actions/start')).body).toEqual(session);
    await call('POST', '/api/sites/a/sessions/orders/actions/failback', { verifyCodes: true, fullCompare: true });
    expect(calls.a).toEqual([
      'POST /v1/sessions {"name":"orders","type":"sync","peer":"beta"}',
      'POST /v1/sessions/orders/pairs {"h1Volume":"db","h2Volume":"db-copy"}',
      'POST /v1/sessions/orders/actions/start {}',
      'POST /v1/sessions/orders/actions/failback {"verifyCodes":true,"fullCompare":true}',
    ]);
  });

  it('changes the shipping interval and ships now; a bad interval is refused before any agent call', async () => {
    const shipping = { ...session, type: 'snapshot-shipping', shipIntervalSeconds: 5 };
    const report = { session: 'orders', cycle: 7, time: '2026-01-01T00:00:05.000Z', tracks: 3, bytesSent: 196608, durationMs: 40 };
    const { call, calls } = setup({
      a: {
        'PATCH /v1/sessions/orders': shipping,
        'POST /v1/sessions/orders/ship-now': report,
      },
    });
    expect(await call('PATCH', '/api/sites/a/sessions/orders', { shipIntervalSeconds: 5 })).toEqual({ body: shipping });
    expect(await call('POST', '/api/sites/a/sessions/orders/ship-now')).toEqual({ body: report });
    await expect(call('PATCH', '/api/sites/a/sessions/orders', { shipIntervalSeconds: 0 })).rejects.toMatchObject({ problem: 'bad-request' });
    await expect(call('PATCH', '/api/sites/a/sessions/orders', { type: 'sync' })).rejects.toMatchObject({ problem: 'bad-request' });
    expect(calls.a).toEqual(['PATCH /v1/sessions/orders {"shipIntervalSeconds":5}', 'POST /v1/sessions/orders/ship-now']);
  });

  it("removes a copy set; the agent's refusal to remove the last one of a running session passes through unchanged", async () => {
    const { call, calls } = setup({
      a: {
        'DELETE /v1/sessions/orders/pairs/log': () => undefined,
        'DELETE /v1/sessions/orders/pairs/db': () => {
          throw new ProblemError('invalid-state', 'db is the last copy set of running session orders; terminate the session instead');
        },
      },
    });
    expect(await call('DELETE', '/api/sites/a/sessions/orders/pairs/log')).toEqual({ status: 204 });
    await expect(call('DELETE', '/api/sites/a/sessions/orders/pairs/db')).rejects.toMatchObject({ problem: 'invalid-state', message: expect.stringContaining('last copy set') });
    expect(calls.a).toEqual(['DELETE /v1/sessions/orders/pairs/log', 'DELETE /v1/sessions/orders/pairs/db']);
  });

  it('asks for a preflight with explicit options and rejects an agent answer that breaks the contract', async () => {
    const { call, calls } = setup({ a: { 'GET /v1/sessions/orders/failback-preflight?verifyCodes=false&fullCompare=true': { session: 'orders' } } });
    await expect(call('GET', '/api/sites/a/sessions/orders/failback-preflight?verifyCodes=false&fullCompare=true')).rejects.toThrow();
    expect(calls.a).toEqual(['GET /v1/sessions/orders/failback-preflight?verifyCodes=false&fullCompare=true']);
  });

  it("lists a session's events from the agent's log, only those about the session", async () => {
    const events = [
      { id: 1, time: 't1', type: 'volume.created', severity: 'info', subject: 'orders', message: 'volume' },
      { id: 2, time: 't2', type: 'session.state', severity: 'info', subject: 'orders', message: 'orders is preparing' },
      { id: 3, time: 't3', type: 'session.state', severity: 'info', subject: 'other', message: 'other' },
    ];
    const { call } = setup({ a: { 'GET /v1/events?after=0&limit=1000': { events } } });
    const result = await call('GET', '/api/sites/a/sessions/orders/events');
    expect(result.body).toEqual({ events: [events[1]] });
  });

  it('builds session reports as CSV, JSON and PDF', async () => {
    const events = [{ id: 2, time: 't2', type: 'session.state', severity: 'info', subject: 'orders', message: 'orders is prepared, "duplex"' }];
    const { call } = setup({ a: { 'GET /v1/sessions/orders': session, 'GET /v1/events?after=0&limit=1000': { events } } });
    const csv = ReportFileSchema.parse((await call('GET', '/api/sites/a/sessions/orders/report?format=csv')).body);
    expect(csv.fileName).toMatch(/^tandem-session-orders-.*\.csv$/);
    const lines = csv.content.split(/\r?\n/);
    expect(lines[0]).toMatch(/^record,site,session,type,state,health/);
    expect(lines[1]).toContain('copy-set,alpha,orders,sync,prepared,normal,h1-h2,2026-01-01T00:00:00.000Z,0,p1,db,db-copy,duplex,,3,0,16');
    expect(lines[2]).toContain('"orders is prepared, ""duplex"""');
    const json = ReportFileSchema.parse((await call('GET', '/api/sites/a/sessions/orders/report?format=json')).body);
    expect(JSON.parse(json.content)).toMatchObject({ kind: 'session', sessions: [{ site: 'alpha', session: { name: 'orders' }, events }] });
    const pdf = ReportFileSchema.parse((await call('GET', '/api/sites/a/sessions/orders/report?format=pdf')).body);
    expect(pdf.encoding).toBe('base64');
    expect(Buffer.from(pdf.content, 'base64').subarray(0, 5).toString('latin1')).toBe('%PDF-');
    await expect(call('GET', '/api/sites/a/sessions/orders/report?format=docx')).rejects.toMatchObject({ problem: 'bad-request' });
  });

  it('builds a cluster report with members from both sites', async () => {
    const member = (name: string, site: string, local: boolean) => ({
      session: name, sessionId: name, site, agentId: site, local, status: 'reporting', state: 'prepared', health: 'normal',
      consistencyTime: null, exposureSeconds: 1, reportedAt: 'now', detail: null,
    });
    const cluster = {
      name: 'payments', processorSite: 'alpha', intervalSeconds: 2, timeoutSeconds: 6, health: 'normal', consistencyTime: null, exposureSeconds: 1,
      members: [member('orders', 'alpha', true), member('ledger', 'beta', false)], consolidatedAt: 'now',
      masterDataSet: { lastSequence: 4, records: 4, bytes: 400 }, createdAt: 'then',
    };
    const { call, calls } = setup({
      a: { 'GET /v1/clusters/payments': cluster, 'GET /v1/sessions/orders': session, 'GET /v1/events?after=0&limit=1000': { events: [] } },
      b: { 'GET /v1/sessions/ledger': { ...session, name: 'ledger', id: 's2' }, 'GET /v1/events?after=0&limit=1000': { events: [] } },
    });
    const json = ReportFileSchema.parse((await call('GET', '/api/sites/a/clusters/payments/report?format=json')).body);
    const document = JSON.parse(json.content) as { sessions: { site: string; session: { name: string } }[] };
    expect(document.sessions.map((each) => `${each.site}/${each.session.name}`)).toEqual(['alpha/orders', 'beta/ledger']);
    expect(calls.b).toContain('GET /v1/sessions/ledger');
  });
});
