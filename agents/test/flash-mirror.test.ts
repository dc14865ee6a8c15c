import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { EstablishFlashRequestSchema, type SessionType } from '@tandem/contract';
import { FlashService } from '../src/flash/service.ts';
import { installFlashMirror, type FlashMirror } from '../src/replication/flash-mirror.ts';
import { splitterExports } from '../src/write-path/splitter.ts';
import type { BlockDevice, ExportCatalog } from '../src/storage/block-device.ts';
import { readAll, startTwoSites, waitFor, type Site, type TwoSites } from './helpers/replication-sites.ts';
import { SLOTS, StampedWriter, type Stamp } from './helpers/stamped-writer.ts';

const MiB = 1024 * 1024;
const TRACK = 65536;

/** A site with flash copy: the FlashService, its mirror interplay, and host exports through both taps. */
interface FlashSite {
  site: Site;
  flash: FlashService;
  mirror: FlashMirror;
  exports: ExportCatalog;
}

let sites: TwoSites | null = null;
const flashes: FlashService[] = [];
afterEach(async () => {
  for (const flash of flashes.splice(0)) await flash.close();
  await sites?.close();
  sites = null;
});

function withFlash(site: Site): FlashSite {
  const flash = new FlashService({ engine: site.engine, logger: pino({ level: 'silent' }) });
  flash.start();
  flashes.push(flash);
  const mirror = installFlashMirror(site.replication.service, flash);
  return { site, flash, mirror, exports: splitterExports(site.engine.exports, [flash, site.replication.service]) };
}

async function flashSites(): Promise<{ s: TwoSites; h1: FlashSite; h2: FlashSite }> {
  sites = await startTwoSites();
  return { s: sites, h1: withFlash(sites.h1), h2: withFlash(sites.h2) };
}

/** Creates the named volumes, all of `size` bytes, at h1 and at h2. */
async function volumes(s: TwoSites, size: number, atH1: readonly string[], atH2: readonly string[]): Promise<void> {
  for (const name of atH1) await s.h1.engine.createVolume(name, size);
  for (const name of atH2) await s.h2.engine.createVolume(name, size);
}

/**
 * The 256 MiB scenario: src/tgt at h1 sync mirrored to src2/tgt2; the source
 * holds 192 MiB, the target 64 MiB of other data, so a flash src -> tgt
 * changes every one of its 4096 tracks.
 */
async function syncMirrored256(s: TwoSites, h1: FlashSite): Promise<void> {
  await volumes(s, 256 * MiB, ['src', 'tgt'], ['src2', 'tgt2']);
  await fill(h1.exports.openExport('src'), 0, 3072);
  await fill(h1.exports.openExport('tgt'), 3072, 1024);
  await mirrored(h1, 'sync', [
    ['src', 'src2'],
    ['tgt', 'tgt2'],
  ]);
}

/** Writes random data over tracks [first, first+count) in 1 MiB pieces. */
async function fill(device: BlockDevice, firstTrack: number, count: number): Promise<void> {
  const end = (firstTrack + count) * TRACK;
  for (let offset = firstTrack * TRACK; offset < end; offset += MiB) await device.write(offset, randomBytes(Math.min(MiB, end - offset)));
}

async function mirrored(
  h1: FlashSite,
  type: SessionType,
  pairs: Array<[string, string]>,
): Promise<void> {
  const service = h1.site.replication.service;
  await service.createSession('m', type, 'beta');
  for (const [local, remote] of pairs) await service.addPair('m', local, remote);
  await service.act('m', 'start');
  await waitFor(() => service.session('m').state === 'prepared', 180_000, 'prepared');
  await waitFor(() => service.info(service.session('m')).pairs.every((pair) => pair.outOfSyncTracks === 0), 30_000, 'nothing out of sync');
}

async function same(a: Site, aVolume: string, b: Site, bVolume: string): Promise<boolean> {
  return (await readAll(a, aVolume)).equals(await readAll(b, bVolume));
}

function establish(flash: FlashService, request: Record<string, unknown>) {
  return flash.establish(EstablishFlashRequestSchema.parse(request));
}

describe('flash copy onto mirrored primaries', () => {
  it('preserve mirror: a 256 MiB flash on a sync mirrored pair ships almost nothing, both sites end identical, and a lost withdraw still ends right', async () => {
    const { s, h1, h2 } = await flashSites();
    await syncMirrored256(s, h1);
    const service = s.h1.replication.service;

    const before = s.proxy.forwarded.up;
    const info = await establish(h1.flash, { name: 'pm', pairs: [{ source: 'src', target: 'tgt' }], preserveMirror: true, backgroundCopy: false });
    expect(info.pairs[0].mirror).toBe('preserved');
    // The secondary made the same flash itself: the session never left duplex and nothing is marked.
    expect(service.session('m').state).toBe('prepared');
    await waitFor(() => service.info(service.session('m')).pairs.every((pair) => pair.outOfSyncTracks === 0), 10_000, 'marks cleared');
    const shipped = s.proxy.forwarded.up - before;
    console.log(`preserve mirror: 256 MiB flash (4096 changed tracks) sent ${shipped} bytes over the link`);
    expect(shipped).toBeLessThan(256 * 1024);
    expect(service.session('m').state).toBe('prepared');
    expect(h2.flash.get('pm').pairs.map((pair) => [pair.source, pair.target])).toEqual([['src2', 'tgt2']]);
    expect(await same(s.h1, 'tgt', s.h1, 'src')).toBe(true);
    expect(await same(s.h1, 'tgt', s.h2, 'tgt2')).toBe(true);
    expect(await same(s.h1, 'src', s.h2, 'src2')).toBe(true);

    // Host writes after the flash: the source's do not reach the targets, the target's are mirrored.
    await h1.exports.openExport('src').write(5 * TRACK, randomBytes(TRACK));
    await h1.exports.openExport('tgt').write(7 * TRACK + 512, randomBytes(4096));
    expect(await same(s.h1, 'tgt', s.h2, 'tgt2')).toBe(true);
    expect(await same(s.h1, 'src', s.h2, 'src2')).toBe(true);

    // A withdraw whose command to the secondary is lost: it changes no content, so both sites stay right.
    h2.site.faults.loseFlashMirror.add('withdraw');
    const withdrawn = await h1.flash.withdraw('pm', { finishCopy: false });
    await waitFor(() => h1.mirror.unconfirmedWithdraws === 1, 10_000, 'the withdraw is retried');
    expect(h2.flash.get('pm').state).not.toBe(withdrawn.state);
    await h1.exports.openExport('src').write(9 * TRACK, randomBytes(TRACK));
    await h1.exports.openExport('tgt').write(11 * TRACK, randomBytes(2 * TRACK));
    expect(await same(s.h1, 'tgt', s.h2, 'tgt2')).toBe(true);
    expect(await same(s.h1, 'src', s.h2, 'src2')).toBe(true);
    // Once it gets through the secondary drops its relationship too.
    h2.site.faults.loseFlashMirror.clear();
    await waitFor(() => h1.mirror.unconfirmedWithdraws === 0 && h2.flash.get('pm').state === withdrawn.state, 20_000, 'withdrawn at the secondary');
    expect(await same(s.h1, 'tgt', s.h2, 'tgt2')).toBe(true);
    expect(await same(s.h1, 'src', s.h2, 'src2')).toBe(true);
    expect(service.session('m').state).toBe('prepared');

    // The name is free again once forgotten at the primary: the secondary's withdrawn leftover makes way.
    await h1.flash.remove('pm');
    const again = await establish(h1.flash, { name: 'pm', pairs: [{ source: 'src', target: 'tgt' }], preserveMirror: true, backgroundCopy: false });
    expect(again.pairs[0].mirror).toBe('preserved');
    expect(h2.flash.get('pm').withdrawnAt ?? null).toBeNull();
    expect(await same(s.h1, 'tgt', s.h2, 'tgt2')).toBe(true);
  }, 400_000);

  it('without preserve mirror the target tracks are marked out-of-sync and shipped: bytes on the link are the changed tracks', async () => {
    const { s, h1 } = await flashSites();
    await syncMirrored256(s, h1);
    const service = s.h1.replication.service;
    const before = s.proxy.forwarded.up;
    const info = await establish(h1.flash, { name: 'plain', pairs: [{ source: 'src', target: 'tgt' }], backgroundCopy: false });
    expect(info.pairs[0].mirror).toBe('shipped');
    await waitFor(() => service.session('m').state === 'prepared', 120_000, 'prepared again');
    await waitFor(() => service.info(service.session('m')).pairs.every((pair) => pair.outOfSyncTracks === 0), 30_000, 'shipped');
    const shipped = s.proxy.forwarded.up - before;
    // 3072 tracks take the source's data (a trim suffices for the 1024 that become zeroes).
    const changedData = 3072 * TRACK;
    console.log(`no preserve: 256 MiB flash (3072 tracks of data, 1024 to zeroes) sent ${shipped} bytes over the link`);
    expect(shipped).toBeGreaterThanOrEqual(changedData);
    expect(shipped).toBeLessThan(changedData * 1.03 + MiB);
    expect(await same(s.h1, 'tgt', s.h1, 'src')).toBe(true);
    expect(await same(s.h1, 'tgt', s.h2, 'tgt2')).toBe(true);
    expect(await same(s.h1, 'src', s.h2, 'src2')).toBe(true);
  }, 400_000);

  it('after a failback (H2->H1) a preserve-mirror flash at the H2 site is performed at the H1 site too', async () => {
    const { s, h1, h2 } = await flashSites();
    await volumes(s, 16 * MiB, ['src', 'tgt'], ['src2', 'tgt2']);
    await fill(h1.exports.openExport('src'), 0, 100);
    await mirrored(h1, 'sync', [
      ['src', 'src2'],
      ['tgt', 'tgt2'],
    ]);
    const atH2 = s.h2.replication.service;
    await atH2.act('m', 'recover');
    await waitFor(() => atH2.session('m').state === 'target-available', 30_000, 'recovered at h2');
    await fill(h2.exports.openExport('src2'), 100, 20);
    await atH2.act('m', 'failback', { verifyCodes: true });
    await waitFor(() => atH2.session('m').state === 'prepared' && atH2.session('m').direction === 'h2-h1', 60_000, 'prepared H2->H1');
    // H2 is the source now: its flash is made at H1 too, from the agent that mirrors there (H2, not the H1 agent).
    const info = await establish(h2.flash, { name: 'back', pairs: [{ source: 'src2', target: 'tgt2' }], preserveMirror: true, backgroundCopy: false });
    expect(info.pairs[0].mirror, info.pairs[0].reason ?? '').toBe('preserved');
    expect(h1.flash.get('back').pairs.map((pair) => [pair.source, pair.target])).toEqual([['src', 'tgt']]);
    expect(atH2.session('m').state).toBe('prepared');
    expect(await same(s.h2, 'tgt2', s.h1, 'tgt')).toBe(true);
    expect(await same(s.h2, 'src2', s.h1, 'src')).toBe(true);
  }, 200_000);

  for (const type of ['sync', 'async'] as const) {
    it(`a lost or refused request to the secondary ships the marked tracks (${type}), and a secondary volume cannot be flashed behind the mirror`, async () => {
      const { s, h1, h2 } = await flashSites();
      await volumes(s, 16 * MiB, ['src', 'tgt'], ['src2', 'tgt2', 'other']);
      await fill(h1.exports.openExport('src'), 0, 200);
      await mirrored(h1, type, [
        ['src', 'src2'],
        ['tgt', 'tgt2'],
      ]);
      const service = s.h1.replication.service;

      // An administrator at the secondary may not flash onto a volume the mirror owns.
      await expect(establish(h2.flash, { name: 'behind', pairs: [{ source: 'other', target: 'tgt2' }] })).rejects.toMatchObject({ problem: 'invalid-state' });

      // Lost on the way: the marks stay and the resync ships them.
      h2.site.faults.loseFlashMirror.add('perform');
      const lost = await establish(h1.flash, { name: 'one', pairs: [{ source: 'src', target: 'tgt' }], preserveMirror: true, backgroundCopy: false });
      expect(lost.pairs[0].mirror).toBe('shipped');
      h2.site.faults.loseFlashMirror.clear();
      await waitFor(() => service.session('m').state === 'prepared', 60_000, 'prepared again');
      await waitFor(() => service.info(service.session('m')).pairs.every((pair) => pair.outOfSyncTracks === 0), 30_000, 'shipped');
      expect(await same(s.h1, 'tgt', s.h2, 'tgt2')).toBe(true);
      expect(() => h2.flash.get('one')).toThrow();
      await h1.flash.withdraw('one', { finishCopy: false });

      // Refused: the secondary already has a flash session of that name.
      await establish(h2.flash, { name: 'two', pairs: [{ source: 'src2', target: 'other' }] });
      await h1.exports.openExport('src').write(3 * TRACK, randomBytes(TRACK));
      const refused = await establish(h1.flash, { name: 'two', pairs: [{ source: 'src', target: 'tgt' }], preserveMirror: true, backgroundCopy: false });
      expect(refused.pairs[0].mirror).toBe('shipped');
      // Async: the refusal came back through the stream after the writes were released, and is recorded.
      if (type === 'async') expect(refused.pairs[0].reason).toMatch(/already exists/);
      await waitFor(() => service.session('m').state === 'prepared', 60_000, 'prepared again');
      await waitFor(() => service.info(service.session('m')).pairs.every((pair) => pair.outOfSyncTracks === 0), 30_000, 'shipped');
      expect(await same(s.h1, 'tgt', s.h2, 'tgt2')).toBe(true);
      expect(await same(s.h1, 'src', s.h2, 'src2')).toBe(true);
    }, 200_000);
  }

  it('an incremental refresh and a reverse of a preserved session are performed at the secondary too', async () => {
    const { s, h1, h2 } = await flashSites();
    await volumes(s, 16 * MiB, ['src', 'tgt'], ['src2', 'tgt2']);
    await fill(h1.exports.openExport('src'), 0, 128);
    await mirrored(h1, 'sync', [
      ['src', 'src2'],
      ['tgt', 'tgt2'],
    ]);
    const service = s.h1.replication.service;
    const info = await establish(h1.flash, { name: 'inc', pairs: [{ source: 'src', target: 'tgt' }], preserveMirror: true, incremental: true, backgroundCopy: false });
    expect(info.pairs[0].mirror).toBe('preserved');
    await h1.exports.openExport('src').write(3 * TRACK, randomBytes(2 * TRACK));
    await h1.exports.openExport('tgt').write(40 * TRACK, randomBytes(TRACK));

    let before = s.proxy.forwarded.up;
    const refreshed = await h1.flash.refresh('inc', { holdTimeoutMs: 2000 });
    expect(refreshed.pairs[0].mirror).toBe('preserved');
    expect(s.proxy.forwarded.up - before).toBeLessThan(16 * 1024);
    expect(await same(s.h1, 'tgt', s.h1, 'src')).toBe(true);
    expect(await same(s.h1, 'tgt', s.h2, 'tgt2')).toBe(true);
    expect(h2.flash.get('inc').pointInTime).not.toBe(info.pointInTime);

    // Reverse: the target's image goes back onto the source, at both sites.
    await h1.exports.openExport('src').write(60 * TRACK, randomBytes(TRACK));
    before = s.proxy.forwarded.up;
    const reversed = await h1.flash.reverse('inc', { holdTimeoutMs: 2000 });
    expect(reversed.pairs[0].mirror).toBe('preserved');
    expect(s.proxy.forwarded.up - before).toBeLessThan(16 * 1024);
    expect(await same(s.h1, 'src', s.h1, 'tgt')).toBe(true);
    expect(await same(s.h1, 'src', s.h2, 'src2')).toBe(true);
    expect(await same(s.h1, 'tgt', s.h2, 'tgt2')).toBe(true);
    await waitFor(() => service.info(service.session('m')).pairs.every((pair) => pair.outOfSyncTracks === 0), 10_000, 'nothing out of sync');
    expect(service.session('m').state).toBe('prepared');
  }, 200_000);

  for (const [type, preserveMirror] of [
    ['sync', true],
    ['semi-sync', true],
    ['async', true],
    ['sync', false],
    ['async', false],
  ] as const) {
    it(`${preserveMirror ? 'preserve mirror' : 'shipped'} under host writes to source and target (${type}): both sites end identical`, async () => {
      const { s, h1, h2 } = await flashSites();
      await volumes(s, 16 * MiB, ['src', 'tgt', 'other'], ['src2', 'tgt2', 'other2']);
      await fill(h1.exports.openExport('src'), 40, 40);
      await mirrored(h1, type, [
        ['src', 'src2'],
        ['tgt', 'tgt2'],
        ['other', 'other2'],
      ]);
      // Dependent writes over src and another volume, and a writer of its own on the target (other offsets).
      const writer = new StampedWriter(TRACK);
      writer.start({ a: h1.exports.openExport('src'), b: h1.exports.openExport('other') });
      let writing = true;
      const target = h1.exports.openExport('tgt');
      const targetWriter = (async () => {
        for (let i = 0; writing; i++) {
          await new Promise((resolve) => setImmediate(resolve));
          await target.write((i % 32) * TRACK + 8192, randomBytes(4096));
        }
      })();
      await new Promise((resolve) => setTimeout(resolve, 300));
      const flashes = [];
      for (let round = 0; round < 3; round++) {
        const info = await establish(h1.flash, { name: `pm${round}`, pairs: [{ source: 'src', target: 'tgt' }], preserveMirror, backgroundCopy: false });
        flashes.push(info.pairs[0].mirror);
        if (preserveMirror) expect(h2.flash.get(`pm${round}`).pairs[0].target).toBe('tgt2');
        else expect(h2.flash.list()).toEqual([]);
        await new Promise((resolve) => setTimeout(resolve, 150));
        await h1.flash.withdraw(`pm${round}`, { finishCopy: false });
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      writing = false;
      await Promise.all([writer.stop(), targetWriter]);
      expect(flashes).toEqual(new Array(3).fill(preserveMirror ? 'preserved' : 'shipped'));
      const service = s.h1.replication.service;
      await waitFor(() => service.session('m').state === 'prepared', 60_000, 'prepared');
      await waitFor(() => service.info(service.session('m')).pairs.every((pair) => pair.outOfSyncTracks === 0), 30_000, 'nothing out of sync');
      for (const [local, remote] of [
        ['src', 'src2'],
        ['tgt', 'tgt2'],
        ['other', 'other2'],
      ]) {
        expect(await same(s.h1, local, s.h2, remote), `${local} equals ${remote}`).toBe(true);
      }
    }, 200_000);
  }

  for (const type of ['sync', 'semi-sync', 'async'] as const) {
    it(`coordinated point in time (${type}): the secondary's flash targets equal the primary's, a consistent cut of dependent writes`, async () => {
      const { s, h1, h2 } = await flashSites();
      await volumes(s, 16 * MiB, ['a', 'b', 'ta', 'tb'], ['a2', 'b2', 'ra', 'rb']);
      await fill(h1.exports.openExport('a'), 100, 20);
      await mirrored(h1, type, [
        ['a', 'a2'],
        ['b', 'b2'],
      ]);
      // Dependent writes: stamp i goes to a, then (after a's acknowledgement) to b; one track apart so holds matter.
      const writer = new StampedWriter(TRACK);
      writer.start({ a: h1.exports.openExport('a'), b: h1.exports.openExport('b') });
      // Independent writers beside it (256 KiB writes past the stamps' tracks, several at once, as a host's queue
      // would): some are in flight when the flash holds the volumes, so some reach the secondary before their local write.
      let writing = true;
      const others = ['a', 'a', 'b', 'b'].map(async (volume, n) => {
        const device = h1.exports.openExport(volume);
        for (let i = n; writing; i += 4) {
          await new Promise((resolve) => setTimeout(resolve, 2));
          await device.write((SLOTS + ((i * 4) % 220)) * TRACK, randomBytes(256 * 1024));
        }
      });
      let requested = 0;
      let answered = 0;
      let info;
      try {
        await new Promise((resolve) => setTimeout(resolve, 600));
        requested = Date.now();
        info = await establish(h1.flash, {
          name: 'pit',
          coordinated: true,
          backgroundCopy: false,
          pairs: [
            { source: 'a', target: 'ta', remoteTarget: 'ra' },
            { source: 'b', target: 'tb', remoteTarget: 'rb' },
          ],
        });
        answered = Date.now();
        await new Promise((resolve) => setTimeout(resolve, 600));
      } finally {
        writing = false;
        await Promise.all([writer.stop(), ...others]);
      }
      // The secondary took it (an async one answers through the stream before the establish returns).
      expect(h1.flash.get('pit').pairs.map((pair) => pair.reason)).toEqual([null, null]);
      expect(info.pairs.map((pair) => pair.remoteTarget)).toEqual(['ra', 'rb']);
      expect(writer.writes.length).toBeGreaterThan(6);

      const local = { a: await writer.stampsOf(s.h1.engine.device('ta')), b: await writer.stampsOf(s.h1.engine.device('tb')) };
      const remote = { a: await writer.stampsOf(s.h2.engine.device('ra')), b: await writer.stampsOf(s.h2.engine.device('rb')) };
      // The primary's targets hold one cut of the dependent writes, taken while the command ran.
      const cut = prefixBetween(writer.writes, requested, answered, local.a, local.b);
      expect(cut, 'the primary flash targets hold a prefix of the writes').not.toBeNull();
      expect(cut!).toBeGreaterThan(0);
      expect(cut!).toBeLessThan(writer.writes.length);
      // The secondary took exactly that point of the mirror stream.
      expect(remote).toEqual(local);
      expect(await same(s.h1, 'ta', s.h2, 'ra')).toBe(true);
      expect(await same(s.h1, 'tb', s.h2, 'rb')).toBe(true);
      expect(h2.flash.get('pit').pairs.map((pair) => [pair.source, pair.target])).toEqual([
        ['a2', 'ra'],
        ['b2', 'rb'],
      ]);
      // Mirroring went on: the secondaries catch up with the sources.
      const service = s.h1.replication.service;
      await waitFor(() => service.info(service.session('m')).pairs.every((pair) => pair.outOfSyncTracks === 0), 30_000, 'caught up');
      await waitFor(() => service.session('m').state === 'prepared', 30_000, 'prepared');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await same(s.h1, 'a', s.h2, 'a2')).toBe(true);
      expect(await same(s.h1, 'b', s.h2, 'b2')).toBe(true);
    }, 200_000);
  }
});

/**
 * The number of writes whose image the stamps show, when that image is the
 * result of a prefix of the log cut at some instant in [from, to]: every
 * write acknowledged before `from` is in it, none issued after `to`.
 */
function prefixBetween(writes: Stamp[], from: number, to: number, stampsA: number[], stampsB: number[]): number | null {
  const lowest = writes.filter((w) => w.ackedAt < from).length;
  const highest = writes.filter((w) => w.issuedAt <= to).length;
  const image = { a: new Array<number>(SLOTS).fill(0), b: new Array<number>(SLOTS).fill(0) };
  for (const write of writes.slice(0, lowest)) image[write.volume][write.slot] = write.stamp;
  for (let count = lowest; count <= highest; count++) {
    if (count > lowest) {
      const write = writes[count - 1];
      image[write.volume][write.slot] = write.stamp;
    }
    if (image.a.every((v, i) => v === stampsA[i]) && image.b.every((v, i) => v === stampsB[i])) return count;
  }
  return null;
}
