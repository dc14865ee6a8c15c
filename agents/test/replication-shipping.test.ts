import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { StampedWriter } from './helpers/stamped-writer.ts';
import { readAll, startTwoSites, waitFor, type TwoSites } from './helpers/replication-sites.ts';

/**
 * Snapshot-shipping sessions between two sites in one process: cycles ship
 * only the tracks marked since the previous cycle, read from a snapshot,
 * and the target applies each cycle all-or-nothing.
 */

const MiB = 1024 * 1024;
const TRACK = 65536;
const BLOCK = 4096;
/** Framing, request parameters and entry lists of one cycle are well under this. */
const CYCLE_OVERHEAD_BYTES = 16 * 1024;

let sites: TwoSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

const host = (s: TwoSites, site: 'h1' | 'h2', volume: string) => s[site].replication.exports.openExport(volume);
const state = (s: TwoSites, site: 'h1' | 'h2', session = 's1') => s[site].replication.service.session(session).state;

async function shippingPair(s: TwoSites, size: number, shipIntervalMs = 60 * 60_000): Promise<void> {
  await s.h1.engine.createVolume('prod', size);
  await s.h2.engine.createVolume('copy', size);
  await s.h1.replication.service.createSession('s1', 'snapshot-shipping', 'beta', { shipIntervalMs });
  await s.h1.replication.service.addPair('s1', 'prod', 'copy');
}

describe('snapshot-shipping sessions', () => {
  it('ship only the tracks changed since the previous cycle, and nothing when nothing changed', async () => {
    sites = await startTwoSites();
    const s = sites;
    await shippingPair(s, 32 * MiB);
    await host(s, 'h1', 'prod').write(2 * MiB, randomBytes(4 * MiB));
    const service = s.h1.replication.service;
    await service.act('s1', 'start');
    await waitFor(() => state(s, 'h1') === 'prepared', 30_000, 'prepared after the first cycle');
    // The first cycle copied the allocated tracks only.
    expect(service.shippingOf('s1')!.last!.tracks).toBe(64);
    expect((await readAll(s.h1, 'prod')).equals(await readAll(s.h2, 'copy'))).toBe(true);

    // Seven tracks changed, some by small writes, one of them twice.
    const changed = [0, 5, 40, 41, 100, 300, 511];
    for (const track of changed) await host(s, 'h1', 'prod').write(track * TRACK + 8192, randomBytes(BLOCK));
    await host(s, 'h1', 'prod').write(40 * TRACK, randomBytes(2 * BLOCK));
    const before = s.proxy.forwarded.up;
    const report = await service.shipNow('s1');
    const sent = s.proxy.forwarded.up - before;
    expect(report.tracks).toBe(changed.length);
    expect(report.bytesSent).toBe(changed.length * TRACK);
    expect(sent, 'bytes on the wire: the changed tracks plus framing').toBeGreaterThanOrEqual(changed.length * TRACK);
    expect(sent).toBeLessThan(changed.length * TRACK * 1.05 + CYCLE_OVERHEAD_BYTES);
    expect((await readAll(s.h1, 'prod')).equals(await readAll(s.h2, 'copy'))).toBe(true);
    expect(service.info(service.session('s1')).pairs[0].outOfSyncTracks).toBe(0);
    expect(s.h2.replication.service.consistencyTime(s.h2.replication.service.session('s1'))).toBe(new Date(report.time).toISOString());

    // Nothing changed: an empty cycle, only framing on the wire.
    const idle = s.proxy.forwarded.up;
    const empty = await service.shipNow('s1');
    expect(empty.tracks).toBe(0);
    expect(s.proxy.forwarded.up - idle).toBeLessThan(CYCLE_OVERHEAD_BYTES);
    // Only the last cycle's snapshot is kept at the source.
    expect(s.h1.engine.listVolumes().filter((v) => v.name.startsWith('tandem-ship-'))).toHaveLength(1);
    // Host writes do not wait for the link.
    s.proxy.setLatency(200);
    const started = Date.now();
    for (let i = 0; i < 10; i++) await host(s, 'h1', 'prod').write(i * TRACK, randomBytes(BLOCK));
    expect(Date.now() - started).toBeLessThan(1000);
    s.proxy.setLatency(0);

    await service.act('s1', 'terminate');
    await waitFor(() => state(s, 'h2') === 'defined', 10_000, 'terminated at h2');
    expect(s.h1.engine.listVolumes().filter((v) => v.name.startsWith('tandem-ship-'))).toHaveLength(0);
  }, 60_000);

  it('keeps the target exactly the source image at the reported consistency time, across two volumes', async () => {
    sites = await startTwoSites();
    const s = sites;
    for (const [site, names] of [
      [s.h1, ['a', 'b']],
      [s.h2, ['a2', 'b2']],
    ] as const) {
      for (const name of names) await site.engine.createVolume(name, 8 * MiB);
    }
    const service = s.h1.replication.service;
    await service.createSession('s1', 'snapshot-shipping', 'beta', { shipIntervalMs: 150 });
    await service.addPair('s1', 'a', 'a2');
    await service.addPair('s1', 'b', 'b2');
    await service.act('s1', 'start');
    await waitFor(() => state(s, 'h1') === 'prepared', 30_000, 'prepared');

    // A writer whose writes depend on each other: stamp i goes to a, then (after a's ack) to b.
    const writer = new StampedWriter(TRACK); // slots spread over tracks, so cycles ship several tracks
    writer.start({ a: host(s, 'h1', 'a'), b: host(s, 'h1', 'b') });

    const targetService = s.h2.replication.service;
    const sessionAtH2 = targetService.session('s1');
    let samples = 0;
    let advancing = 0;
    let lastTime = 0;
    // At least 4 s of samples, longer (up to 60 s) until six cycles were seen: a loaded machine ships fewer cycles a second.
    const start = Date.now();
    while (Date.now() < start + 4000 || ((advancing <= 5 || samples <= 10) && Date.now() < start + 60_000)) {
      await new Promise((resolve) => setTimeout(resolve, 90));
      const release = await targetService.receiver.freeze(sessionAtH2.id);
      try {
        const reported = targetService.consistencyTime(sessionAtH2);
        if (!reported) continue;
        const cut = Date.parse(reported);
        const [stampsA, stampsB] = await Promise.all([
          writer.stampsOf(s.h2.engine.device('a2')),
          writer.stampsOf(s.h2.engine.device('b2')),
        ]);
        const { match, lowest, highest } = writer.matchesCut(cut, stampsA, stampsB);
        expect(match, `target at ${reported} is the source's image after ${lowest}..${highest} writes`).toBe(true);
        samples++;
        if (cut > lastTime) advancing++;
        lastTime = cut;
      } finally {
        release();
      }
    }
    await writer.stop();
    expect(samples).toBeGreaterThan(10);
    expect(advancing, 'the consistency time moves forward cycle by cycle').toBeGreaterThan(5);
    expect(writer.writes.length).toBeGreaterThan(100);

    // Once the writer stops the next cycle converges.
    await service.shipNow('s1');
    expect((await readAll(s.h1, 'a')).equals(await readAll(s.h2, 'a2'))).toBe(true);
    expect((await readAll(s.h1, 'b')).equals(await readAll(s.h2, 'b2'))).toBe(true);
  }, 60_000);

  it('a link cut mid-cycle leaves the previous complete image; the next cycle converges', async () => {
    sites = await startTwoSites();
    const s = sites;
    await shippingPair(s, 32 * MiB);
    await host(s, 'h1', 'prod').write(0, randomBytes(8 * MiB));
    const service = s.h1.replication.service;
    await service.act('s1', 'start');
    await waitFor(() => state(s, 'h1') === 'prepared', 30_000, 'prepared');
    const previous = await readAll(s.h1, 'prod');
    const previousTime = s.h2.replication.service.consistencyTime(s.h2.replication.service.session('s1'));
    expect(previous.equals(await readAll(s.h2, 'copy'))).toBe(true);

    // 12 MiB changed; the link is cut after 5 MiB of the cycle crossed.
    await host(s, 'h1', 'prod').write(4 * MiB, randomBytes(12 * MiB));
    s.proxy.cutAfterBytes(5 * MiB);
    await expect(service.shipNow('s1')).rejects.toThrow();
    expect(s.proxy.cuts).toBe(1);
    const targetService = s.h2.replication.service;
    const release = await targetService.receiver.freeze(targetService.session('s1').id);
    try {
      expect(targetService.consistencyTime(targetService.session('s1'))).toBe(previousTime);
      expect((await readAll(s.h2, 'copy')).equals(previous), 'the target holds the previous cycle, untouched').toBe(true);
    } finally {
      release();
    }
    // The session suspended, keeps every mark, resumes by itself and the next cycle converges.
    await waitFor(() => state(s, 'h1') === 'prepared' && Date.parse(service.consistencyTime(service.session('s1'))!) > Date.parse(previousTime!), 30_000, 'converged');
    expect((await readAll(s.h1, 'prod')).equals(await readAll(s.h2, 'copy'))).toBe(true);
    const suspended = s.h1.engine.catalog.listEvents(0, 1000).filter((event) => event.type === 'session.state' && event.data?.to === 'suspended');
    expect(suspended.length).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('fails over to the last shipped image and fails back with the bitmaps and codes', async () => {
    sites = await startTwoSites();
    const s = sites;
    await shippingPair(s, 16 * MiB);
    await host(s, 'h1', 'prod').write(0, randomBytes(2 * MiB));
    const service = s.h1.replication.service;
    await service.act('s1', 'start');
    await waitFor(() => state(s, 'h1') === 'prepared', 30_000, 'prepared');
    const shipped = await readAll(s.h1, 'prod');
    // Written after the last cycle: never reaches the target before the failover.
    await host(s, 'h1', 'prod').write(10 * TRACK, randomBytes(TRACK));
    await s.h2.replication.service.act('s1', 'recover');
    await waitFor(() => state(s, 'h2') === 'target-available', 10_000, 'target-available');
    expect((await readAll(s.h2, 'copy')).equals(shipped), 'the target is the last shipped image').toBe(true);
    await host(s, 'h2', 'copy').write(3 * TRACK, randomBytes(TRACK));

    const preflight = await s.h2.replication.service.preflight('s1', { verifyCodes: true, fullCompare: false });
    expect(preflight.tracksToCopy).toBe(2);
    await s.h2.replication.service.act('s1', 'failback', { verifyCodes: true });
    await waitFor(() => state(s, 'h2') === 'prepared', 30_000, 'prepared after failback');
    expect((await readAll(s.h1, 'prod')).equals(await readAll(s.h2, 'copy'))).toBe(true);
    expect(s.h2.replication.service.shippingOf('s1')!.last!.tracks).toBe(2);
  }, 60_000);
});
