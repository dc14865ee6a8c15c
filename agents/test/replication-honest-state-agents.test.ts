import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPairedAgents, type AgentProcess } from './helpers/agent-process.ts';
import { FaultProxy } from './helpers/fault-proxy.ts';
import { runCommand } from './helpers/run-command.ts';
import { sessionPath, showSession, startOneCopySet, until } from './helpers/session-api.ts';

/**
 * State an administrator can trust, with real agent processes: every
 * session view says when it was observed and where its state came from; an
 * agent notices a silent other site of the mirror within 10 s (health at
 * least warning, "unreachable since", the consistency time no later than the
 * moment it went silent, so exposure keeps growing); "recoverable" only while
 * a consistent image exists at the target.
 */

let alpha: AgentProcess;
let beta: AgentProcess;

beforeAll(async () => {
  [alpha, beta] = await startPairedAgents([{ site: 'alpha' }, { site: 'beta' }]);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([alpha?.stop(), beta?.stop()]);
});

const path = sessionPath;
const show = showSession;

async function preparedSession(name: string, type: 'sync' | 'async', volume: string, copy: string): Promise<void> {
  await startOneCopySet(alpha, beta, { name, type, h2Site: 'beta', volume, copy });
  await until(`${name} prepared`, async () => (await show(alpha, name)).state === 'prepared');
}

describe('honest state', () => {
  it('the secondary reports a silent primary within 10 s; its consistency time stops at the moment it went silent', async () => {
    await preparedSession('silent', 'sync', 'p-silent', 'c-silent');
    const before = await show(beta, 'silent');
    expect(before.health).toBe('normal');
    expect(before.stateFrom.site).toBe('alpha');
    expect(Date.parse(before.observedAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(before.peers).toEqual([expect.objectContaining({ site: 'alpha', role: 'source', link: 'connected', unreachableSince: null })]);

    const killedAt = Date.now();
    await alpha.kill('SIGKILL');
    const noticed = await until('beta notices alpha is gone', async () => {
      const view = await show(beta, 'silent');
      return view.health !== 'normal' ? view : null;
    }, 20_000);
    expect(Date.now() - killedAt, 'noticed within 10 s').toBeLessThan(10_000);
    expect(noticed.health).toBe('warning');
    expect(noticed.detail).toMatch(/^primary site alpha unreachable since \S+ \(last known: prepared\)/);
    // Unreachable since it was last heard (heartbeat replies come every second, later under load).
    const silentSince = Date.parse(noticed.peers[0].unreachableSince!);
    expect(silentSince).toBeGreaterThanOrEqual(killedAt - 2500);
    expect(silentSince).toBeLessThanOrEqual(killedAt + 1000);
    expect(noticed.peers[0].link).not.toBe('connected');
    // Exposure keeps growing from the moment alpha went silent (not "now" any more).
    expect(Date.parse(noticed.consistencyTime!)).toBe(silentSince);
    const later = await until('exposure grows', async () => {
      const view = await show(beta, 'silent');
      return view.exposureSeconds! > noticed.exposureSeconds! + 1 ? view : null;
    });
    expect(later.consistencyTime).toBe(noticed.consistencyTime);

    await alpha.restart({ samePorts: true });
    await until('normal again', async () => (await show(beta, 'silent')).health === 'normal');
  }, 120_000);

  it('the primary reports a silent secondary within 10 s even while nothing is written', async () => {
    await preparedSession('quiet', 'async', 'p-quiet', 'c-quiet');
    const killedAt = Date.now();
    await beta.kill('SIGKILL');
    // Its rounds find no secondary to stage at (the session suspends), and the silence is said.
    const noticed = await until('alpha says beta is gone', async () => {
      const view = await show(alpha, 'quiet');
      return /secondary site beta unreachable since/.test(view.detail ?? '') ? view : null;
    }, 20_000);
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    expect(noticed.health).not.toBe('normal');
    // The async consistency time does not run ahead while nothing reaches beta.
    const frozen = noticed.consistencyTime;
    const later = await until('exposure grows', async () => {
      const view = await show(alpha, 'quiet');
      return view.exposureSeconds! > 3 ? view : null;
    });
    expect(later.consistencyTime).toBe(frozen);
    await beta.restart({ samePorts: true });
    await until('normal again', async () => (await show(alpha, 'quiet')).health === 'normal');
  }, 120_000);

  it('recoverable only while a consistent image exists: not during the initial copy or a resync, yes when prepared or suspended from prepared', async () => {
    const name = 'image';
    // A WAN of 20 ms each way: copies take seconds, so the copying states are seen for sure.
    const [host, port] = beta.runInfo.linkAddress!.split(':');
    const wan = await FaultProxy.start({ host, port: Number(port) });
    wan.setLatency(20);
    await alpha.api.call('PATCH', '/v1/peers/beta', null, { linkAddress: wan.address });
    await alpha.api.call('POST', '/v1/volumes', null, { name: 'p-image', sizeBytes: 256 * 1024 * 1024 });
    await beta.api.call('POST', '/v1/volumes', null, { name: 'c-image', sizeBytes: 256 * 1024 * 1024 });
    const filled = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x61 0 192M', alpha.nbdUri('p-image')]);
    expect(filled.code, filled.out).toBe(0);
    await alpha.api.call('POST', '/v1/sessions', null, { name, type: 'sync', peer: 'beta' });
    await alpha.api.call('POST', `${path(name)}/pairs`, null, { h1Volume: 'p-image', h2Volume: 'c-image' });
    expect((await show(alpha, name)).recoverable, 'defined: no image yet').toBe(false);
    // The initial copy, suspended midway.
    await alpha.api.call('POST', `${path(name)}/actions/start`, null, {});
    const copying = await show(alpha, name);
    expect(copying.state).toBe('preparing');
    expect(copying.recoverable, 'during the initial copy').toBe(false);
    const syncing = copying.pairs[0];
    expect(syncing.trackSize).toBe(65536);
    await alpha.api.call('POST', `${path(name)}/actions/suspend`, null, {});
    const stopped = await show(alpha, name);
    expect(stopped.state).toBe('suspended');
    expect(stopped.recoverable, 'suspended during the initial copy').toBe(false);
    await alpha.api.call('POST', `${path(name)}/actions/resume`, null, {});
    await until('prepared', async () => (await show(alpha, name)).state === 'prepared', 120_000);
    expect((await show(alpha, name)).recoverable).toBe(true);
    await until('beta learns it', async () => (await show(beta, name)).recoverable);
    await alpha.api.call('POST', `${path(name)}/actions/suspend`, null, {});
    expect((await show(alpha, name)).recoverable, 'suspended from prepared').toBe(true);
    const written = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x62 0 160M', alpha.nbdUri('p-image')]);
    expect(written.code, written.out).toBe(0);
    await alpha.api.call('POST', `${path(name)}/actions/resume`, null, {});
    const resync = await until('syncing', async () => {
      const view = await show(alpha, name);
      return view.pairs[0].state === 'syncing' ? view : null;
    });
    expect(resync.state).toBe('preparing');
    expect(resync.recoverable, 'during a resync').toBe(false);
    // Progress counts the data that moves: the 160 MiB written while suspended (2560 tracks of 64 KiB).
    expect(resync.pairs[0].copyBytes?.total).toBe(160 * 1024 * 1024);
    expect(resync.pairs[0].outOfSyncTracks * resync.pairs[0].trackSize).toBeLessThanOrEqual(160 * 1024 * 1024);
    await until('prepared again', async () => (await show(alpha, name)).state === 'prepared', 120_000);
    expect((await show(alpha, name)).recoverable).toBe(true);
    await alpha.api.call('PATCH', '/v1/peers/beta', null, { linkAddress: beta.runInfo.linkAddress });
    await wan.close();
  }, 180_000);
});
