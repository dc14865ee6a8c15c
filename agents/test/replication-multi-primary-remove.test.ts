import { ProblemError } from '@tandem/contract';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import { startThreeSites, type ThreeSites } from './helpers/multi-primary-sites.ts';
import { agentCliJson } from './helpers/run-command.ts';
import { waitFor } from './helpers/replication-sites.ts';

const MiB = 1024 * 1024;

let sites: ThreeSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

/** A copy set of a multi-primary session named by its H1 volume, when alpha (the control agent) and bravo both have a volume of that name. */
describe('removing a copy set of a multi-primary session', () => {
  it('refuses an H1 volume name held by several primary agents (conflict naming the sites) and removes the one primaryAgent names', async () => {
    sites = await startThreeSites();
    const s = sites;
    const controlAgent = s.alpha.replication.service;
    for (const name of ['a', 'v']) await s.alpha.engine.createVolume(name, 4 * MiB);
    for (const name of ['b', 'v']) await s.bravo.engine.createVolume(name, 4 * MiB);
    for (const name of ['a2', 'b2', 'va2', 'vb2']) await s.charlie.engine.createVolume(name, 4 * MiB);
    await controlAgent.createSession('mp', 'async', 'charlie');
    await controlAgent.addPair('mp', 'a', 'a2');
    await controlAgent.addPair('mp', 'v', 'va2');
    await controlAgent.addPair('mp', 'b', 'b2', { primaryAgent: 'bravo' });
    await controlAgent.addPair('mp', 'v', 'vb2', { primaryAgent: 'bravo' });
    await controlAgent.act('mp', 'start');
    await waitFor(() => controlAgent.session('mp').state === 'prepared', 60_000, 'prepared');
    const copySets = () =>
      controlAgent
        .info(controlAgent.session('mp'))
        .pairs.map((pair) => `${pair.primarySite ?? 'alpha'}:${pair.h1Volume}->${pair.h2Volume}`)
        .sort();
    expect(copySets()).toEqual(['alpha:a->a2', 'alpha:v->va2', 'bravo:b->b2', 'bravo:v->vb2']);

    const ambiguous = await controlAgent.removePair('mp', 'v').then(
      () => null,
      (error: unknown) => error,
    );
    expect(ambiguous).toBeInstanceOf(ProblemError);
    expect((ambiguous as ProblemError).problem).toBe('conflict');
    expect((ambiguous as ProblemError).message).toMatch(/alpha, bravo/);
    expect(copySets(), 'nothing removed').toEqual(['alpha:a->a2', 'alpha:v->va2', 'bravo:b->b2', 'bravo:v->vb2']);

    await controlAgent.removePair('mp', 'v', { primaryAgent: 'bravo' });
    await waitFor(() => !copySets().includes('bravo:v->vb2'), 30_000, 'bravo:v removed');
    expect(copySets()).toEqual(['alpha:a->a2', 'alpha:v->va2', 'bravo:b->b2']);
    expect(s.bravo.replication.service.pairsOf(s.bravo.replication.service.session('mp')).map((pair) => pair.h1Volume)).toEqual(['b']);

    // Asking for a site that holds no such copy set is not-found; the control agent's own is named by its site.
    await expect(controlAgent.removePair('mp', 'v', { primaryAgent: 'bravo' })).rejects.toMatchObject({ problem: 'not-found' });
    await controlAgent.removePair('mp', 'v', { primaryAgent: 'alpha' });
    expect(copySets()).toEqual(['alpha:a->a2', 'bravo:b->b2']);
    expect(controlAgent.session('mp').state).toBe('prepared');
  }, 120_000);
});

describe('session remove --primary-agent and session verify (real agents, CLI and API)', () => {
  const agents: AgentProcess[] = [];
  afterEach(async () => {
    await Promise.allSettled(agents.splice(0).map((agent) => agent.stop()));
  });

  it('answers conflict for a volume name at alpha and bravo and removes the copy set at the site named', async () => {
    const [alpha, bravo, charlie] = await Promise.all(['alpha', 'bravo', 'charlie'].map((site) => startAgentProcess({ site, trackSize: '64K' })));
    agents.push(alpha!, bravo!, charlie!);
    for (const [from, to] of [
      [alpha!, bravo!],
      [alpha!, charlie!],
      [bravo!, charlie!],
    ] as const) {
      const token = await agentCliJson<{ token: string }>(to, ['token']);
      await agentCliJson(from, ['pair', '--with', to.apiAddress, '--token', token.token]);
    }
    for (const [agent, name] of [
      [alpha!, 'v'],
      [bravo!, 'v'],
      [charlie!, 'va2'],
      [charlie!, 'vb2'],
    ] as const) {
      const created = await agent.cli(['volume', 'create', name, '4M']);
      expect(created.code, created.stderr).toBe(0);
    }
    await agentCliJson(alpha!, ['session', 'create', 'mp', '--type', 'async', '--peer', 'charlie']);
    await agentCliJson(alpha!, ['session', 'add', 'mp', 'v', 'va2']);
    await agentCliJson(alpha!, ['session', 'add', 'mp', 'v', 'vb2', '--primary-agent', 'bravo']);

    const ambiguous = await alpha!.cli(['session', 'remove', 'mp', 'v']);
    expect(ambiguous.code).not.toBe(0);
    expect(ambiguous.stderr).toMatch(/conflict/);
    expect(ambiguous.stderr).toMatch(/alpha, bravo/);

    const removed = await agentCliJson<{ removed: string; primaryAgent?: string; session: { pairs: Array<{ h1Volume: string; h2Volume: string; primarySite?: string }> } }>(
      alpha!,
      ['session', 'remove', 'mp', 'v', '--primary-agent', 'bravo'],
    );
    expect(removed.primaryAgent).toBe('bravo');
    expect(removed.session.pairs.map((pair) => `${pair.h1Volume}->${pair.h2Volume}`)).toEqual(['v->va2']);
    const plain = await alpha!.cli(['session', 'remove', 'mp', 'v']);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/removed v from mp/);

    // Both back, started: `session verify` at the control agent covers both, each named by its primary site.
    await agentCliJson(alpha!, ['session', 'add', 'mp', 'v', 'va2']);
    await agentCliJson(alpha!, ['session', 'add', 'mp', 'v', 'vb2', '--primary-agent', 'bravo']);
    await agentCliJson(alpha!, ['session', 'start', 'mp']);
    const deadline = Date.now() + 90_000;
    while ((await agentCliJson<{ state: string }>(alpha!, ['session', 'show', 'mp'])).state !== 'prepared') {
      if (Date.now() > deadline) throw new Error('never prepared');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const verified = await alpha!.cli(['session', 'verify', 'mp']);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/alpha:v\s+va2/);
    expect(verified.stdout).toMatch(/bravo:v\s+vb2/);
    const report = await agentCliJson<{ pairs: Array<{ primarySite?: string; trackCount: number }>; comparedTracks: number }>(alpha!, ['session', 'verify', 'mp']);
    expect(report.pairs.map((pair) => pair.primarySite).sort()).toEqual(['alpha', 'bravo']);
    expect(report.comparedTracks).toBe(report.pairs.reduce((sum, pair) => sum + pair.trackCount, 0));
  }, 180_000);
});
