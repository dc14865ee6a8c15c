import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { readAll, startTwoSites, waitFor, type TwoSites } from './helpers/replication-sites.ts';

const MiB = 1024 * 1024;
const BLOCK = 4096;
const SLOTS = 32;

let sites: TwoSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

interface Stamp {
  volume: 'a' | 'b';
  slot: number;
  stamp: number;
  issuedAt: number;
  ackedAt: number;
}

function block(stamp: number): Buffer {
  const data = Buffer.alloc(BLOCK);
  for (let offset = 0; offset < BLOCK; offset += 8) data.writeBigUInt64BE(BigInt(stamp), offset);
  return data;
}

/** The stamps of the first `count` writes, per volume and slot (0 = never written). */
function imageAfter(writes: Stamp[], count: number): { a: number[]; b: number[] } {
  const image = { a: new Array<number>(SLOTS).fill(0), b: new Array<number>(SLOTS).fill(0) };
  for (const write of writes.slice(0, count)) image[write.volume][write.slot] = write.stamp;
  return image;
}

async function stampsAt(s: TwoSites, volume: string): Promise<number[]> {
  const data = Buffer.alloc(SLOTS * BLOCK);
  await s.h2.engine.device(volume).readInto(0, data);
  return Array.from({ length: SLOTS }, (_, slot) => Number(data.readBigUInt64BE(slot * BLOCK)));
}

describe('async mirroring with consistency groups', () => {
  it('keeps the secondary exactly the primary image as of the reported consistency time, across two volumes', async () => {
    sites = await startTwoSites();
    const s = sites;
    for (const [site, names] of [
      [s.h1, ['a', 'b']],
      [s.h2, ['a2', 'b2']],
    ] as const) {
      for (const name of names) await site.engine.createVolume(name, 16 * MiB);
    }
    // Data before the start goes by the initial copy.
    await s.h1.replication.exports.openExport('a').write(4 * MiB, randomBytes(2 * MiB));
    const service = s.h1.replication.service;
    await service.createSession('cg', 'async', 'beta');
    await service.addPair('cg', 'a', 'a2');
    await service.addPair('cg', 'b', 'b2');
    await service.act('cg', 'start');
    await waitFor(() => service.session('cg').state === 'prepared', 30_000, 'prepared');

    // A writer whose writes depend on each other: stamp i goes to a, then (after a's ack) to b.
    const writes: Stamp[] = [];
    const a = s.h1.replication.exports.openExport('a');
    const b = s.h1.replication.exports.openExport('b');
    let writing = true;
    const writer = (async () => {
      for (let stamp = 1; writing; stamp++) {
        // Writes can complete without leaving the microtask queue (page cache): let timers run.
        await new Promise((resolve) => setImmediate(resolve));
        for (const [volume, device] of [
          ['a', a],
          ['b', b],
        ] as const) {
          const slot = (stamp * 7 + (volume === 'a' ? 0 : 3)) % SLOTS;
          const issuedAt = Date.now();
          await device.write(slot * BLOCK, block(stamp));
          writes.push({ volume, slot, stamp, issuedAt, ackedAt: Date.now() });
        }
      }
    })();

    // Sample the secondary while groups keep arriving: frozen between applies, it must be a prefix image.
    const sessionAtH2 = s.h2.replication.service.session('cg');
    let samples = 0;
    let advancing = 0;
    let lastTime = 0;
    const deadline = Date.now() + 4000;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 120));
      const release = await s.h2.replication.service.applier.freeze(sessionAtH2.id);
      try {
        const reported = s.h2.replication.service.consistencyTime(sessionAtH2);
        if (!reported) continue;
        const cut = Date.parse(reported);
        const [stampsA, stampsB] = await Promise.all([stampsAt(s, 'a2'), stampsAt(s, 'b2')]);
        const lowest = writes.filter((w) => w.ackedAt < cut).length;
        const highest = writes.filter((w) => w.issuedAt <= cut).length;
        let match = false;
        for (let count = lowest; count <= highest && !match; count++) {
          const image = imageAfter(writes, count);
          match = image.a.every((v, i) => v === stampsA[i]) && image.b.every((v, i) => v === stampsB[i]);
        }
        expect(match, `secondary at ${reported} is the primary's image after ${lowest}..${highest} writes`).toBe(true);
        samples++;
        if (cut > lastTime) advancing++;
        lastTime = cut;
      } finally {
        release();
      }
    }
    writing = false;
    await writer;
    expect(samples).toBeGreaterThan(10);
    expect(advancing, 'the consistency time moves forward while writes continue').toBeGreaterThan(5);
    const info = service.info(service.session('cg'));
    expect(info.exposureSeconds).not.toBeNull();
    expect(info.exposureSeconds!).toBeLessThan(5);

    // Once the writer stops the secondary catches up completely.
    const last = writes.at(-1)!.ackedAt;
    await waitFor(() => Date.parse(service.consistencyTime(service.session('cg'))!) > last, 10_000, 'caught up');
    expect((await readAll(s.h1, 'a')).equals(await readAll(s.h2, 'a2'))).toBe(true);
    expect((await readAll(s.h1, 'b')).equals(await readAll(s.h2, 'b2'))).toBe(true);
    // Applied groups cleared their out-of-sync marks.
    await waitFor(() => service.info(service.session('cg')).pairs.every((p) => p.outOfSyncTracks === 0), 5000, 'marks cleared');
  }, 60_000);

  it('falls back to bitmaps when the link dies and converges when it returns', async () => {
    sites = await startTwoSites();
    const s = sites;
    await s.h1.engine.createVolume('a', 16 * MiB);
    await s.h2.engine.createVolume('a2', 16 * MiB);
    const service = s.h1.replication.service;
    await service.createSession('cg', 'async', 'beta');
    await service.addPair('cg', 'a', 'a2');
    await service.act('cg', 'start');
    await waitFor(() => service.session('cg').state === 'prepared', 30_000, 'prepared');
    s.proxy.blackhole(true);
    const device = s.h1.replication.exports.openExport('a');
    const started = Date.now();
    for (let i = 0; i < 20; i++) await device.write(i * 65536 * 3, randomBytes(8192));
    expect(Date.now() - started, 'async host writes do not wait for a dead link').toBeLessThan(2000);
    await waitFor(() => service.session('cg').state === 'suspended', 20_000, 'suspended');
    s.proxy.blackhole(false);
    await waitFor(() => service.session('cg').state === 'prepared', 30_000, 'prepared again');
    await waitFor(() => service.info(service.session('cg')).pairs[0].outOfSyncTracks === 0, 10_000, 'drained');
    expect((await readAll(s.h1, 'a')).equals(await readAll(s.h2, 'a2'))).toBe(true);
  }, 60_000);
});
