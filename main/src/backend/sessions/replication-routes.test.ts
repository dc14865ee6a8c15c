import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClusterInfoSchema,
  FailbackPreflightSchema,
  PeerListSchema,
  SessionInfoSchema,
  SessionListSchema,
  ShipCycleReportSchema,
  type AgentEvent,
  type SessionInfo,
} from '@tandem/contract';
import { agentCli, initAgent, pairingToken, startAgent, type RunningAgent } from '../../../../scripts/lib/agents.mjs';
import { ReportDocumentSchema, ReportFileSchema } from '../../shared/sessions-api.ts';
import { startBackend, type RunningBackend } from '../backend.ts';

const mib = 1024 * 1024;
const execFileAsync = promisify(execFile);
const qemuIo = (uri: string, command: string) => execFileAsync('qemu-io', ['-f', 'raw', '-c', command, uri]);

/**
 * The mirroring routes of the console backend against two real agents on
 * loopback, both connected to one backend: pairing the sites, session
 * create / copy sets / actions, shipping settings and ship-now, copy-set
 * removal and the agent's refusal of the last one, failover and a failback
 * whose options change what it copies, the failback preflight, a session's
 * events, a cluster report with a member at another site (reports in full:
 * reports/reports.test.ts). Bodies the backend refuses never
 * reach an agent; the agents' refusals keep their problem codes.
 */
describe('mirroring through the backend with two real agents', { timeout: 120_000 }, () => {
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
  const session = async (which: keyof typeof ids, name: string): Promise<SessionInfo> => SessionInfoSchema.parse(await ok('GET', `${site(which)}/sessions/${name}`));
  const waitFor = async <T>(probe: () => Promise<T | false | null | undefined>, what: string, timeoutMs = 90_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await probe();
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
  };
  const waitForState = (which: keyof typeof ids, name: string, state: string) =>
    waitFor(async () => {
      const info = await session(which, name);
      return info.state === state && info;
    }, `${name} ${state} at ${which}`);
  /** An agent's whole event log, read with the real client page by page (no filter). */
  const agentLog = async (which: keyof typeof ids): Promise<AgentEvent[]> => {
    const all: AgentEvent[] = [];
    for (;;) {
      const { events } = await backend.sites.client(ids[which]).events(all.at(-1)?.id ?? 0, 1000);
      all.push(...events);
      if (events.length < 1000) return all;
    }
  };
  const sessionFamilies = new Set(['session', 'pair', 'link', 'cluster', 'peer']);
  const aboutSession = (log: AgentEvent[], name: string) => log.filter((event) => event.subject === name && sessionFamilies.has(event.type.split('.')[0]));

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-mirror-backend-'));
    await initAgent({ dataDir: path.join(dir, 'primary'), site: 'primary' });
    await initAgent({ dataDir: path.join(dir, 'secondary'), site: 'secondary' });
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
    for (const [which, name] of [
      ['primary', 'db'],
      ['primary', 'log'],
      ['primary', 'ship'],
      ['primary', 'ledger-copy'],
      // A volume with the session's name: its events are not the session's.
      ['primary', 'orders'],
      ['secondary', 'db-copy'],
      ['secondary', 'log-copy'],
      ['secondary', 'ship-copy'],
      ['secondary', 'ledger'],
    ] as const) {
      await ok('POST', `${site(which)}/volumes`, { name, sizeBytes: 16 * mib }, 201);
    }
    await qemuIo(`nbd://${primary.nbdAddress}/db`, 'write -P 0x41 0 1M');
  }, 180_000);

  afterAll(async () => {
    await backend?.close();
    await Promise.allSettled([primary?.stop(), secondary?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses pairing a site with itself and bad bodies in the backend; neither agent gets a peer or a session', async () => {
    expect((await call('POST', `${site('primary')}/peers`, { otherSiteId: ids.primary })).body).toMatchObject({ problem: 'bad-request' });
    expect((await call('POST', `${site('primary')}/peers`, { otherSiteId: 'no-such-site' })).body).toMatchObject({ problem: 'not-found' });
    expect((await call('POST', `${site('primary')}/sessions`, { name: 'x', type: 'mirror', peer: 'secondary' })).body).toMatchObject({ problem: 'bad-request' });
    expect((await call('POST', `${site('primary')}/sessions/orders/actions/explode`)).body).toMatchObject({ problem: 'bad-request' });
    expect((await call('POST', `${site('primary')}/sessions/bad name!/actions/start`)).body).toMatchObject({ problem: 'invalid-name' });
    for (const which of ['primary', 'secondary'] as const) {
      expect(PeerListSchema.parse(await ok('GET', `${site(which)}/peers`)).peers).toEqual([]);
      expect(SessionListSchema.parse(await ok('GET', `${site(which)}/sessions`)).sessions).toEqual([]);
    }
  });

  it('pairs two sites: a token minted at the other site, its certificate pinned; both agents list each other', async () => {
    const peer = await ok('POST', `${site('primary')}/peers`, { otherSiteId: ids.secondary }, 201);
    expect(peer).toMatchObject({ site: 'secondary', apiAddress: secondary.apiAddress });
    const secondaryInfo = backend.sites.get(ids.secondary);
    expect(peer.agentId).toBe(secondaryInfo.agent?.agentId);
    expect(PeerListSchema.parse(await ok('GET', `${site('primary')}/peers`)).peers.map((each) => each.site)).toEqual(['secondary']);
    expect(PeerListSchema.parse(await ok('GET', `${site('secondary')}/peers`)).peers.map((each) => each.site)).toEqual(['primary']);
  });

  it('creates a session, adds copy sets and starts it; removes a copy set, and the agent refuses removing the last one', async () => {
    const created = SessionInfoSchema.parse(await ok('POST', `${site('primary')}/sessions`, { name: 'orders', type: 'sync', peer: 'secondary' }, 201));
    expect(created).toMatchObject({ name: 'orders', type: 'sync', state: 'defined', role: 'h1', h1Site: 'primary', h2Site: 'secondary', pairs: [] });
    await ok('POST', `${site('primary')}/sessions/orders/pairs`, { h1Volume: 'db', h2Volume: 'db-copy' }, 201);
    const two = SessionInfoSchema.parse(await ok('POST', `${site('primary')}/sessions/orders/pairs`, { h1Volume: 'log', h2Volume: 'log-copy' }, 201));
    expect(two.pairs.map((pair) => `${pair.h1Volume}->${pair.h2Volume}`)).toEqual(['db->db-copy', 'log->log-copy']);
    // The agent's refusals pass through: a volume already in a copy set, a volume the other site lacks.
    expect((await call('POST', `${site('primary')}/sessions/orders/pairs`, { h1Volume: 'db', h2Volume: 'ledger' })).body).toMatchObject({ problem: 'volume-busy' });
    expect((await call('POST', `${site('primary')}/sessions/orders/pairs`, { h1Volume: 'orders', h2Volume: 'nowhere' })).body).toMatchObject({ problem: 'not-found' });
    const started = SessionInfoSchema.parse(await ok('POST', `${site('primary')}/sessions/orders/actions/start`));
    expect(started.state).toBe('preparing');
    await waitForState('primary', 'orders', 'prepared');
    expect((await session('secondary', 'orders')).role).toBe('h2');

    expect(await call('DELETE', `${site('primary')}/sessions/orders/pairs/log`)).toEqual({ status: 204, body: undefined });
    const last = await call('DELETE', `${site('primary')}/sessions/orders/pairs/db`);
    expect(last.status).toBe(409);
    expect(last.body).toMatchObject({ problem: 'invalid-state', message: expect.stringContaining('last copy set') });
    expect((await session('primary', 'orders')).pairs.map((pair) => pair.h1Volume)).toEqual(['db']);
  });

  it("lists a session's events from the agent: only those about the session, the newest up to the limit", async () => {
    const listed = (await ok('GET', `${site('primary')}/sessions/orders/events`)).events as AgentEvent[];
    const log = await agentLog('primary');
    expect(log.some((event) => event.type === 'volume.created' && event.subject === 'orders')).toBe(true);
    const expected = aboutSession(log, 'orders').filter((event) => event.id <= listed.at(-1)!.id);
    expect(listed.map((event) => event.type)).toEqual(expect.arrayContaining(['session.created', 'pair.added', 'session.state']));
    expect(listed).toEqual(expected.slice(-100));
    expect((await ok('GET', `${site('primary')}/sessions/orders/events?limit=2`)).events).toEqual(aboutSession(await agentLog('primary'), 'orders').slice(-2));
    expect((await call('GET', `${site('primary')}/sessions/orders/events?limit=5000`)).body).toMatchObject({ problem: 'bad-request' });
  });

  it('builds a cluster report with member sessions read from their own sites', async () => {
    await ok('POST', `${site('secondary')}/sessions`, { name: 'ledger', type: 'sync', peer: 'primary' }, 201);
    await ok('POST', `${site('secondary')}/sessions/ledger/pairs`, { h1Volume: 'ledger', h2Volume: 'ledger-copy' }, 201);
    await agentCli(['cluster', 'create', 'payments', '--data', primary.dataDir, '--json']);
    await agentCli(['cluster', 'add', 'payments', 'orders', '--data', primary.dataDir, '--json']);
    await agentCli(['cluster', 'add', 'payments', 'ledger', '--agent', 'secondary', '--data', primary.dataDir, '--json']);
    const cluster = ClusterInfoSchema.parse(await ok('GET', `${site('primary')}/clusters/payments`));
    expect(cluster.members.map((member) => `${member.site}/${member.session}/${member.local}`)).toEqual(['primary/orders/true', 'secondary/ledger/false']);

    const json = ReportFileSchema.parse(await ok('GET', `${site('primary')}/clusters/payments/report?format=json`));
    const document = ReportDocumentSchema.parse(JSON.parse(json.content));
    expect(document).toMatchObject({ kind: 'cluster', cluster: { name: 'payments' }, missing: [] });
    expect(document.sessions.map((each) => `${each.site}/${each.session.name}/${each.session.role}`)).toEqual(['primary/orders/h1', 'secondary/ledger/h1']);
    // The remote member's events at its own site are that agent's own.
    const ledgerAtSecondary = document.sessions[1].events.filter((event) => event.site === 'secondary').map(({ site: _site, ...event }) => event);
    expect(ledgerAtSecondary.map((event) => event.type)).toContain('session.created');
    const log = await agentLog('secondary');
    for (const event of ledgerAtSecondary) expect(log).toContainEqual(event);
  });

  it('changes the shipping interval and ships now; bad settings are refused in the backend and change nothing', async () => {
    await ok('POST', `${site('primary')}/sessions`, { name: 'shipping', type: 'snapshot-shipping', peer: 'secondary', shipIntervalSeconds: 300 }, 201);
    await ok('POST', `${site('primary')}/sessions/shipping/pairs`, { h1Volume: 'ship', h2Volume: 'ship-copy' }, 201);
    await ok('POST', `${site('primary')}/sessions/shipping/actions/start`);
    await waitForState('primary', 'shipping', 'prepared');

    expect((await call('PATCH', `${site('primary')}/sessions/shipping`, { shipIntervalSeconds: 0 })).body).toMatchObject({ problem: 'bad-request' });
    expect((await call('PATCH', `${site('primary')}/sessions/shipping`, { type: 'sync' })).body).toMatchObject({ problem: 'bad-request' });
    expect((await session('primary', 'shipping')).shipIntervalSeconds).toBe(300);
    const changed = SessionInfoSchema.parse(await ok('PATCH', `${site('primary')}/sessions/shipping`, { shipIntervalSeconds: 5 }));
    expect(changed.shipIntervalSeconds).toBe(5);
    await waitFor(async () => (await session('secondary', 'shipping')).shipIntervalSeconds === 5, 'the interval at the secondary');

    await qemuIo(`nbd://${primary.nbdAddress}/ship`, 'write -P 0x53 0 256k');
    const report = ShipCycleReportSchema.parse(await ok('POST', `${site('primary')}/sessions/shipping/ship-now`));
    expect(report.session).toBe('shipping');
    expect(report.cycle).toBeGreaterThanOrEqual(1);
    expect(report.tracks).toBeGreaterThanOrEqual(4);
    // A sync session has no shipping: the agent refuses.
    expect((await call('POST', `${site('primary')}/sessions/orders/ship-now`)).body).toMatchObject({ problem: expect.stringMatching(/invalid-state|not-supported/) });
  });

  it('fails over, asks for a preflight with explicit options, and fails back with the options given', async () => {
    // Not yet failed over: the agent refuses a preflight.
    expect((await call('GET', `${site('secondary')}/sessions/orders/failback-preflight`)).body).toMatchObject({ problem: 'invalid-state' });
    // A recover's journal point reaches the agent: with no journal at the secondary it refuses the bookmark (a point-less body would fail over).
    const atBookmark = await call('POST', `${site('secondary')}/sessions/orders/actions/recover`, { bookmark: 'before-the-damage' });
    expect(atBookmark.status).toBe(404);
    expect(atBookmark.body).toMatchObject({ problem: 'not-found' });
    expect((await call('POST', `${site('primary')}/sessions/orders/actions/recover`, { bookmark: 'good', seq: 3 })).body).toMatchObject({ problem: 'bad-request' });
    expect((await call('POST', `${site('primary')}/sessions/orders/actions/recover`, { at: 'yesterday' })).body).toMatchObject({ problem: 'bad-request' });
    expect((await session('secondary', 'orders')).state).toBe('prepared');
    const recovered = SessionInfoSchema.parse(await ok('POST', `${site('secondary')}/sessions/orders/actions/recover`));
    expect(recovered.state).toBe('target-available');
    // The production site rewrites what the copy already holds: the tracks count as changed, their codes still match.
    await qemuIo(`nbd://${secondary.nbdAddress}/db-copy`, 'write -P 0x41 0 1M');

    const preflight = async (query: string) => FailbackPreflightSchema.parse(await ok('GET', `${site('secondary')}/sessions/orders/failback-preflight${query}`));
    const byCodes = await preflight('');
    expect(byCodes).toMatchObject({ session: 'orders', verifyCodes: true, fullCompare: false, tracksToCopy: 0 });
    expect(byCodes.pairs[0]).toMatchObject({ candidateTracks: 16, differingTracks: 0 });
    const byBitmaps = await preflight('?verifyCodes=false&fullCompare=false');
    expect(byBitmaps).toMatchObject({ verifyCodes: false, fullCompare: false, tracksToCopy: 16 });
    expect(byBitmaps.pairs[0].differingTracks).toBeNull();
    const full = await preflight('?verifyCodes=false&fullCompare=true');
    expect(full).toMatchObject({ verifyCodes: false, fullCompare: true, tracksToCopy: 0 });
    expect((await call('GET', `${site('secondary')}/sessions/orders/failback-preflight?fullCompare=yes`)).body).toMatchObject({ problem: 'bad-request' });

    // Failback by bitmaps copies the 16 changed tracks; with the default (codes) it would copy none.
    const failedBack = SessionInfoSchema.parse(await ok('POST', `${site('secondary')}/sessions/orders/actions/failback`, { verifyCodes: false, fullCompare: false }));
    expect(failedBack.direction).toBe('h2-h1');
    const failback = (await agentLog('secondary')).filter((event) => event.type === 'session.failback' && event.subject === 'orders');
    expect(failback.map((event) => event.data?.tracks)).toEqual([16]);
    await waitForState('secondary', 'orders', 'prepared');
  });
});
