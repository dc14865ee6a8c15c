import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PairBitmapSchema, ProblemSchema, VolumeBusyDetailSchema } from '@tandem/contract';
import { startPairedAgents, type AgentProcess } from './helpers/agent-process.ts';
import { FaultProxy } from './helpers/fault-proxy.ts';
import {
  preparedSession,
  qemuIo,
  sameBytes,
  sessionPath,
  showSession,
  showSessionText,
  until,
  untilSession,
} from './helpers/session-views.ts';

/**
 * The failures an administrator opens the console for, with real agent
 * processes, as the API and the CLI say them within 10 s and after the
 * recovery: the primary agent killed, the secondary agent killed, the link
 * cut by the fault proxy (both directions), and a live target's deletion
 * attempted. (The target's pool full and clock skew between the sites have
 * their own files: replication-pool-full-agents, replication-clock-skew-agents.)
 */

const SAID_WITHIN_MS = 10_000;
let alpha: AgentProcess;
let beta: AgentProcess;

beforeAll(async () => {
  [alpha, beta] = await startPairedAgents([{ site: 'alpha' }, { site: 'beta' }]);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([alpha?.stop(), beta?.stop()]);
});

describe('failures, as the API and the CLI say them', () => {
  it('primary agent killed: the secondary says so within 10 s (warning, unreachable since, exposure from then); normal again once it is back', async () => {
    await preparedSession(alpha, beta, 'pk', 'sync', 'p-pk', 'c-pk');
    await qemuIo(alpha.nbdUri('p-pk'), 'write -P 0x31 0 2M');
    const killedAt = Date.now();
    await alpha.kill('SIGKILL');

    const noticed = await untilSession(beta, 'pk', 'beta notices', (view) => view.health !== 'normal', 20_000);
    expect(Date.now() - killedAt, 'said within 10 s').toBeLessThan(SAID_WITHIN_MS);
    expect(noticed.health).toBe('warning');
    expect(noticed.detail).toMatch(/^primary site alpha unreachable since (\S+) \(last known: prepared\)/);
    expect(noticed.peers).toEqual([expect.objectContaining({ site: 'alpha', role: 'source', unreachableSince: expect.any(String) })]);
    expect(Date.parse(noticed.consistencyTime!)).toBe(Date.parse(noticed.peers[0].unreachableSince!));
    const text = await showSessionText(beta, 'pk');
    expect(text).toMatch(/state\s+prepared, health warning/);
    expect(text).toMatch(/detail\s+primary site alpha unreachable since/);
    expect(text).toMatch(/peers\s+alpha \(source\) (down|connecting), unreachable since/);
    // Every acknowledged write is there.
    await qemuIo(beta.nbdUri('c-pk'), 'read -P 0x31 0 2M');

    await alpha.restart({ samePorts: true });
    const back = await untilSession(beta, 'pk', 'normal again at beta', (view) => view.health === 'normal' && view.state === 'prepared');
    expect(back.detail).toBeNull();
    expect(back.peers[0]).toMatchObject({ link: 'connected', unreachableSince: null });
    await untilSession(alpha, 'pk', 'prepared at alpha', (view) => view.state === 'prepared' && view.health === 'normal');
    expect(await showSessionText(beta, 'pk')).toMatch(/state\s+prepared, health normal/);
  }, 180_000);

  it('secondary agent killed: the primary suspends at the next write within 10 s and marks what changes; resumes by itself once it is back', async () => {
    await preparedSession(alpha, beta, 'sk', 'sync', 'p-sk', 'c-sk');
    await beta.kill('SIGKILL');
    // A host write while the secondary is gone completes (marked here, not lost).
    const written = Date.now();
    await qemuIo(alpha.nbdUri('p-sk'), 'write -P 0x41 1M 1M');
    const suspended = await untilSession(alpha, 'sk', 'alpha suspends', (view) => view.state === 'suspended', 20_000);
    expect(Date.now() - written, 'said within 10 s of the write').toBeLessThan(SAID_WITHIN_MS);
    expect(suspended.health).toBe('severe');
    expect(suspended.detail).toMatch(/pair p-sk: link-down/);
    expect(suspended.pairs[0]).toMatchObject({ state: 'suspended', outOfSyncTracks: expect.any(Number) });
    expect(suspended.pairs[0].outOfSyncTracks).toBeGreaterThanOrEqual(16);
    expect(suspended.recoverable, 'beta holds the image of the suspension').toBe(true);
    const text = await showSessionText(alpha, 'sk');
    expect(text).toMatch(/state\s+suspended, health severe/);
    expect(text).toMatch(/p-sk\s+c-sk\s+suspended\s+\d+/);
    const bitmap = PairBitmapSchema.parse(JSON.parse((await alpha.cli(['session', 'bitmap', 'sk', 'p-sk', '--json'])).stdout));
    expect(bitmap.runs).toContainEqual([16, 16]);

    await beta.restart({ samePorts: true });
    const resumed = await untilSession(alpha, 'sk', 'resumed by itself', (view) => view.state === 'prepared' && view.pairs[0].outOfSyncTracks === 0, 90_000);
    expect(resumed.health).toBe('normal');
    await untilSession(beta, 'sk', 'prepared at beta', (view) => view.state === 'prepared' && view.health === 'normal');
    expect(await showSessionText(alpha, 'sk')).toMatch(/state\s+prepared, health normal/);
    await sameBytes(alpha.nbdUri('p-sk'), beta.nbdUri('c-sk'));
  }, 180_000);

  it('link cut by the fault proxy (both ways): each site says the other is unreachable within 10 s; after the heal both are normal and the copies equal', async () => {
    const toBeta = await FaultProxy.start(hostPort(beta.runInfo.linkAddress!));
    const toAlpha = await FaultProxy.start(hostPort(alpha.runInfo.linkAddress!));
    try {
      await alpha.api.call('PATCH', '/v1/peers/beta', null, { linkAddress: toBeta.address });
      await beta.api.call('PATCH', '/v1/peers/alpha', null, { linkAddress: toAlpha.address });
      await preparedSession(alpha, beta, 'lc', 'async', 'p-lc', 'c-lc');
      // Beta holds a consistent image of a known time (a group applied: groups ship host writes) before the cut: its
      // exposure then grows from it.
      await qemuIo(alpha.nbdUri('p-lc'), 'write -P 0x50 8M 1M');
      await untilSession(beta, 'lc', 'a group applied at beta', (view) => view.consistencyTime !== null);
      const cutAt = Date.now();
      for (const proxy of [toBeta, toAlpha]) {
        proxy.blackhole(true);
        proxy.resetAll();
      }
      await qemuIo(alpha.nbdUri('p-lc'), 'write -P 0x51 0 4M');
      const [atAlpha, atBeta] = await Promise.all([
        untilSession(alpha, 'lc', 'alpha says beta is unreachable', (view) => /secondary site beta unreachable since/.test(view.detail ?? ''), 20_000),
        untilSession(beta, 'lc', 'beta says alpha is unreachable', (view) => /primary site alpha unreachable since/.test(view.detail ?? ''), 20_000),
      ]);
      expect(Date.now() - cutAt, 'both said within 10 s').toBeLessThan(SAID_WITHIN_MS);
      expect(atAlpha.health).not.toBe('normal');
      expect(atBeta.health).toBe('warning');
      // The exposure grows from the moment the link went: the consistency time does not run on.
      const frozen = atBeta.consistencyTime;
      const later = await untilSession(beta, 'lc', 'exposure grows at beta', (view) => (view.exposureSeconds ?? 0) > (atBeta.exposureSeconds ?? 0) + 1);
      expect(later.consistencyTime).toBe(frozen);
      expect(await showSessionText(alpha, 'lc')).toMatch(/secondary site beta unreachable since/);
      expect(await showSessionText(beta, 'lc')).toMatch(/primary site alpha unreachable since/);

      for (const proxy of [toBeta, toAlpha]) proxy.blackhole(false);
      const healed = await untilSession(alpha, 'lc', 'prepared after the heal', (view) => view.state === 'prepared' && view.health === 'normal' && view.pairs[0].outOfSyncTracks === 0, 90_000);
      expect(healed.detail).toBeNull();
      await untilSession(beta, 'lc', 'normal at beta', (view) => view.health === 'normal' && view.detail === null);
      // A write after the heal ships in a group: beta's consistency time runs again (past the write).
      const caughtUp = Date.now();
      await qemuIo(alpha.nbdUri('p-lc'), 'write -P 0x52 12M 1M');
      await untilSession(beta, 'lc', 'the consistency time runs again', (view) => Date.parse(view.consistencyTime ?? '0') > caughtUp);
      await sameBytes(alpha.nbdUri('p-lc'), beta.nbdUri('c-lc'));
    } finally {
      await alpha.api.call('PATCH', '/v1/peers/beta', null, { linkAddress: beta.runInfo.linkAddress });
      await beta.api.call('PATCH', '/v1/peers/alpha', null, { linkAddress: alpha.runInfo.linkAddress });
      await Promise.all([toBeta.close(), toAlpha.close()]);
    }
  }, 180_000);

  it("a live target's deletion attempted: refused at once naming the session and the step, at the CLI and the API; nothing changes and it keeps mirroring", async () => {
    await preparedSession(alpha, beta, 'td', 'sync', 'p-td', 'c-td');
    const cli = await beta.cli(['volume', 'delete', 'c-td']);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(
      /^error: volume-busy: c-td is the secondary \(H2\) volume of copy set p-td -> c-td in session td \(prepared\); remove it from session td first \(tandem-agent session remove td p-td \(at the session's H1 site\), or tandem-agent session terminate td\), then delete it$/m,
    );
    const api = await beta.api.request('DELETE', '/v1/volumes/c-td');
    expect(api.status).toBe(409);
    const problem = ProblemSchema.parse(api.body);
    expect(problem.problem).toBe('volume-busy');
    expect(VolumeBusyDetailSchema.parse(problem.detail).dependents).toEqual([
      expect.objectContaining({ kind: 'copy-set', session: 'td', sessionState: 'prepared', role: 'h2', h1Volume: 'p-td', h2Volume: 'c-td', step: 'remove it from session td' }),
    ]);
    const resize = await beta.cli(['volume', 'resize', 'c-td', '128M']);
    expect(resize.code).toBe(1);
    expect(resize.stderr).toMatch(/volume-busy: .*both volumes of a copy set keep one size/);
    // The primary's volume likewise; and the API of the H1 site says the same.
    expect((await alpha.api.request('DELETE', '/v1/volumes/p-td')).status).toBe(409);

    for (const agent of [alpha, beta]) expect(await showSession(agent, 'td')).toMatchObject({ state: 'prepared', health: 'normal' });
    await qemuIo(alpha.nbdUri('p-td'), 'write -P 0x61 0 1M');
    await qemuIo(beta.nbdUri('c-td'), 'read -P 0x61 0 1M');
    expect((await beta.api.getVolume('c-td')).sizeBytes).toBe(64 * 1024 * 1024);
    // The step it named works: removed from the session (terminated first: it is its last copy set), the volume goes.
    expect((await alpha.cli(['session', 'terminate', 'td'])).code).toBe(0);
    expect((await alpha.cli(['session', 'remove', 'td', 'p-td'])).code).toBe(0);
    await until('beta forgot the copy set', async () => (await showSession(beta, 'td')).pairs.length === 0);
    const deleted = await beta.cli(['volume', 'delete', 'c-td']);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(await beta.api.request('GET', '/v1/volumes/c-td')).toMatchObject({ status: 404 });
    await alpha.api.call('DELETE', sessionPath('td'), null).catch(() => {});
  }, 180_000);
});

function hostPort(address: string): { host: string; port: number } {
  const [host, port] = address.split(':');
  return { host, port: Number(port) };
}
