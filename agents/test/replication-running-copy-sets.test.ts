import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { readAll, startTwoSites, waitFor, type TwoSites } from './helpers/replication-sites.ts';

const TRACK = 65536;
const MiB = 1024 * 1024;

let sites: TwoSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

/** The export as hosts see it: behind the splitter. */
const host = (s: TwoSites, site: 'h1' | 'h2', volume: string) => s[site].replication.exports.openExport(volume);

/** Random writes to a volume until stopped; counts them. */
function writeLoop(s: TwoSites, volume: string, sizeBytes: number) {
  let running = true;
  let count = 0;
  const done = (async () => {
    while (running) {
      const data = randomBytes(4096 + (count % 5) * 8192);
      const offset = Math.floor(Math.random() * ((sizeBytes - data.length) / 512)) * 512;
      await host(s, 'h1', volume).write(offset, data);
      count++;
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  return {
    get count() {
      return count;
    },
    async stop() {
      running = false;
      await done;
    },
  };
}

/** Creates 'volumes' at each site, all of one size. */
async function createVolumes(s: TwoSites, h1: string[], h2: string[], size: number): Promise<void> {
  for (const [site, names] of [
    [s.h1, h1],
    [s.h2, h2],
  ] as const) {
    for (const name of names) await site.engine.createVolume(name, size);
  }
}

type SessionType = Parameters<TwoSites['h1']['replication']['service']['createSession']>[1];

/** Defines a session with these copy sets (h1 volume, h2 volume) at h1, starts it and waits until it is Prepared. */
async function startPrepared(s: TwoSites, name: string, type: SessionType, pairs: Array<[string, string]>, timeoutMs: number): Promise<void> {
  const service = s.h1.replication.service;
  await service.createSession(name, type, 'beta');
  for (const [h1, h2] of pairs) await service.addPair(name, h1, h2);
  await service.act(name, 'start');
  await waitFor(() => service.session(name).state === 'prepared', timeoutMs, 'prepared');
}

const eventsOf = (s: TwoSites, site: 'h1' | 'h2', type: string) =>
  s[site].engine.catalog.listEvents(0, 5000).filter((event) => event.type === type);

describe('copy sets added to and removed from running sessions', () => {
  it('adds a copy set to a Prepared sync session under writes: it reaches duplex with identical bytes, the other never leaves duplex', async () => {
    sites = await startTwoSites();
    const s = sites;
    const service = s.h1.replication.service;
    await createVolumes(s, ['prod', 'prod2'], ['copy', 'copy2'], 16 * MiB);
    await startPrepared(s, 's1', 'sync', [['prod', 'copy']], 20_000);

    // The new primary holds data already (5 tracks); its secondary holds stale data the add must remove.
    const early = randomBytes(5 * TRACK);
    await host(s, 'h1', 'prod2').write(40 * TRACK, early);
    await s.h2.engine.device('copy2').write(200 * TRACK, Buffer.alloc(TRACK, 7));
    const sizeOf = (name: string) => s.h1.engine.getVolume(name).sizeBytes;
    expect(sizeOf('prod2')).toBe(16 * MiB);

    // Watch the existing pair the whole time: it must stay duplex with nothing out of sync.
    const seen = { states: new Set<string>(), maxOutOfSync: 0, samples: 0, consistencyNull: 0 };
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const info = service.info(service.session('s1'));
        const old = info.pairs.find((pair) => pair.h1Volume === 'prod')!;
        seen.states.add(old.state);
        seen.maxOutOfSync = Math.max(seen.maxOutOfSync, old.outOfSyncTracks);
        if (info.consistencyTime === null) seen.consistencyNull++;
        seen.samples++;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const oldWriter = writeLoop(s, 'prod', 16 * MiB);
    // The new volume is written in its first 4 MiB only: the initial copy must skip the unallocated rest.
    const newWriter = writeLoop(s, 'prod2', 4 * MiB);
    await waitFor(() => oldWriter.count > 20 && newWriter.count > 20, 20_000, 'writers running');

    await service.addPair('s1', 'prod2', 'copy2');
    const added = service.info(service.session('s1'));
    expect(added.pairs).toHaveLength(2);
    expect(['preparing', 'prepared']).toContain(added.state);
    await waitFor(
      () => service.session('s1').state === 'prepared' && service.info(service.session('s1')).pairs.every((pair) => pair.state === 'duplex'),
      30_000,
      'prepared again with both pairs duplex',
    );
    const afterAdd = { old: oldWriter.count, new: newWriter.count };
    // Writes keep mirroring to both pairs once the new one is duplex.
    await waitFor(() => oldWriter.count > afterAdd.old + 20 && newWriter.count > afterAdd.new + 20, 20_000, 'more writes');
    // A quick add on a loaded machine can be over before the 5 ms watcher sampled much: keep writing until it did.
    await waitFor(() => seen.samples > 20, 20_000, 'the watcher sampled the existing pair');
    await Promise.all([oldWriter.stop(), newWriter.stop()]);
    watching = false;
    await watcher;

    expect(seen.samples).toBeGreaterThan(20);
    expect([...seen.states], 'the existing pair never left duplex').toEqual(['duplex']);
    expect(seen.maxOutOfSync, 'the existing pair never had a track out of sync').toBe(0);
    expect(seen.consistencyNull, 'the members stayed consistent: the consistency time was never withdrawn').toBe(0);
    expect((await readAll(s.h1, 'prod')).equals(await readAll(s.h2, 'copy'))).toBe(true);
    expect((await readAll(s.h1, 'prod2')).equals(await readAll(s.h2, 'copy2'))).toBe(true);
    // The secondary of the new pair refuses host writes like the other one.
    await expect(host(s, 'h2', 'copy2').write(0, Buffer.alloc(512))).rejects.toMatchObject({ problem: 'read-only' });
    const addedEvents = eventsOf(s, 'h1', 'pair.added').filter((event) => event.message.includes('prod2'));
    // The initial copy marked the allocated tracks (the first 64 and tracks 40..44), not the 256 of the volume.
    const marked = Number(addedEvents[0].data?.markedTracks);
    expect(marked).toBeGreaterThanOrEqual(5);
    expect(marked).toBeLessThanOrEqual(64);
    expect(addedEvents.some((event) => /prepared/.test(event.message))).toBe(true);
    expect(eventsOf(s, 'h2', 'pair.added').some((event) => event.message.includes('copy2'))).toBe(true);
    expect(eventsOf(s, 'h1', 'pair.joined').some((event) => event.message.includes('prod2'))).toBe(true);
    // Both sites know the pair.
    expect(s.h2.replication.service.info(s.h2.replication.service.session('s1')).pairs.map((pair) => pair.h2Volume).sort()).toEqual([
      'copy',
      'copy2',
    ]);
  }, 120_000);

  // Adding to and removing from a running async session under dependent writes: one scenario run with one and with
  // two primary agents in replication-multi-primary-running.test.ts.

  it('adds a copy set to a Suspended session: writes while suspended are tracked, resume copies them with the others', async () => {
    sites = await startTwoSites();
    const s = sites;
    const service = s.h1.replication.service;
    await createVolumes(s, ['prod', 'prod2'], ['copy', 'copy2'], 8 * MiB);
    await startPrepared(s, 's1', 'semi-sync', [['prod', 'copy']], 20_000);
    await service.act('s1', 'suspend');
    await host(s, 'h1', 'prod2').write(2 * TRACK, randomBytes(TRACK));
    await service.addPair('s1', 'prod2', 'copy2');
    expect(service.session('s1').state).toBe('suspended');
    // Written after the add while suspended: marked, not sent.
    await host(s, 'h1', 'prod2').write(9 * TRACK, randomBytes(2 * TRACK));
    await host(s, 'h1', 'prod').write(4 * TRACK, randomBytes(TRACK));
    const pairs = service.info(service.session('s1')).pairs;
    expect(pairs.find((pair) => pair.h1Volume === 'prod2')!.outOfSyncTracks).toBe(3);
    expect(pairs.find((pair) => pair.h1Volume === 'prod')!.outOfSyncTracks).toBe(1);
    await service.act('s1', 'resume');
    await waitFor(() => service.session('s1').state === 'prepared', 20_000, 'prepared after resume');
    expect((await readAll(s.h1, 'prod')).equals(await readAll(s.h2, 'copy'))).toBe(true);
    expect((await readAll(s.h1, 'prod2')).equals(await readAll(s.h2, 'copy2'))).toBe(true);
  }, 60_000);

  it('refuses bad input with stable problem codes and changes nothing', async () => {
    sites = await startTwoSites();
    const s = sites;
    const service = s.h1.replication.service;
    await s.h1.engine.createVolume('p', 8 * MiB);
    await s.h1.engine.createVolume('q', 8 * MiB);
    await s.h1.engine.createVolume('big', 16 * MiB);
    await s.h2.engine.createVolume('p2', 8 * MiB);
    await s.h2.engine.createVolume('q2', 8 * MiB);
    await service.createSession('s', 'sync', 'beta');
    await service.createSession('other', 'sync', 'beta');
    await service.addPair('s', 'p', 'p2');
    await service.act('s', 'start');
    await waitFor(() => service.session('s').state === 'prepared', 20_000, 'prepared');

    await expect(service.addPair('s', 'missing', 'q2')).rejects.toMatchObject({ problem: 'not-found' });
    await expect(service.addPair('s', 'q', 'missing2')).rejects.toMatchObject({ problem: 'not-found' });
    await expect(service.addPair('s', 'big', 'q2')).rejects.toMatchObject({ problem: 'invalid-size' });
    await expect(service.addPair('s', 'p', 'q2')).rejects.toMatchObject({ problem: 'volume-busy' });
    // q2 is the secondary of a copy set of another session: the other site refuses it.
    await service.addPair('other', 'q', 'q2');
    await s.h1.engine.createVolume('r', 8 * MiB);
    await expect(service.addPair('s', 'r', 'q2')).rejects.toMatchObject({ problem: 'volume-busy' });
    await expect(service.removePair('s', 'p')).rejects.toMatchObject({ problem: 'invalid-state' });
    await expect(service.removePair('s', 'q')).rejects.toMatchObject({ problem: 'not-found' });

    const info = service.info(service.session('s'));
    expect(info.state).toBe('prepared');
    expect(info.pairs.map((pair) => pair.h1Volume)).toEqual(['p']);
    expect(s.h2.replication.service.pairsOf(s.h2.replication.service.session('s'))).toHaveLength(1);
    // A rejected add left no tap behind: r is not mirrored or tracked.
    expect(service.tapsFor('r')).toHaveLength(0);
  }, 60_000);
});
