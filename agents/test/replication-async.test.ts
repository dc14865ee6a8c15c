import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { readAll, startTwoSites, waitFor, type TwoSites } from './helpers/replication-sites.ts';

const MiB = 1024 * 1024;

let sites: TwoSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

// The consistency of the rounds under dependent writes, with one primary agent and with two, is one scenario in
// replication-multi-primary.test.ts.
describe('async mirroring with consistency groups', () => {
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
