import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlashSessionInfo } from '@tandem/contract';
import { startPairedAgents, type AgentProcess } from './helpers/agent-process.ts';
import { FaultProxy } from './helpers/fault-proxy.ts';
import { GroupStampWriter, NbdBlockClient } from './helpers/nbd-block-client.ts';
import { agentCliJson, runCommand } from './helpers/run-command.ts';

/**
 * Flash copy of mirrored volumes in a multi-primary async session, three
 * real agent processes driven with the CLI: alpha (the control agent, primary of
 * a), bravo (a member, primary of b and bt) and charlie (the secondary);
 * bravo's link to charlie goes through a byte-counting proxy. Dependent
 * writes go on at alpha and bravo over NBD while bravo flashes; the images
 * are compared with qemu-img.
 */

const MiB = 1024 * 1024;
const TRACK = 65536;

let alpha: AgentProcess;
let bravo: AgentProcess;
let charlie: AgentProcess;
let proxy: FaultProxy;

beforeAll(async () => {
  [alpha, bravo, charlie] = await startPairedAgents([{ site: 'alpha' }, { site: 'bravo' }, { site: 'charlie' }]);
  const [host, port] = charlie.runInfo.linkAddress!.split(':');
  proxy = await FaultProxy.start({ host, port: Number(port) });
  await agentCliJson(bravo, ['peers', 'set-link', 'charlie', proxy.address]);
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([alpha?.stop(), bravo?.stop(), charlie?.stop()]);
  await proxy?.close();
});

interface SessionJson {
  state: string;
  consistencyTime: string | null;
  pairs: Array<{ h1Volume: string; outOfSyncTracks: number }>;
}

async function waitUntil(agent: AgentProcess, check: (info: SessionJson) => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await agentCliJson<SessionJson>(agent, ['session', 'show', 'mp']);
    if (check(info)) return;
    if (Date.now() > deadline) throw new Error(`session mp never ${what}: ${JSON.stringify(info)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function identical(a: AgentProcess, aVolume: string, b: AgentProcess, bVolume: string): Promise<boolean> {
  const compare = await runCommand('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', a.nbdUri(aVolume), b.nbdUri(bVolume)]);
  return /Images are identical/.test(compare.out);
}

describe('flash copy in a multi-primary async session between agent processes', () => {
  it('preserve mirror and a coordinated point in time at the member, writes going on: charlie equals bravo, 40 MiB not shipped, writes held only ms', async () => {
    for (const [agent, names] of [
      [alpha, ['a']],
      [bravo, ['b', 'bt', 'bp']],
      [charlie, ['a2', 'b2', 'bt2', 'rb']],
    ] as const) {
      for (const name of names) {
        const created = await agent.cli(['volume', 'create', name, '64M']);
        expect(created.code, created.stderr).toBe(0);
      }
    }
    const before = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x41 4M 40M', bravo.nbdUri('b')]);
    expect(before.code, before.out).toBe(0);
    await agentCliJson(alpha, ['session', 'create', 'mp', '--type', 'async', '--peer', 'charlie']);
    await agentCliJson(alpha, ['session', 'add', 'mp', 'a', 'a2']);
    await agentCliJson(alpha, ['session', 'add', 'mp', 'b', 'b2', '--primary-agent', 'bravo']);
    await agentCliJson(alpha, ['session', 'add', 'mp', 'bt', 'bt2', '--primary-agent', 'bravo']);
    await agentCliJson(alpha, ['session', 'start', 'mp']);
    await waitUntil(alpha, (info) => info.state === 'prepared' && info.pairs.every((pair) => pair.outOfSyncTracks === 0), 'prepared');
    await waitUntil(charlie, (info) => info.state === 'prepared', 'prepared at charlie');

    // Dependent writes at both primaries: stamp i to alpha's a, then (acknowledged) to bravo's b.
    const clients = await Promise.all([
      NbdBlockClient.connect(alpha.nbdHost, alpha.nbdPort, 'a'),
      NbdBlockClient.connect(bravo.nbdHost, bravo.nbdPort, 'b'),
    ]);
    const writer = new GroupStampWriter(TRACK);
    writer.start(clients);
    try {
      const deadline = Date.now() + 20_000;
      while (writer.log.length < 100 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(writer.log.length).toBeGreaterThan(99);

      const sentBefore = proxy.forwarded.up;
      const loggedBefore = writer.log.length;
      const preserved = await agentCliJson<FlashSessionInfo>(bravo, ['flash', 'establish', '--pair', 'b:bt', '--name', 'pm', '--no-copy', '--preserve-mirror']);
      expect(preserved.pairs[0].mirror).toBe('preserved');
      console.log(`multi-primary preserve mirror (agent processes): writes held ${preserved.holdMs} ms`);
      // Held for the local change only (a hold for a round trip of the stream is hundreds of ms).
      expect(preserved.holdMs!).toBeLessThan(250);
      await waitUntil(alpha, (info) => info.pairs.find((pair) => pair.h1Volume === 'bt')!.outOfSyncTracks === 0, "bt's marks cleared");
      const sent = proxy.forwarded.up - sentBefore;
      const written = writer.log.slice(loggedBefore).filter(([volume]) => volume === 1).length * 4096;
      console.log(`multi-primary preserve mirror (agent processes): ${sent} bytes bravo -> charlie, host writes to b meanwhile ${written} bytes`);
      expect(sent).toBeLessThan(written + 8 * MiB);
      expect(await identical(bravo, 'bt', charlie, 'bt2'), "charlie's bt2 equals bravo's bt").toBe(true);
      const remote = await agentCliJson<FlashSessionInfo>(charlie, ['flash', 'show', 'pm']);
      expect(remote.pairs.map((pair) => [pair.source, pair.target])).toEqual([['b2', 'bt2']]);

      const coordinated = await agentCliJson<FlashSessionInfo>(bravo, ['flash', 'establish', '--pair', 'b:bp:rb', '--name', 'pb', '--no-copy', '--coordinated']);
      expect(coordinated.pairs[0].remoteTarget).toBe('rb');
      expect(coordinated.pairs[0].reason ?? null).toBeNull();
      expect(coordinated.holdMs!).toBeLessThan(250);
      expect(await identical(bravo, 'bp', charlie, 'rb'), "charlie's rb equals bravo's bp").toBe(true);
    } finally {
      await writer.stop();
      await Promise.all(clients.map((client) => client.close()));
    }
    expect(await identical(bravo, 'bp', bravo, 'b')).toBe(false); // b moved on after the point in time
    const last = Date.now();
    await waitUntil(
      alpha,
      (info) => info.consistencyTime !== null && Date.parse(info.consistencyTime) > last && info.pairs.every((pair) => pair.outOfSyncTracks === 0),
      'caught up',
    );
    expect(await identical(alpha, 'a', charlie, 'a2')).toBe(true);
    expect(await identical(bravo, 'b', charlie, 'b2')).toBe(true);
    expect(await identical(bravo, 'bt', charlie, 'bt2')).toBe(true);
  }, 300_000);
});
