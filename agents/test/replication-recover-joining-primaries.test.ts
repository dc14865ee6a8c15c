import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { secondPlacement, secondPrimary, startThreeSites, type Primaries, type ThreeSites } from './helpers/multi-primary-sites.ts';
import { readAll, waitFor } from './helpers/replication-sites.ts';

const MiB = 1024 * 1024;

let sites: ThreeSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

/**
 * An async session (alpha the control agent with a; b, j and n at bravo, a
 * member, with two primary agents, or at alpha with one; charlie the secondary)
 * recovered at charlie while the new copy set n is still in its initial copy:
 * the recover proceeds, n2 is reported inconsistent, and the failback copies
 * every track of n not copied yet (no shortcut by equal codes) and makes n the
 * image of n2. One scenario for one and for two primary agents.
 */
describe.each([1, 2] as const)('recover while a copy set of an async session with %i primary agent(s) joins', (primaries: Primaries) => {
  it('recovers, reports the joining copy set inconsistent (event, consistent: false) and fails it back whole', async () => {
    sites = await startThreeSites();
    const s = sites;
    const holder = secondPrimary(s, primaries);
    const placement = secondPlacement(primaries);
    const controlAgent = s.alpha.replication.service;
    const charlie = s.charlie.replication.service;
    await s.alpha.engine.createVolume('a', 8 * MiB);
    await holder.engine.createVolume('b', 8 * MiB);
    await holder.engine.createVolume('n', 96 * MiB);
    for (const [name, size] of [['a2', 8], ['b2', 8], ['n2', 96]] as const) await s.charlie.engine.createVolume(name, size * MiB);
    await holder.replication.exports.openExport('b').write(0, randomBytes(MiB));
    // n holds 96 MiB of data: its initial copy takes a while.
    const n = holder.replication.exports.openExport('n');
    for (let offset = 0; offset < 96 * MiB; offset += 8 * MiB) await n.write(offset, randomBytes(8 * MiB));
    await controlAgent.createSession('mp', 'async', 'charlie');
    await controlAgent.addPair('mp', 'a', 'a2');
    await controlAgent.addPair('mp', 'b', 'b2', placement);
    await controlAgent.act('mp', 'start');
    // Prepared reaches charlie by the control agent's state report: every initial copy there completed from then.
    await waitFor(() => controlAgent.session('mp').state === 'prepared' && charlie.session('mp').state === 'prepared', 60_000, 'prepared at the control agent and charlie');
    // A joined copy set is consistent at charlie (nothing reported).
    expect(charlie.info(charlie.session('mp')).pairs.every((pair) => pair.consistent === undefined)).toBe(true);

    // A copy set that finished its initial copy is consistent at charlie again (its primary agent tells it: pair.joined; should
    // that be lost, the control agent's prepared tells it too: charlie ignores pair.joined for j here).
    const joinedAtSource = charlie.joining.joinedAtSource.bind(charlie.joining);
    charlie.joining.joinedAtSource = () => undefined;
    await holder.engine.createVolume('j', 4 * MiB);
    await s.charlie.engine.createVolume('j2', 4 * MiB);
    await holder.replication.exports.openExport('j').write(0, randomBytes(MiB));
    await controlAgent.addPair('mp', 'j', 'j2', placement);
    const j = () => charlie.info(charlie.session('mp')).pairs.find((pair) => pair.h1Volume === 'j')!;
    expect(j().consistent, 'j2 while j copies').toBe(false);
    await waitFor(() => controlAgent.session('mp').state === 'prepared' && j().consistent === undefined, 60_000, 'j joined and consistent at charlie');
    charlie.joining.joinedAtSource = joinedAtSource;

    await controlAgent.addPair('mp', 'n', 'n2', placement);
    await charlie.act('mp', 'recover');
    const joinedEarly = holder.engine.catalog.listEvents(0, 5000).some((event) => event.type === 'pair.joined' && event.data?.h1Volume === 'n');
    expect(joinedEarly, 'n was still in its initial copy at the recover').toBe(false);
    expect(charlie.session('mp').state).toBe('target-available');

    const info = charlie.info(charlie.session('mp'));
    const of = (volume: string) => info.pairs.find((pair) => pair.h1Volume === volume)!;
    expect(of('n').consistent).toBe(false);
    expect(of('n').inconsistentReason).toMatch(/initial copy/);
    expect(of('a').consistent).toBeUndefined();
    expect(of('b').consistent).toBeUndefined();
    expect(of('j').consistent).toBeUndefined();
    expect(info.detail).toMatch(/n2/);
    const events = s.charlie.engine.catalog.listEvents(0, 5000).filter((event) => event.type === 'pair.inconsistent');
    expect(events.map((event) => event.data?.h1Volume)).toEqual(['n']);
    expect(events[0]!.data?.primarySite).toBe(primaries === 2 ? 'bravo' : undefined);

    // The failback plans n whole: every candidate track (the ones not yet copied, n2's changed ones) is copied, no codes.
    await s.charlie.replication.exports.openExport('n2').write(90 * MiB, randomBytes(MiB));
    const preflight = await charlie.preflight('mp', { verifyCodes: true, fullCompare: false });
    const planN = preflight.pairs.find((pair) => pair.h1Volume === 'n')!;
    const heldN = holder.replication.service.pairsOf(holder.replication.service.session('mp')).find((pair) => pair.h1Volume === 'n')!;
    const notCopied = holder.engine.bitmaps.view(heldN.outOfSyncBitmap!).setCount;
    expect(notCopied, 'tracks of n not copied at the recover').toBeGreaterThan(0);
    expect(planN.differingTracks).toBeNull();
    expect(planN.tracksToCopy).toBe(planN.candidateTracks);
    expect(planN.tracksToCopy).toBeGreaterThanOrEqual(notCopied);
    // The others keep the code comparison.
    expect(preflight.pairs.find((pair) => pair.h1Volume === 'b')!.differingTracks).not.toBeNull();

    await charlie.act('mp', 'failback');
    await waitFor(() => charlie.session('mp').state === 'prepared', 120_000, 'prepared H2->H1');
    // H2->H1 rounds reach n's primary agent after charlie copied: n becomes n2's image.
    const same = async () => (await readAll(holder, 'n')).equals(await readAll(s.charlie, 'n2'));
    const deadline = Date.now() + 60_000;
    while (!(await same()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await same(), 'n is the image of n2').toBe(true);
    expect(charlie.info(charlie.session('mp')).pairs.every((pair) => pair.consistent === undefined)).toBe(true);
  }, 240_000);
});
