import { createHash, randomFillSync } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, qemuIo, run, runOk, startNbdHarness, type NbdHarness } from './helpers/nbd-harness.ts';

/**
 * Real NBD clients from the distribution (qemu-io, qemu-img, nbdcopy,
 * nbdinfo, fio) against the real storage engine over TCP and a Unix socket.
 */

let harness: NbdHarness;

beforeAll(async () => {
  harness = await startNbdHarness();
});

afterAll(async () => {
  await harness?.close();
});

interface MapEntry {
  offset: number;
  length: number;
  type: number;
  description: string;
}

async function allocationMap(uri: string): Promise<MapEntry[]> {
  return JSON.parse(await runOk('nbdinfo', ['--map', '--json', uri])) as MapEntry[];
}

async function sha256(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

describe('NBD with real clients', () => {
  it('qemu-io writes and reads back patterns, unaligned ranges included (TCP)', async () => {
    await harness.engine.createVolume('qemu-patterns', 64 * MiB);
    const uri = harness.uri('qemu-patterns');
    await qemuIo(
      uri,
      'write -P 0x11 0 1M',
      'write -P 0x22 1M 64k',
      'write -P 0x33 3000 5000',
      'write -P 0x44 63M 1M',
      'flush',
    );
    await qemuIo(
      uri,
      'read -P 0x11 0 3000',
      'read -P 0x33 3000 5000',
      'read -P 0x11 8000 1040576',
      'read -P 0x22 1M 64k',
      'read -P 0 2M 1M',
      'read -P 0x44 63M 1M',
    );
    // A wrong expectation must be reported, or the checks above prove nothing.
    await expect(qemuIo(uri, 'read -P 0x55 0 4k')).rejects.toThrow(/Pattern verification failed/);
  });

  it('qemu-io over the Unix socket, with FUA writes and write-zeroes with and without holes', async () => {
    await harness.engine.createVolume('unix-patterns', 16 * MiB);
    const uri = harness.unixUri('unix-patterns');
    await qemuIo(uri, 'write -f -P 0x5a 0 4M', 'write -z 1M 1M', 'write -z -u 2M 1M', 'aio_flush');
    await qemuIo(uri, 'read -P 0x5a 0 1M', 'read -P 0 1M 2M', 'read -P 0x5a 3M 1M');
    const map = await allocationMap(uri);
    // NO_HOLE zeroes (plain `write -z`) stay allocated; `-u` may unmap: a hole.
    const at = (offset: number) => map.find((entry) => entry.offset <= offset && offset < entry.offset + entry.length);
    expect(at(1 * MiB)?.type).toBe(0);
    expect(at(2 * MiB)?.type).toBe(3);
    expect(at(3 * MiB)?.type).toBe(0);
  });

  it('nbdinfo --map shows holes after trim, and a fresh volume as one hole', async () => {
    await harness.engine.createVolume('map-trim', 16 * MiB);
    const uri = harness.uri('map-trim');
    expect(await allocationMap(uri)).toEqual([{ offset: 0, length: 16 * MiB, type: 3, description: 'hole,zero' }]);

    await qemuIo(uri, 'write -P 0x77 0 16M');
    expect(await allocationMap(uri)).toEqual([{ offset: 0, length: 16 * MiB, type: 0, description: 'data' }]);

    await qemuIo(uri, 'discard 4M 4M', 'discard 12M 4M');
    expect(await allocationMap(uri)).toEqual([
      { offset: 0, length: 4 * MiB, type: 0, description: 'data' },
      { offset: 4 * MiB, length: 4 * MiB, type: 3, description: 'hole,zero' },
      { offset: 8 * MiB, length: 4 * MiB, type: 0, description: 'data' },
      { offset: 12 * MiB, length: 4 * MiB, type: 3, description: 'hole,zero' },
    ]);
    await qemuIo(uri, 'read -P 0 4M 4M', 'read -P 0x77 8M 4M');
  });

  it('nbdcopy moves a 256 MiB random file in and back out byte for byte; qemu-img compare agrees', async () => {
    const size = 256 * MiB;
    await harness.engine.createVolume('copy-256m', size);
    const source = path.join(harness.dir, 'source.raw');
    const back = path.join(harness.dir, 'back.raw');
    const file = await open(source, 'w');
    const block = Buffer.allocUnsafe(8 * MiB);
    for (let written = 0; written < size; written += block.length) {
      randomFillSync(block);
      // A zero region in the middle lets nbdcopy and qemu-img exercise hole handling.
      if (written === 64 * MiB) block.fill(0);
      await file.write(block, 0, block.length, written);
    }
    await file.close();

    const uri = harness.uri('copy-256m');
    await runOk('nbdcopy', ['--flush', source, uri], 120_000);
    await runOk('nbdcopy', [uri, back], 120_000);
    expect(await sha256(back)).toBe(await sha256(source));

    const same = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', source, uri], 120_000);
    expect(same.code, same.stdout + same.stderr).toBe(0);
    expect(same.stdout).toMatch(/Images are identical/);

    // qemu-img compare must notice a single changed byte.
    await qemuIo(uri, 'write -P 0xee 100M 1');
    const differ = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', source, uri], 120_000);
    expect(differ.code).toBe(1);
    expect(differ.stdout).toMatch(/Content mismatch at offset 104857600/);
  });

  it('qemu-img convert and nbdcopy copies of a sparse volume come out sparse and identical', async () => {
    await harness.engine.createVolume('sparse-copy', 64 * MiB);
    const uri = harness.uri('sparse-copy');
    await qemuIo(uri, 'write -P 0x42 8M 1M', 'write -P 0x43 40M 64k');
    const converted = path.join(harness.dir, 'converted.raw');
    const copied = path.join(harness.dir, 'copied.raw');
    await runOk('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', uri, converted]);
    await runOk('nbdcopy', [uri, copied]);
    for (const file of [converted, copied]) {
      const info = await stat(file);
      expect(info.size).toBe(64 * MiB);
      expect(info.blocks * 512).toBeLessThan(4 * MiB);
      const same = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', file, uri]);
      expect(same.code, same.stdout + same.stderr).toBe(0);
    }
  });

  it('fio --ioengine=nbd random 4K writes at queue depth 16 verify with crc32c (TCP)', async () => {
    await harness.engine.createVolume('fio-tcp', 64 * MiB);
    const result = await run('fio', fioArgs(harness.uri('fio-tcp'), 'randwrite', '4k', 16, '32M'), 120_000);
    expectVerified(result.code, result.stdout + result.stderr, '32.0MiB');
  });

  it('fio --ioengine=nbd sequential 1M writes at queue depth 4 verify with crc32c (Unix socket)', async () => {
    await harness.engine.createVolume('fio-unix', 64 * MiB);
    const result = await run('fio', fioArgs(harness.unixUri('fio-unix'), 'write', '1M', 4, '64M'), 120_000);
    expectVerified(result.code, result.stdout + result.stderr, '64.0MiB');
  });

  it('serves several exports to concurrent connections without mixing their data', async () => {
    const names = ['multi-a', 'multi-b', 'multi-c', 'multi-d'];
    for (const name of names) await harness.engine.createVolume(name, 8 * MiB);
    const patterns = [0xa1, 0xb2, 0xc3, 0xd4];
    await Promise.all(
      names.map((name, index) => {
        const uri = index % 2 === 0 ? harness.uri(name) : harness.unixUri(name);
        return qemuIo(uri, `write -P ${patterns[index]} 0 8M`);
      }),
    );
    await Promise.all(names.map((name, index) => qemuIo(harness.uri(name), `read -P ${patterns[index]} 0 8M`)));
    // Every connection has gone: the volumes are released again.
    await waitFor(() => harness.server.connectionCount === 0);
    for (const name of names) expect(harness.engine.device(name)).toMatchObject({ openCount: 0 });
  });

  it('nbdinfo lists every export with its description and the advertised block sizes', async () => {
    await harness.engine.createVolume('listed', 4 * MiB);
    const list = JSON.parse(await runOk('nbdinfo', ['--list', '--no-content', '--json', harness.uri('')])) as {
      exports: Array<Record<string, unknown>>;
    };
    const listed = list.exports.find((entry) => entry['export-name'] === 'listed');
    expect(listed).toMatchObject({
      'export-size': 4 * MiB,
      description: expect.stringContaining('volume'),
      'block_size_minimum': 1,
      'block_size_preferred': 64 * 1024,
      'block_size_maximum': 32 * MiB,
      'can_multi_conn': true,
      'can_trim': true,
      'can_zero': true,
      'can_fua': true,
      'can_flush': true,
      'is_read_only': false,
    });
  });
});

/** fio exited cleanly (verify_fatal makes a bad block fatal) after reading back all it wrote. */
function expectVerified(code: number, output: string, io: string): void {
  expect(code, output).toBe(0);
  expect(output).toMatch(/err= 0/);
  expect(output.match(/WRITE: bw=.*io=(\S+)/)?.[1]).toBe(io);
  expect(output.match(/READ: bw=.*io=(\S+)/)?.[1]).toBe(io);
}

function fioArgs(uri: string, rw: string, blockSize: string, depth: number, size: string): string[] {
  return [
    '--name=verify',
    '--ioengine=nbd',
    `--uri=${uri}`,
    `--rw=${rw}`,
    `--bs=${blockSize}`,
    `--iodepth=${depth}`,
    `--size=${size}`,
    '--verify=crc32c',
    '--do_verify=1',
    '--verify_fatal=1',
    '--randrepeat=0',
  ];
}

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
