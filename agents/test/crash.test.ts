import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import { runCommand } from './helpers/run-command.ts';

/**
 * `kill -9` of a real agent in the middle of NBD writes: fio hammers one
 * region with random writes while a second writer makes small writes it
 * flushes one by one, and a third overwrites 4 KiB blocks of a region
 * written before (in place, answered without yielding), flushing each batch.
 * After the kill the pool must check clean offline, the agent must start
 * again, a region written and flushed before the load must be intact, and
 * every write whose flush was acknowledged must be there.
 */

const MiB = 1024 * 1024;


/** The byte qemu-io's -P fills block `index` with in the flushed-writes and overwritten regions. */
const patternOf = (index: number) => 1 + (index % 250);

/** Where overwrite `index` lands in region D: 4 KiB at a 4 KiB-aligned place of its own 64 KiB track. */
const overwriteOffset = (index: number) => 256 * MiB + index * 64 * 1024 + (index % 16) * 4096;

let agent: AgentProcess;

beforeAll(async () => {
  agent = await startAgentProcess({ site: 'crash' });
  const created = await agent.cli(['volume', 'create', 'crash', '320M']);
  expect(created.code, created.stderr).toBe(0);
});

afterAll(async () => {
  await agent?.stop().catch(() => {});
});

describe('kill -9 during writes', () => {
  it('checks clean, restarts, and keeps every flushed write', async () => {
    const uri = agent.nbdUri('crash');
    // Region A: 32 MiB written and flushed before any load.
    const before = await runCommand('qemu-io', ['-f', 'raw', '-t', 'writeback', '-c', 'write -P 0x5a 0 32M', '-c', 'flush', uri]);
    expect(before.code, before.out).toBe(0);

    // Region B (32..64 MiB): one 64 KiB + 100 byte write per qemu-io run, each
    // flushed before qemu-io exits 0; a block counts as acknowledged only then.
    const acknowledged: number[] = [];
    let writing = true;
    const flushedWriter = (async () => {
      for (let index = 0; writing && index < 400; index++) {
        const offset = 32 * MiB + index * 80 * 1024 + 37;
        const result = await runCommand('qemu-io', ['-f', 'raw', '-t', 'writeback', '-c', `write -P ${patternOf(index)} ${offset} 65636`, '-c', 'flush', uri], 20_000);
        if (result.code !== 0) break;
        acknowledged.push(index);
      }
    })();

    // Region D (256..288 MiB): written and flushed first; then batches of 8 aligned 4 KiB overwrites
    // (one block per 64 KiB track, new blocks each batch), each batch flushed before qemu-io exits 0.
    const filled = await runCommand('qemu-io', ['-f', 'raw', '-t', 'writeback', '-c', 'write -P 0x33 256M 32M', '-c', 'flush', uri]);
    expect(filled.code, filled.out).toBe(0);
    const overwritten: number[] = [];
    const overwriter = (async () => {
      for (let batch = 0; writing && batch < 60; batch++) {
        const args = ['-f', 'raw', '-t', 'writeback'];
        for (let index = batch * 8; index < batch * 8 + 8; index++) args.push('-c', `write -P ${patternOf(index)} ${overwriteOffset(index)} 4k`);
        const result = await runCommand('qemu-io', [...args, '-c', 'flush', uri], 20_000);
        if (result.code !== 0) break;
        for (let index = batch * 8; index < batch * 8 + 8; index++) overwritten.push(index);
      }
    })();

    // Region C (64..256 MiB): fio random writes of mixed sizes, deep queue.
    const fio = runCommand('fio', [
      '--ioengine=nbd',
      `--uri=${uri}`,
      '--name=crash',
      '--rw=randwrite',
      '--bsrange=4k-256k',
      '--iodepth=16',
      '--offset=64M',
      '--size=192M',
      '--time_based',
      '--runtime=30',
    ]);

    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(acknowledged.length, 'the flushed writer made progress before the kill').toBeGreaterThan(0);
    expect(overwritten.length, 'the overwriter made progress before the kill').toBeGreaterThan(0);
    const killed = await agent.kill('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    writing = false;
    await flushedWriter;
    await overwriter;
    await fio;

    const check = await agent.cli(['check']);
    expect(check.code, `${check.stdout}\n${check.stderr}`).toBe(0);

    await agent.restart();
    const regionA = await runCommand('qemu-io', ['-f', 'raw', '-r', '-c', 'read -P 0x5a 0 32M', agent.nbdUri('crash')]);
    expect(regionA.code, regionA.out).toBe(0);
    expect(regionA.out).not.toMatch(/Pattern verification failed/);

    const reads = acknowledged.map((index) => {
      const offset = 32 * MiB + index * 80 * 1024 + 37;
      return `read -P ${patternOf(index)} ${offset} 65636`;
    });
    for (let start = 0; start < reads.length; start += 50) {
      const args = ['-f', 'raw', '-r'];
      for (const command of reads.slice(start, start + 50)) args.push('-c', command);
      const result = await runCommand('qemu-io', [...args, agent.nbdUri('crash')]);
      expect(result.code, result.out).toBe(0);
      expect(result.out, 'every acknowledged flushed write survived').not.toMatch(/Pattern verification failed/);
    }

    const overwrites = overwritten.map((index) => `read -P ${patternOf(index)} ${overwriteOffset(index)} 4k`);
    for (let start = 0; start < overwrites.length; start += 50) {
      const args = ['-f', 'raw', '-r'];
      for (const command of overwrites.slice(start, start + 50)) args.push('-c', command);
      const result = await runCommand('qemu-io', [...args, agent.nbdUri('crash')]);
      expect(result.code, result.out).toBe(0);
      expect(result.out, 'every acknowledged flushed overwrite survived').not.toMatch(/Pattern verification failed/);
    }

    // The restarted pool is still consistent after serving reads and a clean stop.
    await agent.kill('SIGTERM');
    const after = await agent.cli(['check']);
    expect(after.code, `${after.stdout}\n${after.stderr}`).toBe(0);
  });
});
