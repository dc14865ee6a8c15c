import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterInfoSchema, ClusterListSchema, ProblemSchema, SessionInfoSchema } from '@tandem/contract';
import { initAgent, pairingToken, startAgent, type RunningAgent } from '../../../../scripts/lib/agents.mjs';
import { startBackend, type RunningBackend } from '../backend.ts';

const mib = 1024 * 1024;

/**
 * What the console needs to close its dead ends, against two real agents:
 * clusters created, joined and left through the backend (members from
 * either site), and a volume held by a copy set refused for delete and
 * resize with the dependents named, until the copy set is removed.
 */
describe('clusters and guarded volumes through the backend with two real agents', { timeout: 120_000 }, () => {
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
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as unknown };
  };
  const ok = async (method: string, route: string, body?: unknown, status = 200) => {
    const answer = await call(method, route, body);
    expect(answer.status, `${method} ${route}: ${JSON.stringify(answer.body)}`).toBe(status);
    return answer.body;
  };
  const refused = async (method: string, route: string, body?: unknown) => {
    const answer = await call(method, route, body);
    expect(answer.status, `${method} ${route} should be refused`).toBeGreaterThanOrEqual(400);
    return { status: answer.status, ...ProblemSchema.parse(answer.body) };
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
    dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-cluster-backend-'));
    await initAgent({ dataDir: path.join(dir, 'primary'), site: 'primary' });
    await initAgent({ dataDir: path.join(dir, 'secondary'), site: 'secondary' });
    [primary, secondary] = await Promise.all([startAgent({ dataDir: path.join(dir, 'primary') }), startAgent({ dataDir: path.join(dir, 'secondary') })]);
    backend = await startBackend({ configDir: path.join(dir, 'console'), rendererDir: path.join(dir, 'none'), backoff: { initialMs: 100, maxMs: 500, factor: 2 } });
    for (const [which, agent] of [
      ['primary', primary],
      ['secondary', secondary],
    ] as const) {
      const { token, certificateFingerprint } = await pairingToken(agent.dataDir);
      ids[which] = String(((await ok('POST', '/api/sites', { address: agent.apiAddress, token, expectedFingerprint: certificateFingerprint }, 201)) as { id: string }).id);
    }
    await waitFor(async () => backend.sites.list().every((each) => each.connection.state === 'connected'), 'both sites connected');
    await ok('POST', `${site('primary')}/peers`, { otherSiteId: ids.secondary }, 201);
    for (const [which, name] of [
      ['primary', 'db'],
      ['primary', 'web'],
      ['secondary', 'db-copy'],
      ['secondary', 'web-copy'],
    ] as const) {
      await ok('POST', `${site(which)}/volumes`, { name, sizeBytes: 16 * mib }, 201);
    }
    await ok('POST', `${site('primary')}/sessions`, { name: 'orders', type: 'sync', peer: 'secondary' }, 201);
    await ok('POST', `${site('primary')}/sessions/orders/pairs`, { h1Volume: 'db', h2Volume: 'db-copy' }, 201);
    await ok('POST', `${site('secondary')}/sessions`, { name: 'ledger', type: 'async', peer: 'primary' }, 201);
  }, 180_000);

  afterAll(async () => {
    await backend?.close();
    await Promise.allSettled([primary?.stop(), secondary?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('creates a cluster, takes members from this site and a paired one, lets them leave, deletes it', async () => {
    const created = ClusterInfoSchema.parse(await ok('POST', `${site('primary')}/clusters`, { name: 'payments', intervalSeconds: 0.5 }, 201));
    expect(created).toMatchObject({ name: 'payments', processorSite: 'primary', members: [] });
    // A body the contract refuses never reaches the agent.
    expect(await refused('POST', `${site('primary')}/clusters`, { name: 'bad name!' })).toMatchObject({ problem: 'invalid-name' });
    expect(await refused('POST', `${site('primary')}/clusters`, { name: 'payments' })).toMatchObject({ problem: 'already-exists' });

    const joined = ClusterInfoSchema.parse(await ok('POST', `${site('primary')}/clusters/payments/members`, { session: 'orders' }, 201));
    expect(joined.members.map((member) => `${member.site}/${member.session}`)).toEqual(['primary/orders']);
    // ledger is reported by secondary: the processor asks it over the peer link.
    const both = ClusterInfoSchema.parse(await ok('POST', `${site('primary')}/clusters/payments/members`, { session: 'ledger', site: 'secondary' }, 201));
    expect(both.members.map((member) => `${member.site}/${member.session}/${member.local}`)).toEqual(['primary/orders/true', 'secondary/ledger/false']);
    expect(await refused('POST', `${site('primary')}/clusters/payments/members`, { session: 'nothing' })).toMatchObject({ problem: 'not-found' });
    // One session, one cluster of a processor: a second cluster there is refused.
    await ok('POST', `${site('primary')}/clusters`, { name: 'audit' }, 201);
    expect(await refused('POST', `${site('primary')}/clusters/audit/members`, { session: 'orders' })).toMatchObject({ problem: 'already-exists' });
    const listed = ClusterListSchema.parse(await ok('GET', `${site('primary')}/clusters`));
    expect(listed.clusters.map((cluster) => cluster.name).sort()).toEqual(['audit', 'payments']);

    const left = ClusterInfoSchema.parse(await ok('DELETE', `${site('primary')}/clusters/payments/members/ledger?site=secondary`));
    expect(left.members.map((member) => member.session)).toEqual(['orders']);
    expect(await refused('DELETE', `${site('primary')}/clusters/payments/members/ledger`)).toMatchObject({ problem: 'not-found' });
    await ok('DELETE', `${site('primary')}/clusters/payments`, undefined, 204);
    await ok('DELETE', `${site('primary')}/clusters/audit`, undefined, 204);
    expect(ClusterListSchema.parse(await ok('GET', `${site('primary')}/clusters`)).clusters).toEqual([]);
  });

  it('refuses to delete or resize a volume of a copy set at either site, naming the session and the step first', async () => {
    await ok('POST', `${site('primary')}/sessions/orders/actions/start`, {});
    await waitFor(async () => SessionInfoSchema.parse(await ok('GET', `${site('primary')}/sessions/orders`)).state === 'prepared', 'orders prepared');

    const atTarget = await refused('DELETE', `${site('secondary')}/volumes/db-copy`);
    expect(atTarget).toMatchObject({ status: 409, problem: 'volume-busy' });
    expect(atTarget.message).toContain('session orders');
    expect(atTarget.detail?.dependents).toEqual([
      expect.objectContaining({ kind: 'copy-set', session: 'orders', sessionState: 'prepared', role: 'h2', h1Volume: 'db', h2Volume: 'db-copy' }),
    ]);
    const atSource = await refused('PATCH', `${site('primary')}/volumes/db`, { sizeBytes: 32 * mib });
    expect(atSource.problem).toBe('volume-busy');
    expect(atSource.detail?.dependents).toEqual([expect.objectContaining({ session: 'orders', role: 'h1' })]);

    // The step the console offers: remove the copy set (at the H1 site), then the delete goes through.
    await ok('POST', `${site('primary')}/sessions/orders/pairs`, { h1Volume: 'web', h2Volume: 'web-copy' }, 201);
    await ok('DELETE', `${site('primary')}/sessions/orders/pairs/db`, undefined, 204);
    await ok('DELETE', `${site('secondary')}/volumes/db-copy`, undefined, 204);
    await ok('DELETE', `${site('primary')}/volumes/db`, undefined, 204);
  });
});
