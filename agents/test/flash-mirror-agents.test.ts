import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlashSessionInfo } from '@tandem/contract';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import { agentCliJson, runCommand } from './helpers/run-command.ts';
import { FaultProxy } from './helpers/fault-proxy.ts';

/**
 * Flash copy of mirrored volumes between two real agent processes, driven
 * with the CLI (the control API underneath), written and compared with
 * qemu-io and qemu-img over NBD, the peer link through a byte-counting proxy.
 */

let h1: AgentProcess;
let h2: AgentProcess;
let proxy: FaultProxy;

beforeAll(async () => {
  [h1, h2] = await Promise.all([startAgentProcess({ site: 'alpha' }), startAgentProcess({ site: 'beta' })]);
  const [host, port] = h2.runInfo.linkAddress!.split(':');
  proxy = await FaultProxy.start({ host, port: Number(port) });
  const token = await agentCliJson<{ token: string }>(h2, ['token']);
  await agentCliJson(h1, ['pair', '--with', h2.apiAddress, '--token', token.token]);
  await agentCliJson(h1, ['peers', 'set-link', 'beta', proxy.address]);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([h1?.stop(), h2?.stop()]);
  await proxy?.close();
});

async function waitForPrepared(session: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const info = await agentCliJson<{ state: string; pairs: Array<{ outOfSyncTracks: number }> }>(h1, ['session', 'show', session]);
    if (info.state === 'prepared' && info.pairs.every((pair) => pair.outOfSyncTracks === 0)) return;
    if (Date.now() > deadline) throw new Error(`session ${session} stayed ${info.state}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function identical(a: AgentProcess, aVolume: string, b: AgentProcess, bVolume: string): Promise<boolean> {
  const compare = await runCommand('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', a.nbdUri(aVolume), b.nbdUri(bVolume)]);
  return /Images are identical/.test(compare.out);
}

describe('flash copy of mirrored volumes between agent processes', () => {
  it('preserve mirror and a coordinated point in time through the CLI', async () => {
    for (const [agent, names] of [
      [h1, ['src', 'tgt', 'pit']],
      [h2, ['src2', 'tgt2', 'rpit']],
    ] as const) {
      for (const name of names) {
        const created = await agent.cli(['volume', 'create', name, '64M']);
        expect(created.code, created.stderr).toBe(0);
      }
    }
    const write = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x41 0 40M', h1.nbdUri('src')]);
    expect(write.code, write.out).toBe(0);
    await agentCliJson(h1, ['session', 'create', 'm', '--type', 'sync', '--peer', 'beta']);
    await agentCliJson(h1, ['session', 'add', 'm', 'src', 'src2']);
    await agentCliJson(h1, ['session', 'add', 'm', 'tgt', 'tgt2']);
    await agentCliJson(h1, ['session', 'start', 'm']);
    await waitForPrepared('m');

    const before = proxy.forwarded.up;
    const preserved = await agentCliJson<FlashSessionInfo>(h1, ['flash', 'establish', '--pair', 'src:tgt', '--name', 'pm', '--no-copy', '--preserve-mirror']);
    expect(preserved.pairs[0].mirror).toBe('preserved');
    await waitForPrepared('m');
    // 40 MiB of changed data stayed home: the secondary flashed its own volumes.
    expect(proxy.forwarded.up - before).toBeLessThan(64 * 1024);
    expect(await identical(h1, 'tgt', h2, 'tgt2')).toBe(true);
    expect(await identical(h1, 'tgt', h1, 'src')).toBe(true);
    const remote = await agentCliJson<FlashSessionInfo>(h2, ['flash', 'show', 'pm']);
    expect(remote.pairs.map((pair) => [pair.source, pair.target])).toEqual([['src2', 'tgt2']]);

    // A coordinated point in time: the secondary's remote target equals the primary's target.
    const more = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x42 8M 4M', h1.nbdUri('src')]);
    expect(more.code, more.out).toBe(0);
    const coordinated = await agentCliJson<FlashSessionInfo>(h1, ['flash', 'establish', '--pair', 'src:pit:rpit', '--name', 'both', '--no-copy', '--coordinated']);
    expect(coordinated.pairs[0].remoteTarget).toBe('rpit');
    const after = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x43 0 1M', h1.nbdUri('src')]);
    expect(after.code, after.out).toBe(0);
    expect(await identical(h1, 'pit', h2, 'rpit')).toBe(true);
    expect(await identical(h1, 'pit', h1, 'src')).toBe(false);
    expect(await identical(h1, 'src', h2, 'src2')).toBe(true);
  }, 300_000);

  it('the out-of-sync marks of a flash onto a suspended mirrored primary survive kill -9 and ship on resume', async () => {
    for (const [agent, names] of [
      [h1, ['ksrc', 'ktgt']],
      [h2, ['ksrc2', 'ktgt2']],
    ] as const) {
      for (const name of names) {
        const created = await agent.cli(['volume', 'create', name, '64M']);
        expect(created.code, created.stderr).toBe(0);
      }
    }
    const write = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x51 0 24M', h1.nbdUri('ksrc')]);
    expect(write.code, write.out).toBe(0);
    await agentCliJson(h1, ['session', 'create', 'k', '--type', 'sync', '--peer', 'beta']);
    await agentCliJson(h1, ['session', 'add', 'k', 'ksrc', 'ksrc2']);
    await agentCliJson(h1, ['session', 'add', 'k', 'ktgt', 'ktgt2']);
    await agentCliJson(h1, ['session', 'start', 'k']);
    await waitForPrepared('k');
    await agentCliJson(h1, ['session', 'suspend', 'k']);
    // Suspended: the flash's changed tracks can only be marked, and the marks are all that remembers them.
    const shipped = await agentCliJson<FlashSessionInfo>(h1, ['flash', 'establish', '--pair', 'ksrc:ktgt', '--name', 'kf', '--no-copy']);
    expect(shipped.pairs[0].mirror).toBe('shipped');
    await h1.kill('SIGKILL');
    await h1.restart();
    expect(await identical(h1, 'ktgt', h1, 'ksrc')).toBe(true);
    expect(await identical(h1, 'ktgt', h2, 'ktgt2')).toBe(false);
    await agentCliJson(h1, ['session', 'resume', 'k']);
    await waitForPrepared('k');
    expect(await identical(h1, 'ktgt', h2, 'ktgt2')).toBe(true);
    expect(await identical(h1, 'ksrc', h2, 'ksrc2')).toBe(true);
  }, 300_000);
});
