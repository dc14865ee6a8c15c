import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import { agentCliJson, runCommand } from './helpers/run-command.ts';
import { FaultProxy } from './helpers/fault-proxy.ts';

/**
 * Two real agent processes paired through the CLI, mirroring through a
 * fault-injecting proxy, written to and read with qemu-io and qemu-img over
 * NBD. Covers pairing refusals, sync mirroring, kill -9 of the primary with
 * an incremental resync of exactly the marked tracks, and failover.
 */



interface SessionJson {
  state: string;
  pairs: Array<{ state: string; outOfSyncTracks: number }>;
}

async function waitForState(agent: AgentProcess, session: string, state: string, timeoutMs = 60_000): Promise<SessionJson> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await agentCliJson<SessionJson>(agent, ['session', 'show', session]);
    if (info.state === state) return info;
    if (Date.now() > deadline) throw new Error(`session ${session} stayed ${info.state}, never ${state}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

let h1: AgentProcess;
let h2: AgentProcess;
let proxy: FaultProxy;

beforeAll(async () => {
  [h1, h2] = await Promise.all([startAgentProcess({ site: 'alpha' }), startAgentProcess({ site: 'beta' })]);
  // h1 reaches h2's peer link through the proxy.
  const [host, port] = h2.runInfo.linkAddress!.split(':');
  proxy = await FaultProxy.start({ host, port: Number(port) });
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([h1?.stop(), h2?.stop()]);
  await proxy?.close();
});

describe('two agents', () => {
  it('refuses a wrong pairing token, then pairs with a good one', async () => {
    const bad = await h1.cli(['pair', '--with', h2.apiAddress, '--token', 'tdm_not-a-token']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/token-invalid/);
    const token = await agentCliJson<{ token: string }>(h2, ['token']);
    const paired = await agentCliJson<{ site: string }>(h1, ['pair', '--with', h2.apiAddress, '--token', token.token]);
    expect(paired.site).toBe('beta');
    const reuse = await h1.cli(['pair', '--with', h2.apiAddress, '--token', token.token]);
    expect(reuse.stderr).toMatch(/token-invalid/);
    await agentCliJson(h1, ['peers', 'set-link', 'beta', proxy.address]);
    const peers = await agentCliJson<{ peers: Array<{ site: string }> }>(h2, ['peers', 'list']);
    expect(peers.peers.map((p) => p.site)).toEqual(['alpha']);
  });

  it('mirrors writes made through NBD; kill -9 of the primary resyncs exactly the marked tracks', async () => {
    for (const [agent, name] of [
      [h1, 'prod'],
      [h2, 'copy'],
    ] as const) {
      const created = await agent.cli(['volume', 'create', name, '64M']);
      expect(created.code, created.stderr).toBe(0);
    }
    const write = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x41 0 8M', h1.nbdUri('prod')]);
    expect(write.code, write.out).toBe(0);
    await agentCliJson(h1, ['session', 'create', 'gold', '--type', 'sync', '--peer', 'beta']);
    await agentCliJson(h1, ['session', 'add', 'gold', 'prod', 'copy']);
    await agentCliJson(h1, ['session', 'start', 'gold']);
    await waitForState(h1, 'gold', 'prepared');
    // Mirrored from now on: this write is at h2 when qemu-io returns.
    const more = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x42 20M 3M', h1.nbdUri('prod')]);
    expect(more.code, more.out).toBe(0);
    const compare = await runCommand('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', h1.nbdUri('prod'), h2.nbdUri('copy')]);
    expect(compare.out).toMatch(/Images are identical/);
    // The target refuses host writes.
    const refused = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x43 0 4k', h2.nbdUri('copy')]);
    expect(refused.out).toMatch(/Operation not permitted|Permission denied|error/i);

    // Activity marks of the writes above clear once their tracks are quiet (2 s).
    await new Promise((resolve) => setTimeout(resolve, 3000));
    // Writes in flight when the primary dies; they touch tracks 32 MiB..40 MiB only.
    const writer = runCommand('fio', [
      '--ioengine=nbd',
      `--uri=${h1.nbdUri('prod')}`,
      '--name=dying',
      '--rw=randwrite',
      '--bs=16k',
      '--iodepth=8',
      '--offset=32M',
      '--size=8M',
      '--time_based',
      '--runtime=20',
    ]);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await h1.kill('SIGKILL');
    await writer;
    const eventsBefore = (await h1.cli(['events', '--json'])).code; // agent is down: refused
    expect(eventsBefore).not.toBe(0);
    await h1.restart();
    await waitForState(h1, 'gold', 'prepared');
    const events = await agentCliJson<{ events: Array<{ type: string; data?: Record<string, number> }> }>(h1, ['events']);
    const resync = events.events.filter((e) => e.type === 'session.resync').at(-1)!;
    const synced = events.events.filter((e) => e.type === 'session.synced').at(-1)!;
    const marked = resync.data!.markedTracks;
    // Marks cover whole 4 MiB regions of the activity log: after the crash every track of a region
    // with writes in progress counts as out-of-sync. fio wrote 32..40 MiB, regions 8 and 9: all their
    // 128 tracks (64 KiB) are marked. The 3 MiB write at 20 MiB (region 5, 64 tracks) may still have
    // been in the log (a region leaves once idle about 5 s): 64 more; or, on a loaded machine, its
    // own 48 tracks may still hold their activity marks (cleared once quiet 2 s and flushed at the
    // target, which the 3 s wait above does not guarantee): 48 more. Nothing else went through the
    // mirror: never more, never a full copy.
    expect([128, 128 + 48, 128 + 64]).toContain(marked);
    expect(synced.data!.copiedTracks).toBe(marked);
    const after = await runCommand('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', h1.nbdUri('prod'), h2.nbdUri('copy')]);
    expect(after.out).toMatch(/Images are identical/);

    // Online verify by segment codes through the CLI: every track compared, none differs.
    const verified = await agentCliJson<{ comparedTracks: number; differingTracks: number; pairs: Array<{ trackCount: number }> }>(h1, [
      'session',
      'verify',
      'gold',
    ]);
    expect(verified.pairs[0].trackCount).toBe(1024);
    expect(verified.comparedTracks).toBe(1024);
    expect(verified.differingTracks).toBe(0);
    const text = await h1.cli(['session', 'verify', 'gold']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/differing\s+0 track/);
    const verifyEvents = await agentCliJson<{ events: Array<{ type: string; data?: Record<string, number> }> }>(h1, ['events']);
    expect(verifyEvents.events.filter((e) => e.type === 'session.verified').map((e) => e.data!.differingTracks)).toEqual([0, 0]);
  }, 180_000);

  it('fails over: every acknowledged write is readable at the secondary, which then takes writes', async () => {
    const write = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x55 50M 1M', h1.nbdUri('prod')]);
    expect(write.code, write.out).toBe(0);
    await h1.kill('SIGKILL');
    // The disaster: recover at h2 with h1 gone.
    const recovered = await agentCliJson<{ state: string }>(h2, ['session', 'recover', 'gold']);
    expect(recovered.state).toBe('target-available');
    const read = await runCommand('qemu-io', ['-f', 'raw', '-c', 'read -P 0x55 50M 1M', '-c', 'read -P 0x42 20M 3M', h2.nbdUri('copy')]);
    expect(read.out).not.toMatch(/Pattern verification failed/);
    const production = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x66 0 64k', h2.nbdUri('copy')]);
    expect(production.code, production.out).toBe(0);
    const show = await agentCliJson<{ pairs: Array<{ targetChangedTracks: number }> }>(h2, ['session', 'show', 'gold']);
    expect(show.pairs[0].targetChangedTracks).toBe(1);
  }, 120_000);
});
