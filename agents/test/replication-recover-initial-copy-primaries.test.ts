import { randomBytes } from 'node:crypto';
import { SessionSyncedSchema } from '@tandem/contract';
import { afterEach, describe, expect, it } from 'vitest';
import { secondPlacement, secondPrimary, startThreeSites, type Primaries, type ThreeSites } from './helpers/multi-primary-sites.ts';
import { readAll, waitFor, type Site } from './helpers/replication-sites.ts';

const MiB = 1024 * 1024;

let sites: ThreeSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

async function fill(site: Site, volume: string, mib: number): Promise<void> {
  const exported = site.replication.exports.openExport(volume);
  for (let offset = 0; offset < mib * MiB; offset += 8 * MiB) await exported.write(offset, randomBytes(Math.min(8, mib - offset / MiB) * MiB));
}

async function sameSoon(a: Site, aVolume: string, b: Site, bVolume: string): Promise<boolean> {
  const same = async () => (await readAll(a, aVolume)).equals(await readAll(b, bVolume));
  const deadline = Date.now() + 60_000;
  while (!(await same()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
  return same();
}

/**
 * A recover during a session's very first initial copy (started, never
 * Prepared): every copy set whose initial copy had not finished at the target
 * is reported inconsistent per copy set (consistent: false, event
 * pair.inconsistent), and the failback copies every candidate track of it
 * (no shortcut by equal codes), the same mechanism as for a copy set joining
 * a running session. One scenario for one primary agent (a and b at alpha) and
 * for two (b at bravo).
 */
describe.each([1, 2] as const)('recover during the first initial copy, %i primary agent(s)', (primaries: Primaries) => {
  it('the copy sets of every primary agent still copying are flagged at the recover and failed back whole', async () => {
    sites = await startThreeSites();
    const s = sites;
    const holder = secondPrimary(s, primaries);
    /** b's primary site as reports name it (a single-primary session's name none). */
    const siteOf = (volume: 'a' | 'b') => (primaries === 1 ? undefined : volume === 'a' ? 'alpha' : 'bravo');
    const controlAgent = s.alpha.replication.service;
    const charlie = s.charlie.replication.service;
    await s.alpha.engine.createVolume('a', 64 * MiB);
    await holder.engine.createVolume('b', 64 * MiB);
    await s.charlie.engine.createVolume('a2', 64 * MiB);
    await s.charlie.engine.createVolume('b2', 64 * MiB);
    await fill(s.alpha, 'a', 64);
    await fill(holder, 'b', 64);
    await controlAgent.createSession('mp', 'async', 'charlie');
    await controlAgent.addPair('mp', 'a', 'a2');
    await controlAgent.addPair('mp', 'b', 'b2', secondPlacement(primaries));
    await controlAgent.act('mp', 'start');
    // At the target while they copy: not a consistent image yet.
    await waitFor(() => charlie.session('mp').state !== 'defined', 30_000, 'started at charlie');
    expect(charlie.info(charlie.session('mp')).pairs.map((pair) => pair.consistent)).toEqual([false, false]);
    await charlie.act('mp', 'recover');
    expect(s.alpha.engine.catalog.listEvents(0, 5000).some((e) => e.type === 'session.state' && e.data?.to === 'prepared'), 'never prepared').toBe(false);
    expect(charlie.session('mp').state).toBe('target-available');
    const info = charlie.info(charlie.session('mp'));
    const of = (volume: string) => info.pairs.find((pair) => pair.h1Volume === volume)!;
    expect(of('a').consistent).toBe(false);
    expect(of('b').consistent).toBe(false);
    expect(of('b').inconsistentReason).toMatch(/initial copy/);
    expect(info.detail).toMatch(/a2/);
    const events = s.charlie.engine.catalog.listEvents(0, 5000).filter((event) => event.type === 'pair.inconsistent');
    expect(events.map((event) => event.data?.h1Volume).sort()).toEqual(['a', 'b']);
    expect(events.map((event) => event.data?.reason)).toEqual(['initial-copy-incomplete', 'initial-copy-incomplete']);
    expect(events.find((event) => event.data?.h1Volume === 'b')!.data?.primarySite).toBe(siteOf('b'));

    const preflight = await charlie.preflight('mp', { verifyCodes: true, fullCompare: false });
    for (const volume of ['a', 'b']) {
      const plan = preflight.pairs.find((pair) => pair.h1Volume === volume)!;
      expect(plan.differingTracks, `${volume}: no code comparison`).toBeNull();
      expect(plan.tracksToCopy).toBe(plan.candidateTracks);
    }
    // Every track not copied at the recover is planned.
    const heldB = holder.replication.service.pairsOf(holder.replication.service.session('mp')).find((pair) => pair.h1Volume === 'b')!;
    const planB = preflight.pairs.find((pair) => pair.h1Volume === 'b')!;
    expect(planB.tracksToCopy).toBeGreaterThanOrEqual(holder.engine.bitmaps.view(heldB.outOfSyncBitmap!).setCount);
    expect(preflight.pairs.reduce((sum, plan) => sum + (plan.tracksToCopy ?? 0), 0)).toBeGreaterThan(0);

    await charlie.act('mp', 'failback');
    await waitFor(() => charlie.session('mp').state === 'prepared', 120_000, 'prepared H2->H1');
    expect(await sameSoon(s.alpha, 'a', s.charlie, 'a2'), 'a is the image of a2').toBe(true);
    expect(await sameSoon(holder, 'b', s.charlie, 'b2'), 'b is the image of b2').toBe(true);
    expect(charlie.info(charlie.session('mp')).pairs.every((pair) => pair.consistent === undefined)).toBe(true);
    // The failback's result per copy set (session.synced at charlie): each copied exactly its planned tracks, named by its primary site.
    const synced = SessionSyncedSchema.parse(s.charlie.engine.catalog.listEvents(0, 5000).filter((e) => e.type === 'session.synced').at(-1)!.data);
    for (const volume of ['a', 'b'] as const) {
      const pair = synced.pairs!.find((each) => each.h1Volume === volume)!;
      expect(pair.primarySite).toBe(siteOf(volume));
      expect(pair.copiedTracks).toBe(preflight.pairs.find((plan) => plan.h1Volume === volume)!.tracksToCopy);
      // Tracks unallocated at charlie (never copied there before the recover) go back as trims: no bytes.
      expect(pair.bytesSent).toBeLessThanOrEqual(pair.copiedTracks * 65536);
    }
    expect(synced.pairs!.reduce((sum, pair) => sum + pair.copiedTracks, 0)).toBe(synced.copiedTracks);
    expect(synced.pairs!.reduce((sum, pair) => sum + pair.bytesSent, 0)).toBe(synced.bytesSent);
    // The verify after the failback (at charlie, the source now) per copy set with its primary site.
    await waitFor(() => charlie.session('mp').lastVerify?.trigger === 'failback', 60_000, 'verified after failback');
    const last = charlie.session('mp').lastVerify!;
    expect(last.pairs!.map((pair) => [pair.h1Volume, pair.primarySite, pair.comparedTracks]).sort()).toEqual([
      ['a', siteOf('a'), (64 * MiB) / 65536],
      ['b', siteOf('b'), (64 * MiB) / 65536],
    ]);
  }, 240_000);
});
