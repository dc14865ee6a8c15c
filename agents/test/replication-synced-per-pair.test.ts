import { randomBytes } from 'node:crypto';
import { SessionSyncedSchema } from '@tandem/contract';
import { afterEach, describe, expect, it } from 'vitest';
import { startTwoSites, waitFor, type TwoSites } from './helpers/replication-sites.ts';

const TRACK = 65536;
const MiB = 1024 * 1024;

let sites: TwoSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

/**
 * `session.synced` and `lastVerify` carry per copy set numbers: the tracks
 * and bytes each copy set's resync copied (what was written to it), and what
 * the verify compared per copy set.
 */
describe('per copy set results of a resync and a verify', () => {
  it('session.synced reports each copy set its copied tracks and bytes; lastVerify each its compared tracks', async () => {
    sites = await startTwoSites();
    const s = sites;
    const h1 = s.h1.replication.service;
    for (const [name, size] of [['x', 16], ['y', 8]] as const) {
      await s.h1.engine.createVolume(name, size * MiB);
      await s.h2.engine.createVolume(`${name}2`, size * MiB);
    }
    // x: 7 tracks written (two runs), y: 2 tracks.
    await s.h1.replication.exports.openExport('x').write(3 * TRACK, randomBytes(4 * TRACK));
    await s.h1.replication.exports.openExport('x').write(100 * TRACK, randomBytes(3 * TRACK));
    await s.h1.replication.exports.openExport('y').write(0, randomBytes(2 * TRACK));
    await h1.createSession('per', 'sync', 'beta');
    await h1.addPair('per', 'x', 'x2');
    await h1.addPair('per', 'y', 'y2');
    await h1.act('per', 'start');
    await waitFor(() => h1.session('per').state === 'prepared', 30_000, 'prepared');
    const event = s.h1.engine.catalog.listEvents(0, 5000).find((e) => e.type === 'session.synced');
    expect(event, 'session.synced recorded').toBeDefined();
    const synced = SessionSyncedSchema.parse(event!.data);
    const of = (volume: string) => synced.pairs!.find((pair) => pair.h1Volume === volume)!;
    expect(of('x')).toMatchObject({ h2Volume: 'x2', copiedTracks: 7, bytesSent: 7 * TRACK });
    expect(of('y')).toMatchObject({ h2Volume: 'y2', copiedTracks: 2, bytesSent: 2 * TRACK });
    expect(of('x').primarySite, 'single-primary: no primary site').toBeUndefined();
    expect(synced.copiedTracks).toBe(9);
    expect(synced.bytesSent).toBe(9 * TRACK);

    const report = await h1.verify('per');
    expect(report.differingTracks).toBe(0);
    const last = h1.session('per').lastVerify!;
    const verified = (volume: string) => last.pairs!.find((pair) => pair.h1Volume === volume)!;
    expect(verified('x')).toMatchObject({ comparedTracks: (16 * MiB) / TRACK, differingTracks: 0, unverifiedTracks: 0 });
    expect(verified('y')).toMatchObject({ comparedTracks: (8 * MiB) / TRACK, differingTracks: 0, unverifiedTracks: 0 });
    // The target holds the same per copy set result (pushed with the state).
    await waitFor(() => s.h2.replication.service.session('per').lastVerify?.pairs?.length === 2, 10_000, 'lastVerify at the target');
  }, 120_000);
});
