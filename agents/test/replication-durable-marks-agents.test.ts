import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPairedAgents, type AgentProcess } from './helpers/agent-process.ts';
import { runCommand } from './helpers/run-command.ts';
import { sessionPath, showSession, startOneCopySet, until, untilDrained } from './helpers/session-api.ts';

/**
 * No write left behind (PROTOCOL.md), with real agent processes: a track
 * leaves the out-of-sync bitmap only once the secondary holds it durably, so
 * a kill -9 of the secondary right after writes or a resync loses nothing;
 * and a primary agent restarted while its session is suspended still marks
 * what hosts write (fio and qemu-io over NBD, compared with qemu-img).
 */

let alpha: AgentProcess;
let beta: AgentProcess;

beforeAll(async () => {
  [alpha, beta] = await startPairedAgents([{ site: 'alpha' }, { site: 'beta' }]);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([alpha?.stop(), beta?.stop()]);
});

const show = (name: string) => showSession(alpha, name);
const drained = (name: string, volume: string) => untilDrained(alpha, name, volume);

async function startSession(name: string, type: 'sync' | 'semi-sync' | 'async', volume: string, copy: string): Promise<void> {
  await startOneCopySet(alpha, beta, { name, type, h2Site: 'beta', volume, copy });
  await drained(name, volume);
}

/** qemu-io writes of 4 KiB (no FUA) into `count` different tracks spread over the volume (qemu flushes when it closes the image). */
async function writeTracks(volume: string, count: number, pattern: number, from = 0): Promise<void> {
  const commands = Array.from({ length: count }, (_, i) => ['-c', `write -P ${pattern} ${(from + i * 7) * 65536 + 4096} 4k`]).flat();
  const written = await runCommand('qemu-io', ['-f', 'raw', ...commands, alpha.nbdUri(volume)]);
  expect(written.code, written.out).toBe(0);
}

/** fio (libnbd engine) writes 4 KiB at the start of `count` consecutive tracks, without FUA and without any flush. */
async function writeTracksUnflushed(volume: string, count: number): Promise<void> {
  const args = ['--name=unflushed', '--ioengine=nbd', `--uri=${alpha.nbdUri(volume)}`, '--rw=write:60k', '--bs=4k', `--io_size=${count * 4096}`, '--size=64M'];
  const written = await runCommand('fio', args);
  expect(written.code, written.out).toBe(0);
}

async function expectIdentical(volume: string, copy: string): Promise<void> {
  const compare = await runCommand('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', alpha.nbdUri(volume), beta.nbdUri(copy)]);
  expect(compare.out).toMatch(/Images are identical/);
}

describe('marks leave only what the secondary holds durably', () => {
  for (const type of ['sync', 'semi-sync'] as const) {
    it(`${type}: kill -9 of the secondary right after acknowledged writes; after its restart the writes are there`, async () => {
      const name = `kill-${type}`;
      await startSession(name, type, `p-${type}`, `c-${type}`);
      // Acknowledged (sync: written there; semi-sync: arrived there), never flushed: the secondary's metadata of
      // these first writes into its tracks is not durable yet when it dies.
      await writeTracksUnflushed(`p-${type}`, 48);
      await beta.kill('SIGKILL');
      await beta.restart({ samePorts: true });
      await drained(name, `p-${type}`);
      await expectIdentical(`p-${type}`, `c-${type}`);
    }, 180_000);
  }

  for (const type of ['sync', 'async'] as const) {
    it(`${type}: a secondary that restarted while nothing is written is noticed when the link is back, not at the next write: suspended, resynced, prepared`, async () => {
      const name = `quiet-${type}`;
      await startSession(name, type, `p-quiet-${type}`, `c-quiet-${type}`);
      const last = async () => {
        const response = await alpha.api.request('GET', `/v1/events?subject=${name}&limit=10&newest=true`);
        return ((response.body as { events: Array<{ id: number; type: string; data?: { to?: string } }> }).events ?? []).at(-1)?.id ?? 0;
      };
      const before = await last();
      await beta.kill('SIGKILL');
      await beta.restart({ samePorts: true });
      // No host write: the source asks the restarted target at once, which knows no run of it (what it had acknowledged
      // but not made durable may be lost): the session suspends and resyncs what its marks cover, by itself.
      await until('the restart noticed without a write', async () => {
        const response = await alpha.api.request('GET', `/v1/events?subject=${name}&after=${before}&limit=1000`);
        const events = (response.body as { events: Array<{ type: string; data?: { to?: string } }> }).events ?? [];
        return events.some((event) => event.type === 'session.state' && event.data?.to === 'suspended');
      }, 30_000);
      await drained(name, `p-quiet-${type}`);
      expect((await show(name)).state).toBe('prepared');
      await expectIdentical(`p-quiet-${type}`, `c-quiet-${type}`);
    }, 180_000);
  }

  it('sync: kill -9 of the secondary right after a resync; the tracks it copied are there after the restart', async () => {
    const name = 'resync';
    await startSession(name, 'sync', 'p-resync', 'c-resync');
    await alpha.api.call('POST', `${sessionPath(name)}/actions/suspend`, null, {});
    await writeTracksUnflushed('p-resync', 60);
    expect((await show(name)).pairs[0].outOfSyncTracks).toBe(60);
    await alpha.api.call('POST', `${sessionPath(name)}/actions/resume`, null, {});
    await drained(name, 'p-resync');
    await beta.kill('SIGKILL');
    await beta.restart({ samePorts: true });
    await drained(name, 'p-resync');
    await expectIdentical('p-resync', 'c-resync');
  }, 180_000);

  it('a primary agent killed while its session is suspended by a link failure resumes it by itself once the link is back', async () => {
    const name = 'failed';
    await startSession(name, 'sync', 'p-failed', 'c-failed');
    // The link breaks (beta's address now answers nothing); the next write suspends the session with the reason.
    await alpha.api.call('PATCH', '/v1/peers/beta', null, { linkAddress: '127.0.0.1:9' });
    await writeTracks('p-failed', 8, 0x21);
    await until('suspended by the failure', async () => {
      const session = await show(name);
      return session.state === 'suspended' && session.detail !== null;
    });
    await alpha.kill('SIGKILL');
    await alpha.restart({ samePorts: true });
    await writeTracks('p-failed', 8, 0x22, 100);
    await alpha.api.call('PATCH', '/v1/peers/beta', null, { linkAddress: beta.runInfo.linkAddress });
    await drained(name, 'p-failed');
    await expectIdentical('p-failed', 'c-failed');
  }, 180_000);

  it('a primary agent restarted while its session is suspended marks what hosts write; the resume copies it', async () => {
    const name = 'restart';
    await startSession(name, 'async', 'p-restart', 'c-restart');
    await alpha.api.call('POST', `${sessionPath(name)}/actions/suspend`, null, {});
    await alpha.restart({ samePorts: true });
    await writeTracks('p-restart', 24, 0x77, 3);
    const suspended = await show(name);
    expect(suspended.state).toBe('suspended');
    expect(suspended.pairs[0].outOfSyncTracks).toBe(24);
    await alpha.api.call('POST', `${sessionPath(name)}/actions/resume`, null, {});
    await drained(name, 'p-restart');
    await expectIdentical('p-restart', 'c-restart');
  }, 180_000);
});
