/**
 * A consistent group: three sources flashed in one establish while a host
 * writes an ordered sequence of stamps across all three over NBD (stamp i
 * to a, then b, then c, each after the previous acknowledgement). The three
 * targets, read with nbdcopy, must hold the image after one prefix of that
 * sequence: the group's single point in time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import { establish, flashSession, qemuIo, readExport } from './helpers/flash.ts';
import { GroupStampWriter, NbdBlockClient } from './helpers/nbd-block-client.ts';
import { agentCliJson } from './helpers/run-command.ts';

const MiB = 1024 * 1024;
const SIZE = 8 * MiB;
const TRACK = 64 * 1024;
const names = ['a', 'b', 'c'] as const;

let agent: AgentProcess;

beforeAll(async () => {
  agent = await startAgentProcess({ site: 'flash-group' });
  for (const name of names) {
    await agentCliJson(agent, ['volume', 'create', `grp-${name}`, String(SIZE)]);
    await agentCliJson(agent, ['volume', 'create', `grp-${name}-pit`, String(SIZE)]);
  }
});

afterAll(async () => {
  await agent?.stop();
});

async function waitForWrites(writer: GroupStampWriter, count: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (writer.log.length < count) {
    if (writer.failure) throw writer.failure;
    if (Date.now() > deadline) throw new Error(`the writer made ${writer.log.length} of ${count} writes`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('consistent group of three pairs', () => {
  it('the three targets hold one prefix of the cross-volume write sequence, taken while the writer runs', async () => {
    // Something below the stamps too, so the whole image is checked, not only the slots.
    for (const name of names) await qemuIo(agent.nbdUri(`grp-${name}`), `write -P 0x5${names.indexOf(name)} 4M 1M`, 'flush');
    const hosts = await Promise.all(names.map((name) => NbdBlockClient.connect(agent.nbdHost, agent.nbdPort, `grp-${name}`)));
    // Slots one track apart: each stamp write touches its own track, so copy-on-write runs for most of them.
    const writer = new GroupStampWriter(TRACK);
    writer.start(hosts);
    let lowest: number;
    let highest: number;
    try {
      await waitForWrites(writer, 300);
      lowest = writer.log.length;
      const session = await establish(agent, {
        name: 'group',
        pairs: names.map((name) => ({ source: `grp-${name}`, target: `grp-${name}-pit` })),
        backgroundCopy: false,
        holdTimeoutMs: 5000,
      });
      highest = writer.log.length + names.length;
      expect(session.pairs.map((pair) => pair.target)).toEqual(names.map((name) => `grp-${name}-pit`));
      expect(session.state).toBe('copying');
      expect(session.holdMs).not.toBeNull();
      // Keep writing after the flash: every one of these must stay out of the targets.
      await waitForWrites(writer, writer.log.length + 300);
    } finally {
      await writer.stop();
      for (const host of hosts) await host.close();
    }

    const images = await Promise.all(names.map((name) => readExport(agent, `grp-${name}-pit`, `grp-${name}-pit.raw`)));
    const stamps = images.map((image) => writer.stampsIn(image));
    const prefix = writer.consistentPrefix(stamps);
    expect(prefix, `targets hold stamps ${JSON.stringify(stamps.map((s) => Math.max(...s)))}: not one prefix of the ${writer.log.length} writes`).toBeGreaterThanOrEqual(0);
    expect(prefix).toBeGreaterThanOrEqual(lowest);
    expect(prefix).toBeLessThanOrEqual(highest);
    expect(prefix).toBeLessThan(writer.log.length);
    // Beyond the slots every target is its source's old content.
    for (const [index, image] of images.entries()) {
      expect(image.subarray(4 * MiB, 5 * MiB).equals(Buffer.alloc(MiB, 0x50 + index))).toBe(true);
      expect(image.subarray(writer.slots * TRACK, 4 * MiB).equals(Buffer.alloc(4 * MiB - writer.slots * TRACK))).toBe(true);
    }

    const info = await flashSession(agent, 'group');
    expect(info.pairs).toHaveLength(3);
    const withdrawn = await agent.api.request('POST', '/v1/flash-sessions/group/withdraw', {});
    expect(withdrawn.status, JSON.stringify(withdrawn.body)).toBe(200);
  });
});
