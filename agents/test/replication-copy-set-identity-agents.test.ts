import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventListSchema, SessionInfoSchema, SessionListSchema, type AgentEvent, type SessionInfo } from '@tandem/contract';
import { StorageEngine } from '../src/storage/engine.ts';
import { startPairedAgents, type AgentProcess } from './helpers/agent-process.ts';
import { runCommand } from './helpers/run-command.ts';
import { staysPut, until } from './helpers/session-views.ts';

/**
 * Copy sets hold their volumes by immutable id, with real agent processes.
 * A copy set's volume deleted some other way than through the guarded calls
 * (here: the storage engine opened while the agent is down, as older agents
 * or an offline tool could) and made again under the same name is never
 * taken for the copy set's: the copy set is reported broken (pair state
 * `failed` with the reason), once (one `pair.broken` event per site, no
 * flapping), its session is suspended and severe, start and resume are
 * refused until it is removed, and neither this session's listing nor any
 * other session's breaks. Before, the secondary's whole session list
 * answered 404 and the recreated volume was mirrored into as if duplex.
 */

const MiB = 1024 * 1024;
let alpha: AgentProcess;
let beta: AgentProcess;

beforeAll(async () => {
  [alpha, beta] = await startPairedAgents([{ site: 'alpha' }, { site: 'beta' }]);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([alpha?.stop(), beta?.stop()]);
});

const path = (name: string) => `/v1/sessions/${encodeURIComponent(name)}`;
const show = (agent: AgentProcess, name: string): Promise<SessionInfo> => agent.api.call('GET', path(name), SessionInfoSchema);
const list = async (agent: AgentProcess): Promise<SessionInfo[]> => (await agent.api.call('GET', '/v1/sessions', SessionListSchema)).sessions;
const events = async (agent: AgentProcess, type: string, subject: string): Promise<AgentEvent[]> =>
  (await agent.api.call('GET', `/v1/events?type=${type}&subject=${subject}&limit=1000`, EventListSchema)).events;

async function preparedSession(name: string, pairs: Array<[string, string]>): Promise<void> {
  for (const [h1, h2] of pairs) {
    await alpha.api.call('POST', '/v1/volumes', null, { name: h1, sizeBytes: 16 * MiB });
    await beta.api.call('POST', '/v1/volumes', null, { name: h2, sizeBytes: 16 * MiB });
  }
  await alpha.api.call('POST', '/v1/sessions', null, { name, type: 'sync', peer: 'beta' });
  for (const [h1, h2] of pairs) await alpha.api.call('POST', `${path(name)}/pairs`, null, { h1Volume: h1, h2Volume: h2 });
  await alpha.api.call('POST', `${path(name)}/actions/start`, null, {});
  await until(`${name} prepared`, async () => (await show(alpha, name)).state === 'prepared');
}

/** What an older agent or an offline tool could do: delete the volume and make one of that name again, with the agent down. */
async function recreateOffline(agent: AgentProcess, volume: string): Promise<{ before: number; after: number }> {
  await agent.kill('SIGKILL');
  const engine = await StorageEngine.open(agent.dataDir);
  try {
    const before = engine.volumeId(volume);
    const size = engine.getVolume(volume).sizeBytes;
    await engine.deleteVolume(volume);
    const after = (await engine.createVolume(volume, size)).id;
    return { before, after };
  } finally {
    await engine.close();
  }
}

async function qemuIo(uri: string, command: string): Promise<string> {
  const result = await runCommand('qemu-io', ['-f', 'raw', '-c', command, uri]);
  expect(result.code, result.out).toBe(0);
  return result.out;
}

/** The session's state and its transitions at `agent` stay as they are for `ms` (a broken copy set does not flap). */

describe('copy sets hold their volumes by id', () => {
  it('a secondary volume deleted behind the guard and made again is reported broken once; listing, the other sessions and the removal work', async () => {
    await preparedSession('gold', [
      ['prod', 'copy'],
      ['prod2', 'copy2'],
    ]);
    await preparedSession('silver', [['other', 'other-c']]);
    await qemuIo(alpha.nbdUri('prod'), 'write -P 0x61 0 1M');

    const ids = await recreateOffline(beta, 'copy');
    expect(ids.after, 'a volume made again gets a new id').toBeGreaterThan(ids.before);
    const restarted = Date.now();
    await beta.restart({ samePorts: true });

    // The secondary lists its sessions (it answered 404 for all of them before), the broken copy set failed with its reason.
    const atBeta = await until('beta reports the copy set broken', async () => {
      const sessions = await list(beta);
      const gold = sessions.find((session) => session.name === 'gold');
      return gold?.pairs.find((pair) => pair.h2Volume === 'copy')?.state === 'failed' ? sessions : null;
    }, 20_000);
    expect(Date.now() - restarted, 'reported within 10 s of the restart').toBeLessThan(10_000);
    const goldAtBeta = atBeta.find((session) => session.name === 'gold')!;
    const broken = goldAtBeta.pairs.find((pair) => pair.h2Volume === 'copy')!;
    expect(broken.reason).toMatch(/copy \(id \d+\) at beta was deleted and another volume was made under that name \(id \d+\)/);
    expect(broken.brokenSince).toEqual(expect.any(String));
    expect(goldAtBeta.health).toBe('severe');
    expect(goldAtBeta.detail).toMatch(/^copy set prod -> copy (of session gold is )?broken/);
    expect(atBeta.find((session) => session.name === 'silver')).toMatchObject({ state: 'prepared', health: 'normal' });

    // The primary learns it: the session is suspended (one consistency group), severe, and says why.
    const goldAtAlpha = await until('alpha suspends gold', async () => {
      const view = await show(alpha, 'gold');
      return view.state === 'suspended' && view.pairs.some((pair) => pair.state === 'failed') ? view : null;
    }, 20_000);
    expect(goldAtAlpha.health).toBe('severe');
    expect(goldAtAlpha.detail).toMatch(/^copy set prod -> copy of session gold is broken: .*at beta was deleted/);
    expect(goldAtAlpha.pairs.find((pair) => pair.h1Volume === 'prod')).toMatchObject({ state: 'failed', reason: expect.stringMatching(/at beta was deleted/) });
    await until('silver prepared at alpha', async () => (await show(alpha, 'silver')).state === 'prepared');

    // Once: no flapping between suspended and preparing, one event per site.
    await staysPut(alpha, 'gold', 5000);
    await staysPut(beta, 'gold', 1000);
    expect(await events(alpha, 'pair.broken', 'gold')).toHaveLength(1);
    expect(await events(beta, 'pair.broken', 'gold')).toHaveLength(1);

    // The CLI says the same; resume and start are refused with the step to take first, and change nothing.
    const shown = await beta.cli(['session', 'show', 'gold']);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/failed/);
    const resume = await alpha.cli(['session', 'resume', 'gold']);
    expect(resume.code).toBe(1);
    expect(resume.stderr).toMatch(/^error: pair-broken: copy set prod -> copy of session gold is broken: .*tandem-agent session remove gold prod/m);
    expect((await show(alpha, 'gold')).state).toBe('suspended');

    // The volume made again under the name is an ordinary volume: writable by hosts, free to delete, not mirrored into.
    await qemuIo(beta.nbdUri('copy'), 'write -P 0x62 0 64k');

    // The way out: remove the broken copy set, resume the rest.
    const removed = await alpha.cli(['session', 'remove', 'gold', 'prod']);
    expect(removed.code, removed.stderr).toBe(0);
    await alpha.api.call('POST', `${path('gold')}/actions/resume`, null, {});
    const healthy = await until('gold prepared without the broken copy set', async () => {
      const view = await show(beta, 'gold');
      return view.state === 'prepared' && view.pairs.length === 1 ? view : null;
    });
    expect(healthy.health).toBe('normal');
    expect(healthy.pairs.map((pair) => pair.h2Volume)).toEqual(['copy2']);
    expect((await show(alpha, 'gold')).health).toBe('normal');
    expect(await events(alpha, 'pair.broken', 'gold')).toHaveLength(1);
    const deleted = await beta.cli(['volume', 'delete', 'copy']);
    expect(deleted.code, deleted.stderr).toBe(0);
  }, 240_000);

  it('a primary volume deleted behind the guard and made again is never mirrored as the copy set: the copy keeps its data', async () => {
    await preparedSession('bronze', [['p3', 'c3']]);
    await qemuIo(alpha.nbdUri('p3'), 'write -P 0x71 0 1M');
    const ids = await recreateOffline(alpha, 'p3');
    expect(ids.after).toBeGreaterThan(ids.before);
    await alpha.restart({ samePorts: true });

    const atAlpha = await until('alpha reports bronze broken', async () => {
      const view = await show(alpha, 'bronze');
      return view.pairs[0]?.state === 'failed' && view.state === 'suspended' ? view : null;
    }, 20_000);
    expect(atAlpha.health).toBe('severe');
    expect(atAlpha.pairs[0].reason).toMatch(/p3 \(id \d+\) at alpha was deleted and another volume was made under that name/);
    await until('beta learns it', async () => (await show(beta, 'bronze')).pairs[0]?.state === 'failed', 20_000);
    // Writes to the new p3 are its own: nothing reaches the copy set's target.
    await qemuIo(alpha.nbdUri('p3'), 'write -P 0x72 0 1M');
    const read = await qemuIo(beta.nbdUri('c3'), 'read -P 0x71 0 1M');
    expect(read).not.toMatch(/Pattern verification failed/);
    await staysPut(alpha, 'bronze', 3000);
    expect(await events(alpha, 'pair.broken', 'bronze')).toHaveLength(1);
    // The other sessions run on (gold lost its broken copy set in the test above).
    await until('gold prepared again', async () => (await show(alpha, 'gold')).state === 'prepared').catch(async (error) => {
      console.log(JSON.stringify(await show(alpha, 'gold'), null, 1), JSON.stringify(await events(alpha, 'session.*', 'gold'), null, 1));
      throw error;
    });
    expect((await list(alpha)).map((session) => session.name).sort()).toEqual(['bronze', 'gold', 'silver']);
  }, 240_000);
});
