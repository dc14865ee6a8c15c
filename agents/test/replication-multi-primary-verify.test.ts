import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startThreeSites, type ThreeSites } from './helpers/multi-primary-sites.ts';
import { readAll, waitFor } from './helpers/replication-sites.ts';

const MiB = 1024 * 1024;

let sites: ThreeSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

/**
 * `session verify` of a multi-primary async session (alpha the control agent with a,
 * bravo a member with b, charlie the secondary): every copy set is verified,
 * each reported with its primary site, and a difference is copied from the
 * copy set's source (bravo for b).
 */
describe('verify of a multi-primary session', () => {
  it('asked at the control agent verifies the member copy sets too and repairs them from the member', async () => {
    sites = await startThreeSites();
    const s = sites;
    const controlAgent = s.alpha.replication.service;
    await s.alpha.engine.createVolume('a', 8 * MiB);
    await s.bravo.engine.createVolume('b', 8 * MiB);
    await s.charlie.engine.createVolume('a2', 8 * MiB);
    await s.charlie.engine.createVolume('b2', 8 * MiB);
    await s.alpha.replication.exports.openExport('a').write(0, randomBytes(MiB));
    await s.bravo.replication.exports.openExport('b').write(MiB, randomBytes(MiB));
    await controlAgent.createSession('mp', 'async', 'charlie');
    await controlAgent.addPair('mp', 'a', 'a2');
    await controlAgent.addPair('mp', 'b', 'b2', { primaryAgent: 'bravo' });
    await controlAgent.act('mp', 'start');
    await waitFor(() => controlAgent.session('mp').state === 'prepared', 60_000, 'prepared');
    await waitFor(() => s.bravo.replication.service.session('mp').state === 'prepared', 60_000, 'bravo prepared');

    // Damage the secondary's copies behind replication's back: one track of a2, two of b2.
    const clean = await controlAgent.verify('mp');
    expect(clean.differingTracks).toBe(0);
    await s.charlie.engine.device('a2').write(4 * MiB, Buffer.alloc(4096, 7));
    await s.charlie.engine.device('b2').write(MiB, Buffer.alloc(4096, 7));
    await s.charlie.engine.device('b2').write(6 * MiB, Buffer.alloc(4096, 7));

    const report = await controlAgent.verify('mp');
    expect(report.pairs.map((pair) => `${pair.primarySite}:${pair.h1Volume}`).sort()).toEqual(['alpha:a', 'bravo:b']);
    const of = (volume: string) => report.pairs.find((pair) => pair.h1Volume === volume)!;
    expect(of('a').differingCount).toBe(1);
    expect(of('b').differingCount).toBe(2);
    expect(report.differingTracks).toBe(3);
    expect(report.comparedTracks).toBe(of('a').comparedTracks + of('b').comparedTracks);
    expect(of('b').comparedTracks).toBeGreaterThan(0);
    expect(report.resyncStarted).toBe(true);
    // Copied from each copy set's source: b2 from bravo's b, a2 from alpha's a.
    await waitFor(() => controlAgent.session('mp').state === 'prepared' && s.bravo.replication.service.session('mp').state === 'prepared', 60_000, 'repaired');
    const equal = async () =>
      (await readAll(s.alpha, 'a')).equals(await readAll(s.charlie, 'a2')) && (await readAll(s.bravo, 'b')).equals(await readAll(s.charlie, 'b2'));
    const deadline = Date.now() + 60_000;
    while (!(await equal()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await equal(), 'a2 and b2 are repaired').toBe(true);
    const again = await controlAgent.verify('mp');
    expect(again.pairs).toHaveLength(2);
    expect(again.differingTracks).toBe(0);
  }, 180_000);
});
