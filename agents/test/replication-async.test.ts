import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { readAll, startTwoSites, waitFor, type TwoSites } from './helpers/replication-sites.ts';
import { StampedWriter } from './helpers/stamped-writer.ts';

const MiB = 1024 * 1024;
const BLOCK = 4096;

let sites: TwoSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

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
    const writer = new StampedWriter(BLOCK);
    writer.start({ a: s.h1.replication.exports.openExport('a'), b: s.h1.replication.exports.openExport('b') });

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
        const [stampsA, stampsB] = await Promise.all([
          writer.stampsOf(s.h2.engine.device('a2')),
          writer.stampsOf(s.h2.engine.device('b2')),
        ]);
        const { match, lowest, highest } = writer.matchesCut(cut, stampsA, stampsB);
        expect(match, `secondary at ${reported} is the primary's image after ${lowest}..${highest} writes`).toBe(true);
        samples++;
        if (cut > lastTime) advancing++;
        lastTime = cut;
      } finally {
        release();
      }
    }
    await writer.stop();
    expect(samples).toBeGreaterThan(10);
    expect(advancing, 'the consistency time moves forward while writes continue').toBeGreaterThan(5);
    const info = service.info(service.session('cg'));
    expect(info.exposureSeconds).not.toBeNull();
    expect(info.exposureSeconds!).toBeLessThan(5);

    // Once the writer stops the secondary catches up completely.
    const last = writer.writes.at(-1)!.ackedAt;
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

  it('cuts a round early by size: a burst larger than one link frame allows ships without waiting for the interval', async () => {
    // The next round would start only after a minute: what ships before then was cut because the open part passed 16 MiB.
    process.env.TANDEM_ROUND_INTERVAL_MS = '60000';
    try {
      sites = await startTwoSites();
      const s = sites;
      await s.h1.engine.createVolume('a', 48 * MiB);
      await s.h2.engine.createVolume('a2', 48 * MiB);
      const service = s.h1.replication.service;
      await service.createSession('cg', 'async', 'beta');
      await service.addPair('cg', 'a', 'a2');
      await service.act('cg', 'start');
      await waitFor(() => service.session('cg').state === 'prepared', 30_000, 'prepared');
      const device = s.h1.replication.exports.openExport('a');
      const burst = randomBytes(40 * MiB);
      for (let offset = 0; offset < burst.length; offset += MiB) await device.write(offset, burst.subarray(offset, offset + MiB));
      // Rounds of at least 16 MiB are cut as the burst goes; each staged round starts the next one, which commits it:
      // the whole burst reaches the secondary long before the interval ends.
      const secondary = s.h2.engine.device('a2');
      const landed = Buffer.alloc(40 * MiB);
      const deadline = Date.now() + 30_000;
      for (;;) {
        await secondary.readInto(0, landed);
        if (landed.equals(burst)) break;
        if (Date.now() > deadline) throw new Error('timed out waiting for the burst at the secondary');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(service.session('cg').state).toBe('prepared');
      // Then the rounds rest: no round runs while nothing is written (the interval is a minute).
      const rounds = service.rounds.coordinatorOf(service.session('cg'))!.rounds.run;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(service.rounds.coordinatorOf(service.session('cg'))!.rounds.run, 'no rounds while idle').toBeLessThanOrEqual(rounds + 1);
    } finally {
      delete process.env.TANDEM_ROUND_INTERVAL_MS;
    }
  }, 90_000);
});
