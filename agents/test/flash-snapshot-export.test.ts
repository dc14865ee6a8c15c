/**
 * Snapshots as backup sources: a read-only snapshot taken with the CLI while
 * a host keeps writing over NBD is exported read-only; nbdcopy reads the
 * point-in-time image while production writes go on, and writes to the
 * export are refused with EPERM (as the NBD protocol says for a read-only
 * export). A real agent process, real clients.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VolumeInfoSchema } from '@tandem/contract';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import { GroupStampWriter, NbdBlockClient, NbdCommandError, stampBlock } from './helpers/nbd-block-client.ts';
import { ERR } from './helpers/nbd-raw-client.ts';
import { qemuIo, run, runOk } from './helpers/nbd-harness.ts';
import { agentCliJson } from './helpers/run-command.ts';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
const TRACK = 64 * 1024;

let agent: AgentProcess;

beforeAll(async () => {
  agent = await startAgentProcess({ site: 'flash-snap' });
});

afterAll(async () => {
  await agent?.stop();
});

/** The qemu-io patterns written before the snapshot, outside the writer's slots (first 2 MiB). */
const patterns: Array<[number, number, number]> = [
  [0x11, 4 * MiB, 8 * MiB],
  [0x22, 20 * MiB, 3 * MiB + 4096],
  [0x33, 63 * MiB, MiB],
];

describe('read-only snapshot as a backup source', () => {
  it('nbdcopy of a read-only snapshot taken under load equals the point-in-time image; writes to it get EPERM', async () => {
    await agentCliJson(agent, ['volume', 'create', 'prod', String(SIZE)]);
    await qemuIo(agent.nbdUri('prod'), ...patterns.map(([byte, offset, length]) => `write -P ${byte} ${offset} ${length}`), 'flush');

    const host = await NbdBlockClient.connect(agent.nbdHost, agent.nbdPort, 'prod');
    const writer = new GroupStampWriter(TRACK);
    writer.start([host]);
    const copy = path.join(path.dirname(agent.dataDir), 'backup.raw');
    try {
      while (writer.log.length < 200) await new Promise((resolve) => setTimeout(resolve, 20));
      const lowest = writer.log.length;
      const created = VolumeInfoSchema.parse(await agentCliJson(agent, ['snapshot', 'create', 'prod', 'prod-backup', '--read-only']));
      const highest = writer.log.length + 1;
      expect(created).toMatchObject({ kind: 'snapshot', source: 'prod', readOnly: true, sizeBytes: SIZE });

      // The backup reads while production keeps writing, stamps and a qemu-io overwrite of a pattern.
      const before = writer.log.length;
      await runOk('nbdcopy', [agent.nbdUri('prod-backup'), copy]);
      await qemuIo(agent.nbdUri('prod'), `write -P 0x44 ${4 * MiB} ${MiB}`);
      while (writer.log.length < before + 200) await new Promise((resolve) => setTimeout(resolve, 20));
      await writer.stop();

      const image = await readFile(copy);
      expect(image.length).toBe(SIZE);
      const prefix = writer.consistentPrefix([writer.stampsIn(image)]);
      expect(prefix, `snapshot holds a prefix of the ${writer.log.length} writes`).toBeGreaterThanOrEqual(lowest);
      expect(prefix).toBeLessThanOrEqual(highest);
      // Byte for byte: the patterns, the stamps of that prefix, zeros elsewhere.
      const expected = Buffer.alloc(SIZE);
      for (const [byte, offset, length] of patterns) expected.fill(byte, offset, offset + length);
      const stamps = new Map<number, number>();
      for (const [, slot, stamp] of writer.log.slice(0, prefix)) stamps.set(slot, stamp);
      for (const [slot, stamp] of stamps) stampBlock(stamp).copy(expected, slot * TRACK);
      expect(image.equals(expected), 'the copy differs from the point-in-time image').toBe(true);
      // Production moved on: the volume no longer reads like the backup.
      const now = await NbdBlockClient.connect(agent.nbdHost, agent.nbdPort, 'prod');
      const moved = Buffer.alloc(MiB);
      await now.readInto(4 * MiB, moved);
      expect(moved.equals(Buffer.alloc(MiB, 0x44))).toBe(true);
      await now.close();
    } finally {
      await writer.stop().catch(() => {});
      await host.close();
    }

    // Read-only over NBD: the flag, EPERM for a write, qemu-io refused, nothing changed.
    const info = JSON.parse(await runOk('nbdinfo', ['--json', agent.nbdUri('prod-backup')])) as { exports: Array<{ is_read_only: boolean }> };
    expect(info.exports[0].is_read_only).toBe(true);
    const backup = await NbdBlockClient.connect(agent.nbdHost, agent.nbdPort, 'prod-backup');
    expect(backup.readOnly).toBe(true);
    const refused = await backup.write(4 * MiB, Buffer.alloc(4096, 0xee)).then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(NbdCommandError);
    expect((refused as NbdCommandError).errno).toBe(ERR.EPERM);
    await backup.close();
    const qemuWrite = await run('qemu-io', ['-f', 'raw', '-c', `write -P 0xee ${4 * MiB} 4k`, agent.nbdUri('prod-backup')]);
    expect(`${qemuWrite.stdout}${qemuWrite.stderr}`).toMatch(/read-only|Operation not permitted|permission/i);
    const again = path.join(path.dirname(agent.dataDir), 'backup-again.raw');
    await runOk('nbdcopy', [agent.nbdUri('prod-backup'), again]);
    const compare = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', copy, again]);
    expect(compare.code, compare.stdout + compare.stderr).toBe(0);
  });
});
