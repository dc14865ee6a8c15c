import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import { runCommand } from './helpers/run-command.ts';

/**
 * `kill -9` of a real agent in the middle of NBD writes: fio hammers one
 * region with random writes while a second writer makes small writes it
 * flushes one by one. After the kill the pool must check clean offline, the
 * agent must start again, a region written and flushed before the load must
 * be intact, and every write whose flush was acknowledged must be there.
 */

const MiB = 1024 * 1024;


/** The byte qemu-io's -P fills block `index` with in the flushed-writes region. */
const patternOf = (index: number) => 1 + (index % 250);

let agent: AgentProcess;

beforeAll(async () => {
  agent = await startAgentProcess({ site: 'crash' });
  const created = await agent.cli(['volume', 'create', 'crash', '256M']);
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
    const killed = await agent.kill('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    writing = false;
    await flushedWriter;
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

    // The restarted pool is still consistent after serving reads and a clean stop.
    await agent.kill('SIGTERM');
    const after = await agent.cli(['check']);
    expect(after.code, `${after.stdout}\n${after.stderr}`).toBe(0);
  });
});
