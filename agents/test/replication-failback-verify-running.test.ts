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

const host = (s: TwoSites, site: 'h1' | 'h2', volume: string) => s[site].replication.exports.openExport(volume);

describe('failback verified by the agent', () => {
  it('verifies a failback by segment codes once it is Prepared, records the result at both sites, and a concurrent verify request gets that verify', async () => {
    sites = await startTwoSites();
    const s = sites;
    const h1 = s.h1.replication.service;
    const h2 = s.h2.replication.service;
    await s.h1.engine.createVolume('prod', 8 * MiB);
    await s.h2.engine.createVolume('copy', 8 * MiB);
    await h1.createSession('s1', 'sync', 'beta');
    await h1.addPair('s1', 'prod', 'copy');
    await host(s, 'h1', 'prod').write(0, randomBytes(8 * MiB));
    await h1.act('s1', 'start');
    await waitFor(() => h1.session('s1').state === 'prepared', 30_000, 'prepared');
    expect(h1.info(h1.session('s1')).lastVerify).toBeNull();

    await h2.act('s1', 'recover');
    for (const track of [10, 11]) await host(s, 'h2', 'copy').write(track * TRACK, randomBytes(TRACK));
    // A difference no bitmap knows of (written to the engine below the splitter at h1):
    // a failback by bitmaps and codes of changed tracks does not copy it; the verify by codes of every track finds it.
    await s.h1.engine.device('prod').write(30 * TRACK, Buffer.alloc(TRACK, 0x77));

    // The console's failback wizard: failback, then `session verify` once Prepared (here at the other site, forwarded).
    await h2.act('s1', 'failback', { verifyCodes: true });
    await waitFor(() => h2.session('s1').state === 'prepared', 30_000, 'prepared after failback');
    const requested = await h1.verify('s1');
    expect(requested.comparedTracks + requested.unverifiedTracks).toBe(128);

    // The agent verified by itself: the hidden difference was found, marked and copied.
    await waitFor(() => h2.session('s1').lastVerify != null, 30_000, 'verify recorded');
    const recorded = h2.info(h2.session('s1')).lastVerify!;
    expect(recorded.trigger).toBe('failback');
    expect(recorded.differingTracks).toBe(1);
    expect(recorded.ok).toBe(false);
    expect(recorded.resyncStarted).toBe(true);
    expect(recorded.comparedTracks).toBe(128);
    // The concurrent request got the same verify, not a conflict.
    expect(requested.differingTracks).toBe(1);
    expect(requested.startedAt).toBe(recorded.startedAt);
    await waitFor(() => h2.session('s1').state === 'prepared' && h2.info(h2.session('s1')).pairs[0].outOfSyncTracks === 0, 30_000, 'resynced');
    expect((await readAll(s.h1, 'prod')).equals(await readAll(s.h2, 'copy'))).toBe(true);

    // Both sites show it; events say what happened.
    await waitFor(() => h1.info(h1.session('s1')).lastVerify?.startedAt === recorded.startedAt, 10_000, 'h1 knows the result');
    const verified = s.h2.engine.catalog.listEvents(0, 5000).filter((event) => event.type === 'session.verified');
    expect(verified).toHaveLength(1);
    expect(verified[0].data).toMatchObject({ trigger: 'failback', differingTracks: 1, ok: false });
    expect(verified[0].message).toMatch(/after failback/);

    // A verify on request afterwards is recorded as such, and finds nothing now.
    const again = await h2.verify('s1');
    expect(again.differingTracks).toBe(0);
    const last = h2.info(h2.session('s1')).lastVerify!;
    expect(last).toMatchObject({ trigger: 'request', ok: true, differingTracks: 0 });
    // Kept in the catalog: the store reads it back from SQLite.
    expect(h2.store.sessions().find((session) => session.name === 's1')!.lastVerify).toMatchObject({ trigger: 'request', ok: true });
  }, 90_000);
});
