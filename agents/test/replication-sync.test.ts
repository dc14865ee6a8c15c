import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ProblemError } from '@tandem/contract';
import { readAll, startTwoSites, waitFor, type TwoSites } from './helpers/replication-sites.ts';

const TRACK = 65536;
const MiB = 1024 * 1024;

let sites: TwoSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

/** The export as hosts see it: behind the splitter. */
function hostDevice(sites: TwoSites, site: 'h1' | 'h2', volume: string) {
  return sites[site].replication.exports.openExport(volume);
}

async function sessionWithPair(s: TwoSites, type: 'sync' | 'semi-sync', size = 16 * MiB) {
  await s.h1.engine.createVolume('prod', size);
  await s.h2.engine.createVolume('copy', size);
  await s.h1.replication.service.createSession('s1', type, 'beta');
  await s.h1.replication.service.addPair('s1', 'prod', 'copy');
}

const state = (s: TwoSites, site: 'h1' | 'h2') => s[site].replication.service.session('s1').state;

describe('sync mirroring', () => {
  it('copies only allocated tracks at start, mirrors every acknowledged write, and the target refuses host writes', async () => {
    sites = await startTwoSites();
    const s = sites;
    await sessionWithPair(s, 'sync');
    // Data before the start: 3 tracks allocated.
    const early = randomBytes(3 * TRACK);
    await hostDevice(s, 'h1', 'prod').write(5 * TRACK, early);
    // Stale data on the target outside those tracks must be gone after the start.
    await s.h2.engine.device('copy').write(100 * TRACK, Buffer.alloc(TRACK, 9));

    await s.h1.replication.service.act('s1', 'start');
    await waitFor(() => state(s, 'h1') === 'prepared', 20_000, 'prepared');
    const info = s.h1.replication.service.info(s.h1.replication.service.session('s1'));
    expect(info.pairs[0].state).toBe('duplex');
    const sent = s.proxy.forwarded.up;
    expect(sent).toBeGreaterThan(3 * TRACK);
    expect(sent).toBeLessThan(3 * TRACK + 256 * 1024); // the initial copy skipped the 253 unallocated tracks

    // Every acknowledged write is at the target the moment it is acknowledged.
    for (let i = 0; i < 50; i++) {
      const data = randomBytes(4096 + i * 1000);
      const offset = (i * 7919 * 512) % (16 * MiB - data.length);
      await hostDevice(s, 'h1', 'prod').write(offset, data);
      const there = Buffer.alloc(data.length);
      await s.h2.engine.device('copy').readInto(offset, there);
      expect(there.equals(data), `write ${i} is at the target when acknowledged`).toBe(true);
    }
    await hostDevice(s, 'h1', 'prod').trim(5 * TRACK, TRACK);
    expect((await readAll(s.h1, 'prod')).equals(await readAll(s.h2, 'copy'))).toBe(true);
    await expect(hostDevice(s, 'h2', 'copy').write(0, Buffer.alloc(512))).rejects.toMatchObject({ problem: 'read-only' });
  });

  it('suspends on link loss, keeps host writes going, and resyncs exactly the marked tracks', async () => {
    sites = await startTwoSites();
    const s = sites;
    await sessionWithPair(s, 'sync');
    await s.h1.replication.service.act('s1', 'start');
    await waitFor(() => state(s, 'h1') === 'prepared', 20_000, 'prepared');

    s.proxy.blackhole(true);
    // Host writes go on while the link is dead (the first one waits for the dead-peer timeout).
    const written = [3, 4, 40, 41, 200];
    for (const track of written) await hostDevice(s, 'h1', 'prod').write(track * TRACK + 100, randomBytes(2000));
    await waitFor(() => state(s, 'h1') === 'suspended', 20_000, 'suspended');
    const pair = s.h1.replication.service.info(s.h1.replication.service.session('s1')).pairs[0];
    expect(pair.outOfSyncTracks).toBe(written.length);

    const before = s.proxy.forwarded.up;
    s.proxy.blackhole(false);
    await waitFor(() => state(s, 'h1') === 'prepared', 30_000, 'prepared again after the link came back');
    const resent = s.proxy.forwarded.up - before;
    expect(resent).toBeGreaterThanOrEqual(written.length * TRACK);
    expect(resent).toBeLessThan((written.length + 2) * TRACK); // only the marked tracks crossed
    expect((await readAll(s.h1, 'prod')).equals(await readAll(s.h2, 'copy'))).toBe(true);
  }, 60_000);

  it('a verify after failback that fails (the link breaks under it) is said in an event and runs again once prepared', async () => {
    sites = await startTwoSites();
    const s = sites;
    await sessionWithPair(s, 'sync', 4 * MiB);
    await hostDevice(s, 'h1', 'prod').write(0, randomBytes(4 * MiB));
    await s.h1.replication.service.act('s1', 'start');
    await waitFor(() => state(s, 'h1') === 'prepared', 30_000, 'prepared');
    await s.h2.replication.service.act('s1', 'recover');
    await hostDevice(s, 'h2', 'copy').write(TRACK, randomBytes(TRACK));
    // The first segment-code request of the verify after failback (once prepared; the failback's plan asks for codes
    // too) reaches h1, the target now, as the link breaks.
    const target = s.h1.replication.service.target;
    const handle = target.handle.bind(target);
    let refused = 0;
    target.handle = (request) => {
      if (request.method === 'pair.codes' && refused === 0 && state(s, 'h2') === 'prepared') {
        refused++;
        return Promise.reject(new ProblemError('link-down', 'injected: the link broke during the verify'));
      }
      return handle(request);
    };
    const since = s.h2.engine.catalog.lastEventId();
    await s.h2.replication.service.act('s1', 'failback', { verifyCodes: true });
    await waitFor(() => s.h2.replication.service.session('s1').lastVerify?.trigger === 'failback', 60_000, 'verified after failback');
    expect(refused).toBe(1);
    const verifyEvents = s.h2.engine.catalog.listEvents(since, 1000, { type: ['session.verify', 'session.verified'] });
    const failed = verifyEvents.find((event) => event.type === 'session.verify' && /verify after failback failed/.test(event.message));
    expect(failed?.message).toMatch(/injected: the link broke during the verify.*runs again once the session is prepared \(attempt 2 of 5\)/);
    const last = s.h2.replication.service.session('s1').lastVerify!;
    expect([last.differingTracks, last.unverifiedTracks]).toEqual([0, 0]);
    expect((await readAll(s.h1, 'prod')).equals(await readAll(s.h2, 'copy'))).toBe(true);
  }, 90_000);

  it('fails over and fails back copying exactly the tracks changed at either site', async () => {
    sites = await startTwoSites();
    const s = sites;
    await sessionWithPair(s, 'sync');
    await hostDevice(s, 'h1', 'prod').write(0, randomBytes(16 * MiB));
    await s.h1.replication.service.act('s1', 'start');
    await waitFor(() => state(s, 'h1') === 'prepared', 30_000, 'prepared');

    await s.h1.replication.service.act('s1', 'suspend');
    // Written at h1 after the suspend: never reached h2.
    for (const track of [1, 2]) await hostDevice(s, 'h1', 'prod').write(track * TRACK, randomBytes(TRACK));
    await s.h2.replication.service.act('s1', 'recover');
    expect(state(s, 'h2')).toBe('target-available');
    // Production at h2: new writes there, one of them rewriting a track with identical bytes.
    for (const track of [10, 11, 12]) await hostDevice(s, 'h2', 'copy').write(track * TRACK, randomBytes(TRACK));
    const same = Buffer.alloc(TRACK);
    await s.h2.engine.device('copy').readInto(20 * TRACK, same);
    await hostDevice(s, 'h2', 'copy').write(20 * TRACK, same);

    const preflight = await s.h2.replication.service.preflight('s1', { verifyCodes: true, fullCompare: false });
    expect(preflight.pairs[0].targetChangedTracks).toBe(4);
    expect(preflight.pairs[0].outOfSyncTracks).toBe(2);
    expect(preflight.pairs[0].candidateTracks).toBe(6);
    expect(preflight.pairs[0].differingTracks).toBe(5); // track 20 holds the same bytes at both sites
    expect(preflight.tracksToCopy).toBe(5);

    await s.h2.replication.service.act('s1', 'failback', { verifyCodes: true });
    await waitFor(() => state(s, 'h2') === 'prepared', 30_000, 'prepared after failback');
    expect(s.h2.replication.service.session('s1').direction).toBe('h2-h1');
    expect((await readAll(s.h1, 'prod')).equals(await readAll(s.h2, 'copy'))).toBe(true);
    const pairAtH2 = s.h2.replication.service.pairsOf(s.h2.replication.service.session('s1'))[0];
    expect(s.h2.replication.service.sourceOf(pairAtH2)!.progress.copied, 'failback copied exactly the differing tracks').toBe(5);
    // Now h1 is the target: hosts may not write there.
    await expect(hostDevice(s, 'h1', 'prod').write(0, Buffer.alloc(512))).rejects.toMatchObject({ problem: 'read-only' });
    // Writes at h2 are mirrored to h1.
    const data = randomBytes(8192);
    await hostDevice(s, 'h2', 'copy').write(MiB, data);
    const there = Buffer.alloc(data.length);
    await s.h1.engine.device('prod').readInto(MiB, there);
    expect(there.equals(data)).toBe(true);
  }, 60_000);
});
