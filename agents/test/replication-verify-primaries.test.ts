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
 * `session verify` of an async session asked at its control agent (alpha, which
 * holds a; b is held by bravo with two primary agents, by alpha with one;
 * charlie is the secondary): every copy set is verified, each reported with its
 * primary site (a multi-primary session's), and a difference is copied from the
 * copy set's source. One path for one and for two primary agents.
 */
describe.each([1, 2] as const)('verify of an async session with %i primary agent(s)', (primaries: Primaries) => {
  it('asked at the control agent verifies every copy set and repairs each from its primary agent', async () => {
    sites = await startThreeSites();
    const s = sites;
    const holder = secondPrimary(s, primaries);
    const controlAgent = s.alpha.replication.service;
    await s.alpha.engine.createVolume('a', 8 * MiB);
    await holder.engine.createVolume('b', 8 * MiB);
    await s.charlie.engine.createVolume('a2', 8 * MiB);
    await s.charlie.engine.createVolume('b2', 8 * MiB);
    await s.alpha.replication.exports.openExport('a').write(0, randomBytes(MiB));
    await holder.replication.exports.openExport('b').write(MiB, randomBytes(MiB));
    await controlAgent.createSession('mp', 'async', 'charlie');
    await controlAgent.addPair('mp', 'a', 'a2');
    await controlAgent.addPair('mp', 'b', 'b2', secondPlacement(primaries));
    await controlAgent.act('mp', 'start');
    await waitFor(() => controlAgent.session('mp').state === 'prepared', 60_000, 'prepared');
    await waitFor(() => holder.replication.service.session('mp').state === 'prepared', 60_000, `${holder.name} prepared`);

    // Damage the secondary's copies behind replication's back: one track of a2, two of b2.
    const clean = await controlAgent.verify('mp');
    expect(clean.differingTracks).toBe(0);
    await s.charlie.engine.device('a2').write(4 * MiB, Buffer.alloc(4096, 7));
    await s.charlie.engine.device('b2').write(MiB, Buffer.alloc(4096, 7));
    await s.charlie.engine.device('b2').write(6 * MiB, Buffer.alloc(4096, 7));

    const report = await controlAgent.verify('mp');
    // A single-primary report names no primary site (every copy set's is the control agent's).
    const expectedSites = primaries === 2 ? ['alpha:a', 'bravo:b'] : ['undefined:a', 'undefined:b'];
    expect(report.pairs.map((pair) => `${pair.primarySite}:${pair.h1Volume}`).sort()).toEqual(expectedSites);
    const of = (volume: string) => report.pairs.find((pair) => pair.h1Volume === volume)!;
    expect(of('a').differingCount).toBe(1);
    expect(of('b').differingCount).toBe(2);
    expect(report.differingTracks).toBe(3);
    expect(report.comparedTracks).toBe(of('a').comparedTracks + of('b').comparedTracks);
    expect(of('b').comparedTracks).toBeGreaterThan(0);
    expect(report.resyncStarted).toBe(true);
    // Copied from each copy set's source: b2 from b (bravo's, or alpha's), a2 from alpha's a.
    await waitFor(() => controlAgent.session('mp').state === 'prepared' && holder.replication.service.session('mp').state === 'prepared', 60_000, 'repaired');
    const equal = async () =>
      (await readAll(s.alpha, 'a')).equals(await readAll(s.charlie, 'a2')) && (await readAll(holder, 'b')).equals(await readAll(s.charlie, 'b2'));
    const deadline = Date.now() + 60_000;
    while (!(await equal()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await equal(), 'a2 and b2 are repaired').toBe(true);
    const again = await controlAgent.verify('mp');
    expect(again.pairs).toHaveLength(2);
    expect(again.differingTracks).toBe(0);
    // The session records the verify it ran (the last one: clean), over both copy sets.
    expect(controlAgent.session('mp').lastVerify).toMatchObject({ trigger: 'request', ok: true, comparedTracks: again.comparedTracks });
    expect(controlAgent.session('mp').lastVerify?.pairs).toHaveLength(2);
  }, 180_000);
});
