import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { readAll, startTwoSites, waitFor, type TwoSites } from './helpers/replication-sites.ts';
import { startWriter } from './helpers/replication-writer.ts';

/**
 * Online verify by segment codes and semi-sync repair, two sites in one
 * process (real engines, the peer link over mutual TLS through a proxy).
 */

const TRACK = 65536;
const MiB = 1024 * 1024;

let sites: TwoSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

const host = (s: TwoSites, site: 'h1' | 'h2', volume: string) => s[site].replication.exports.openExport(volume);
const state = (s: TwoSites, site: 'h1' | 'h2') => s[site].replication.service.session('s1').state;
const events = (s: TwoSites, site: 'h1' | 'h2', type: string) =>
  s[site].engine.catalog.listEvents(0, 1000).filter((event) => event.type === type);

async function preparedSession(s: TwoSites, type: 'sync' | 'semi-sync' | 'async', size: number): Promise<void> {
  await s.h1.engine.createVolume('prod', size);
  await s.h2.engine.createVolume('copy', size);
  await host(s, 'h1', 'prod').write(0, randomBytes(size));
  await s.h1.replication.service.createSession('s1', type, 'beta');
  await s.h1.replication.service.addPair('s1', 'prod', 'copy');
  await s.h1.replication.service.act('s1', 'start');
  await waitFor(() => state(s, 'h1') === 'prepared', 30_000, 'prepared');
}

describe('online verify', () => {
  it('reports no difference under a concurrent writer; an injected difference is reported exactly, marked and repaired', async () => {
    sites = await startTwoSites();
    const s = sites;
    const size = 32 * MiB;
    const trackCount = size / TRACK;
    await preparedSession(s, 'sync', size);
    const service = s.h1.replication.service;

    // 1. Writes in flight and landing during the compare are never differences.
    let writer = startWriter(host(s, 'h1', 'prod'), { workers: 8 });
    await waitFor(() => writer.writes > 20, 10_000, 'writes under way');
    let during = 0;
    // How often a write races a compare depends on timing (the next test makes one race for sure).
    const rounds = 8;
    for (let round = 0; round < rounds; round++) {
      const before = writer.writes;
      const clean = await service.verify('s1');
      during += writer.writes - before;
      expect(clean.differingTracks, `round ${round}: no difference reported`).toBe(0);
      expect(clean.pairs[0].differingTracks).toEqual([]);
      expect(clean.comparedTracks + clean.unverifiedTracks).toBe(trackCount);
      expect(clean.resyncStarted).toBe(false);
    }
    let written = await writer.stop();
    expect(written.errors).toEqual([]);
    expect(during, 'writes were acknowledged while verifying').toBeGreaterThan(20);
    expect(state(s, 'h1')).toBe('prepared');

    // 2. A real difference: written into the target's engine device, bypassing the splitter.
    const injected = [7, 200, 301];
    for (const track of injected) await s.h2.engine.device('copy').write(track * TRACK + 1000, randomBytes(3000));
    writer = startWriter(host(s, 'h1', 'prod'), { workers: 4, exclude: injected });
    await waitFor(() => writer.writes > 20, 10_000, 'writes under way');
    const dirty = await service.verify('s1');
    expect(dirty.pairs[0].differingTracks).toEqual(injected);
    expect(dirty.differingTracks).toBe(injected.length);
    expect(dirty.resyncStarted).toBe(true);
    // Marked out-of-sync and copied by the resync; the session comes back to prepared by itself.
    await waitFor(() => state(s, 'h1') === 'prepared', 30_000, 'prepared after the verify resync');
    written = await writer.stop();
    expect(written.errors).toEqual([]);
    const synced = events(s, 'h1', 'session.synced').at(-1)!;
    expect(synced.data!.copiedTracks).toBe(injected.length);
    expect((await readAll(s.h1, 'prod')).equals(await readAll(s.h2, 'copy'))).toBe(true);

    // 3. Quiet now: every track is compared and equal. Asked at the target, executed at the source.
    const quiet = await s.h2.replication.service.verify('s1');
    expect(quiet.comparedTracks).toBe(trackCount);
    expect(quiet.differingTracks).toBe(0);

    const started = events(s, 'h1', 'session.verify');
    const ended = events(s, 'h1', 'session.verified');
    expect(started).toHaveLength(rounds + 2);
    expect(started[0].data).toEqual({ pairs: 1, tracks: trackCount });
    expect(ended.map((event) => event.data!.differingTracks)).toEqual([...Array(rounds).fill(0), injected.length, 0]);
    expect(ended[rounds].data!.tracks).toEqual(injected);
  }, 120_000);

  it('async: a repair goes on in the same run and rounds; prepared again once the repaired tracks are copied, nothing written meanwhile lost', async () => {
    sites = await startTwoSites();
    const s = sites;
    const size = 32 * MiB;
    await preparedSession(s, 'async', size);
    const service = s.h1.replication.service;
    const coordinator = service.rounds.coordinatorOf(service.session('s1'))!;
    const injected = [7, 200, 301];
    for (const track of injected) await s.h2.engine.device('copy').write(track * TRACK + 1000, randomBytes(3000));
    // A steady trickle of writes keeps rounds staged and in flight while the repair starts (a full-speed in-process
    // writer outruns the link of two sites in one process and suspends the session by its backlog).
    let writes = 0;
    let writing = true;
    const trickle = (async () => {
      const device = host(s, 'h1', 'prod');
      while (writing) {
        const track = 400 + (writes % 100);
        await device.write(track * TRACK + (writes % 16) * 4096, randomBytes(4096));
        writes++;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    await waitFor(() => writes > 50, 10_000, 'writes under way');
    const first = s.h1.engine.catalog.lastEventId();
    const dirty = await service.verify('s1');
    expect(dirty.pairs[0].differingTracks).toEqual(injected);
    expect(dirty.resyncStarted).toBe(true);
    await waitFor(() => state(s, 'h1') === 'prepared', 30_000, 'prepared after the verify resync');
    // The same coordinator: its rounds go on (a new one would number them afresh under the shipper's staged parts).
    expect(service.rounds.coordinatorOf(service.session('s1'))).toBe(coordinator);
    expect(coordinator.active).toBe(true);
    const after = s.h1.engine.catalog.listEvents(first, 1000);
    const synced = after.find((event) => event.type === 'session.synced');
    const prepared = after.find((event) => event.type === 'session.state' && event.data?.to === 'prepared');
    expect(synced, 'the repair copied before the session turned prepared').toBeDefined();
    expect(synced!.id).toBeLessThan(prepared!.id);
    writing = false;
    await trickle;
    expect(writes).toBeGreaterThan(100);
    const last = Date.now();
    await waitFor(() => Date.parse(service.consistencyTime(service.session('s1')) ?? '0') > last, 30_000, 'caught up');
    expect((await readAll(s.h1, 'prod')).equals(await readAll(s.h2, 'copy'))).toBe(true);
    await waitFor(() => service.info(service.session('s1')).pairs[0].outOfSyncTracks === 0, 10_000, 'marks cleared');
  }, 120_000);

  it('writes in flight when a compare begins or landing during it are re-checked, not reported', async () => {
    sites = await startTwoSites();
    const s = sites;
    await preparedSession(s, 'sync', 4 * MiB);
    const target = s.h2.replication.service.target;
    const handle = target.handle.bind(target);
    // Track 9: a mirrored write applied at the source but held at the target until the first code request is answered.
    // Track 5: the first code request waits for a host write to be mirrored (and acknowledged) first, so the
    // target's code sees it and the source's, taken when the compare began, does not.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let holding = false;
    let raced = 0;
    target.handle = async (request) => {
      if (request.method === 'pair.write' && request.params.offset === 9 * TRACK + 100) {
        holding = true;
        const copy = { ...request, payload: Buffer.from(request.payload!) };
        await held;
        return handle(copy);
      }
      if (request.method === 'pair.codes' && raced === 0) {
        raced++;
        await host(s, 'h1', 'prod').write(5 * TRACK + 512, randomBytes(4096));
        const answer = await handle(request);
        release();
        return answer;
      }
      return handle(request);
    };
    const inFlight = host(s, 'h1', 'prod').write(9 * TRACK + 100, randomBytes(2000));
    await waitFor(() => holding, 5000, 'the held write');
    const report = await s.h1.replication.service.verify('s1');
    await inFlight;
    expect(raced).toBe(1);
    expect(report.differingTracks).toBe(0);
    expect(report.pairs[0].recheckedTracks).toBe(2);
    expect(report.comparedTracks).toBe(64);
    expect(state(s, 'h1')).toBe('prepared');
    expect((await readAll(s.h1, 'prod')).equals(await readAll(s.h2, 'copy'))).toBe(true);
  });

  it('refuses to verify a session that is not duplex', async () => {
    sites = await startTwoSites();
    const s = sites;
    await s.h1.engine.createVolume('prod', 4 * MiB);
    await s.h2.engine.createVolume('copy', 4 * MiB);
    await s.h1.replication.service.createSession('s1', 'sync', 'beta');
    await s.h1.replication.service.addPair('s1', 'prod', 'copy');
    await expect(s.h1.replication.service.verify('s1')).rejects.toMatchObject({ problem: 'invalid-state' });
  });
});

describe('semi-sync', () => {
  it('verify waits for writes the target acknowledged on arrival but has not applied yet', async () => {
    sites = await startTwoSites();
    const s = sites;
    await preparedSession(s, 'semi-sync', 4 * MiB);
    // The target's device holds one write back for 300 ms after its arrival was acknowledged.
    const device = s.h2.engine.device('copy');
    const write = device.write.bind(device);
    let held = 0;
    device.write = async (offset, data, options) => {
      if (offset === 11 * TRACK + 100) {
        held++;
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      return write(offset, data, options);
    };
    await host(s, 'h1', 'prod').write(11 * TRACK + 100, randomBytes(2000)); // acknowledged on arrival
    const report = await s.h1.replication.service.verify('s1');
    expect(held).toBe(1);
    expect(report.differingTracks).toBe(0);
    expect(report.comparedTracks).toBe(64);
    expect(state(s, 'h1')).toBe('prepared');
  });

  it('a secondary write failure after the arrival ack is repaired by the secondary; host I/O never sees it', async () => {
    sites = await startTwoSites();
    const s = sites;
    const size = 16 * MiB;
    await preparedSession(s, 'semi-sync', size);
    const target = s.h2.replication.service.target;
    s.h2.faults.failArrivalWrites = 3;

    const writer = startWriter(host(s, 'h1', 'prod'), { workers: 4 });
    await waitFor(() => s.h2.faults.failArrivalWrites === 0 && writer.writes > 200, 20_000, 'the injected failures');
    await waitFor(() => events(s, 'h2', 'pair.repaired').length >= 3, 20_000, 'three repairs');
    const written = await writer.stop();
    expect(written.errors, 'no host write saw an error').toEqual([]);
    const sorted = [...written.latencies].sort((a, b) => a - b);
    const p99 = sorted[Math.floor(sorted.length * 0.99)];
    expect(p99, 'host write latency stays bounded while tracks are repaired').toBeLessThan(500);

    const repairs = events(s, 'h2', 'pair.repair');
    expect(repairs).toHaveLength(3);
    expect(repairs.every((event) => event.severity === 'warning')).toBe(true);
    const repaired = events(s, 'h2', 'pair.repaired');
    expect(repaired).toHaveLength(3);
    expect(repaired.every((event) => event.data!.copied === true)).toBe(true);
    expect(state(s, 'h1')).toBe('prepared');
    // Every acknowledged write is at the secondary: the images are identical, and verify agrees.
    await waitFor(() => target.arrivals.repairing.size === 0, 10_000, 'repairs done');
    expect((await readAll(s.h1, 'prod')).equals(await readAll(s.h2, 'copy'))).toBe(true);
    const report = await s.h1.replication.service.verify('s1');
    expect(report.differingTracks).toBe(0);
    expect(report.comparedTracks).toBe(size / TRACK);
  }, 90_000);
});
