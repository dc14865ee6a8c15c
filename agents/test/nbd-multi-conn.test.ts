import { execFile } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, runCli, startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import { CMD, RawNbdClient } from './helpers/nbd-raw-client.ts';

/**
 * NBD multi-conn: the agent advertises NBD_FLAG_CAN_MULTI_CONN because a
 * FLUSH on any connection covers every write completed on any connection
 * (one group commit for the whole pool: data files fdatasync'd, then the
 * WAL). Clients like nbdcopy then use several connections by themselves.
 */

const MiB = 1024 * 1024;
const CAN_MULTI_CONN = 1 << 8;

function run(command: string, args: string[], timeoutMs = 120_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 16 * MiB }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

let agent: AgentProcess;
let dir: string;

beforeAll(async () => {
  agent = await startAgentProcess({ site: 'multi-conn' });
  dir = await makeTempDir('tandem-multi-conn-');
  for (const [name, size] of [['copy', '64M'], ['flushed', '16M']]) {
    const created = await runCli(['volume', 'create', name, size, '--data', agent.dataDir]);
    expect(created.code, created.stderr).toBe(0);
  }
}, 120_000);

afterAll(async () => {
  await agent?.stop().catch(() => {});
});

describe('NBD multi-conn', () => {
  it('is advertised, and nbdcopy over 4 connections copies 64 MiB in and out intact', async () => {
    const info = await run('nbdinfo', ['--json', agent.nbdUri('copy')]);
    expect(info.code, info.out).toBe(0);
    expect(JSON.parse(info.out).exports[0].can_multi_conn).toBe(true);

    const source = path.join(dir, 'source.raw');
    const back = path.join(dir, 'back.raw');
    await writeFile(source, randomFillSync(Buffer.alloc(64 * MiB)));
    const copyIn = await run('nbdcopy', ['--connections=4', '--requests=16', source, agent.nbdUri('copy')]);
    expect(copyIn.code, copyIn.out).toBe(0);
    const copyOut = await run('nbdcopy', ['--connections=4', agent.nbdUri('copy'), back]);
    expect(copyOut.code, copyOut.out).toBe(0);
    const digest = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');
    expect(await digest(back)).toBe(await digest(source));
  });

  it('a FLUSH on one connection makes writes completed on another durable (kill -9 after it)', async () => {
    const writer = await RawNbdClient.connect({ host: agent.nbdHost, port: agent.nbdPort });
    const flusher = await RawNbdClient.connect({ host: agent.nbdHost, port: agent.nbdPort });
    try {
      const negotiated = await writer.negotiate('flushed', { structured: false });
      expect(negotiated.flags & CAN_MULTI_CONN).toBe(CAN_MULTI_CONN);
      await flusher.negotiate('flushed', { structured: false });
      // First writes into a fresh thin volume: their track mappings live in the WAL, not yet committed.
      const blocks = [0, 3, 7, 12].map((n) => ({ offset: n * MiB + 4096 * n, data: Buffer.alloc(256 * 1024, 0x30 + n) }));
      for (const [index, block] of blocks.entries()) {
        writer.sendRequest(CMD.WRITE, 0, index + 1, block.offset, block.data.length, block.data);
        expect(await writer.readReply()).toMatchObject({ kind: 'simple', error: 0 });
      }
      flusher.sendRequest(CMD.FLUSH, 0, 99, 0, 0);
      expect(await flusher.readReply()).toMatchObject({ kind: 'simple', error: 0, handle: 99 });
      await agent.kill('SIGKILL');
      await agent.restart();
      for (const block of blocks) {
        const read = await run('qemu-io', ['-f', 'raw', '-r', '-c', `read -P ${block.data[0]} ${block.offset} ${block.data.length}`, agent.nbdUri('flushed')]);
        expect(read.code, read.out).toBe(0);
        expect(read.out).not.toMatch(/Pattern verification failed/);
      }
    } finally {
      writer.destroy();
      flusher.destroy();
    }
  });
});
