/**
 * `tandem-agent cluster …` and /v1/clusters against two real agent
 * processes paired through the CLI: a cluster at alpha with a session of
 * alpha and one of beta, its master data set read at alpha and, over the
 * peer link, from beta; kept across kill -9 and a restart of alpha.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterHistorySchema, ClusterInfoSchema, ClusterListSchema, ProblemSchema, type ClusterInfo } from '@tandem/contract';
import { startPairedAgents, type AgentProcess } from './helpers/agent-process.ts';
import { agentCliJson } from './helpers/run-command.ts';

let alpha: AgentProcess;
let beta: AgentProcess;


async function waitForCluster(agent: AgentProcess, check: (info: ClusterInfo) => boolean, what: string): Promise<ClusterInfo> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const info = ClusterInfoSchema.parse(await agentCliJson(agent, ['cluster', 'show', 'c1']));
    if (check(info)) return info;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(info)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

beforeAll(async () => {
  [alpha, beta] = await startPairedAgents();
  for (const [agent, volume] of [
    [alpha, 'a1'],
    [alpha, 'a2'],
    [beta, 'b1'],
    [beta, 'b2'],
  ] as const) {
    expect((await agent.cli(['volume', 'create', volume, '8M'])).code).toBe(0);
  }
  await agentCliJson(alpha, ['session', 'create', 's1', '--type', 'sync', '--peer', 'beta']);
  await agentCliJson(alpha, ['session', 'add', 's1', 'a1', 'b1']);
  await agentCliJson(beta, ['session', 'create', 's2', '--type', 'sync', '--peer', 'alpha']);
  await agentCliJson(beta, ['session', 'add', 's2', 'b2', 'a2']);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([alpha?.stop(), beta?.stop()]);
});

describe('cluster commands', () => {
  it('creates a cluster of a local and a remote session and consolidates them as they start', async () => {
    const created = ClusterInfoSchema.parse(await agentCliJson(alpha, ['cluster', 'create', 'c1', '--interval', '0.2']));
    expect(created).toMatchObject({ name: 'c1', processorSite: 'alpha', intervalSeconds: 0.2, timeoutSeconds: 0.6, health: 'inactive' });
    await agentCliJson(alpha, ['cluster', 'add', 'c1', 's1']);
    const added = ClusterInfoSchema.parse(await agentCliJson(alpha, ['cluster', 'add', 'c1', 's2', '--agent', 'beta']));
    expect(added.members.map((m) => [m.session, m.site, m.local, m.state])).toEqual([
      ['s1', 'alpha', true, 'defined'],
      ['s2', 'beta', false, 'defined'],
    ]);

    await agentCliJson(alpha, ['session', 'start', 's1']);
    await agentCliJson(beta, ['session', 'start', 's2']);
    const prepared = await waitForCluster(alpha, (c) => c.members.every((m) => m.state === 'prepared'), 'both members prepared');
    expect(prepared.health).toBe('normal');
    expect(prepared.consistencyTime).not.toBeNull();

    const human = await alpha.cli(['cluster', 'show', 'c1']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^cluster\s+c1$/m);
    expect(human.stdout).toMatch(/^SESSION\s+SITE\s+STATUS\s+STATE\s+HEALTH/m);
    expect(human.stdout).toMatch(/^s2\s+beta\s+reporting\s+prepared\s+normal/m);
    const list = ClusterListSchema.parse(await agentCliJson(alpha, ['cluster', 'list']));
    expect(list.clusters.map((c) => [c.name, c.members.length])).toEqual([['c1', 2]]);
  });

  it('reads the master data set at alpha, and from beta over the peer link', async () => {
    const here = ClusterHistorySchema.parse(await agentCliJson(alpha, ['cluster', 'history', 'c1', '--limit', '3']));
    expect(here.site).toBe('alpha');
    expect(here.records).toHaveLength(3);
    expect(here.records[1].sequence).toBe(here.records[0].sequence + 1);
    expect(here.records.at(-1)!.members.map((m) => m.state)).toEqual(['prepared', 'prepared']);

    const there = ClusterHistorySchema.parse(await agentCliJson(beta, ['cluster', 'history', 'c1', '--site', 'alpha', '--limit', '2']));
    expect(there.site).toBe('alpha');
    expect(there.records).toHaveLength(2);
    expect(there.records[0].sequence).toBeGreaterThanOrEqual(here.records.at(-1)!.sequence);
    // beta defines no cluster c1 itself.
    const local = await beta.cli(['cluster', 'history', 'c1', '--json']);
    expect(local.code).toBe(1);
    expect(ProblemSchema.parse(JSON.parse(local.stderr)).problem).toBe('not-found');

    const table = await alpha.cli(['cluster', 'history', 'c1', '--limit', '2']);
    expect(table.stdout).toMatch(/^\s*#\s+TIME\s+HEALTH\s+CONSISTENCY\s+EXPOSURE\s+MEMBERS$/m);
    expect(table.stdout).toContain('s1@alpha:prepared s2@beta:prepared');
  });

  it('refuses bad input with problem codes, changing nothing', async () => {
    const missing = await alpha.cli(['cluster', 'add', 'c1', 'nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: not-found: there is no session named nope at alpha/);
    const usage = await alpha.cli(['cluster', 'create', 'c2', '--interval', 'soon']);
    expect(usage.code).toBe(2);
    for (const [method, path, body, status, problem] of [
      ['POST', '/v1/clusters', { name: 'a/b' }, 400, 'invalid-name'],
      ['POST', '/v1/clusters', { name: 'c2', intervalSeconds: 0 }, 400, 'bad-request'],
      ['POST', '/v1/clusters', { name: 'c1' }, 409, 'already-exists'],
      ['POST', '/v1/clusters/c1/members', { session: 's1', site: 'beta' }, 409, 'already-exists'],
      ['POST', '/v1/clusters/c1/members', { session: 's1', site: 'gamma' }, 409, 'not-paired'],
      ['GET', '/v1/clusters/nope', undefined, 404, 'not-found'],
      ['GET', '/v1/clusters/c1/history?limit=0', undefined, 400, 'bad-request'],
    ] as const) {
      const answer = await alpha.api.request(method, path, body);
      expect(answer.status, `${method} ${path}`).toBe(status);
      expect(ProblemSchema.parse(answer.body).problem, `${method} ${path}`).toBe(problem);
    }
    const list = ClusterListSchema.parse(await agentCliJson(alpha, ['cluster', 'list']));
    expect(list.clusters.map((c) => [c.name, c.members.length])).toEqual([['c1', 2]]);
  });

  it('keeps the cluster and continues its master data set across kill -9 and a restart; set, remove and delete', async () => {
    const before = ClusterInfoSchema.parse(await agentCliJson(alpha, ['cluster', 'show', 'c1'])).masterDataSet.lastSequence;
    // Killed while it appends every 0.2 s: at worst a torn tail, cut off at the restart.
    await alpha.kill('SIGKILL');
    await alpha.restart({ samePorts: true });
    const after = await waitForCluster(
      alpha,
      (c) => c.masterDataSet.lastSequence > before + 2 && c.members.every((m) => m.status === 'reporting'),
      'records after the restart',
    );
    expect(after.members.map((m) => `${m.session}@${m.site}`)).toEqual(['s1@alpha', 's2@beta']);
    const history = ClusterHistorySchema.parse(await agentCliJson(alpha, ['cluster', 'history', 'c1', '--limit', '10000']));
    expect(history.damage).toBeNull();
    expect(history.records.map((r) => r.sequence)).toEqual(Array.from({ length: history.records.length }, (_, i) => i + 1));

    const set = ClusterInfoSchema.parse(await agentCliJson(alpha, ['cluster', 'set', 'c1', '--interval', '0.5']));
    expect(set).toMatchObject({ intervalSeconds: 0.5, timeoutSeconds: 1.5 });
    const removed = ClusterInfoSchema.parse(await agentCliJson(alpha, ['cluster', 'remove', 'c1', 's2', '--agent', 'beta']));
    expect(removed.members.map((m) => m.session)).toEqual(['s1']);
    await agentCliJson(alpha, ['cluster', 'delete', 'c1']);
    expect(ClusterListSchema.parse(await agentCliJson(alpha, ['cluster', 'list'])).clusters).toEqual([]);
    const events = (await agentCliJson(alpha, ['events', '--limit', '1000'])) as { events: Array<{ type: string }> };
    const types = new Set(events.events.map((e) => e.type));
    for (const type of ['cluster.created', 'cluster.member-added', 'cluster.health', 'cluster.member-removed', 'cluster.deleted']) {
      expect(types.has(type), type).toBe(true);
    }
  });
});
