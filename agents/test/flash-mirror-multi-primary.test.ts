import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { EstablishFlashRequestSchema, ProblemError } from '@tandem/contract';
import { FlashService } from '../src/flash/service.ts';
import { installFlashMirror, type FlashMirror } from '../src/replication/flash-mirror.ts';
import { splitterExports } from '../src/write-path/splitter.ts';
import type { BlockDevice, ExportCatalog } from '../src/storage/block-device.ts';
import { secondPlacement, secondPrimary, startThreeSites, type Primaries, type ThreeSites } from './helpers/multi-primary-sites.ts';
import { readAll, waitFor, type Site } from './helpers/replication-sites.ts';
import { StampedWriter } from './helpers/stamped-writer.ts';

const MiB = 1024 * 1024;
const TRACK = 65536;

/**
 * Flash copy of mirrored volumes in an async session (alpha the control agent,
 * charlie the secondary, b's volumes at bravo, a member, with two primary
 * agents, or at alpha with one; links through byte-counting proxies): the
 * flash goes as a marker in the flashing agent's part of the current round,
 * and charlie performs it while applying that round. Host writes go on at
 * both primary volumes.
 */

interface FlashSite {
  site: Site;
  flash: FlashService;
  mirror: FlashMirror;
  exports: ExportCatalog;
}

let sites: ThreeSites | null = null;
let writer: StampedWriter | null = null;
const flashes: FlashService[] = [];
afterEach(async () => {
  await writer?.stop();
  writer = null;
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

function establish(flash: FlashService, request: Record<string, unknown>) {
  return flash.establish(EstablishFlashRequestSchema.parse(request));
}

async function fill(device: BlockDevice, firstTrack: number, count: number): Promise<void> {
  const end = (firstTrack + count) * TRACK;
  for (let offset = firstTrack * TRACK; offset < end; offset += MiB) await device.write(offset, randomBytes(Math.min(MiB, end - offset)));
}

async function same(a: Site, aVolume: string, b: Site, bVolume: string): Promise<boolean> {
  return (await readAll(a, aVolume)).equals(await readAll(b, bVolume));
}

/** Bytes both ways through the links of b's primary agent: every link of bravo (two primary agents), alpha's to charlie (one). */
function linkBytes(s: ThreeSites, primaries: Primaries): number {
  const proxies = primaries === 2 ? s.bravoProxies : s.alphaCharlieProxies;
  return proxies.reduce((sum, proxy) => sum + proxy.forwarded.up + proxy.forwarded.down, 0);
}

describe.each([1, 2] as const)('flash copy of mirrored volumes in an async session with %i primary agent(s)', (primaries: Primaries) => {
  it('preserve mirror at b\'s primary agent and coordinated points in time at both primary volumes go as markers in the round: the secondary equals the primaries, nothing is shipped, host writes are not held for the stream', async () => {
    const s = (sites = await startThreeSites());
    // b, bt, bl and bp at bravo (two primary agents) or at alpha (one).
    const holder = secondPrimary(s, primaries);
    const alpha = withFlash(s.alpha);
    const bravo = primaries === 2 ? withFlash(s.bravo) : alpha;
    const charlie = withFlash(s.charlie);
    for (const name of ['a', 'at']) await s.alpha.engine.createVolume(name, 64 * MiB);
    for (const name of ['b', 'bt', 'bl', 'bp']) await holder.engine.createVolume(name, 64 * MiB);
    for (const name of ['a2', 'b2', 'bt2', 'bl2', 'ra', 'rb', 'spare', 'spare2']) await s.charlie.engine.createVolume(name, 64 * MiB);
    // 40 MiB in b past the stamps' tracks: a flash b -> bt that shipped its changes would send them all.
    await fill(bravo.exports.openExport('b'), 64, 640);
    const controlAgent = s.alpha.replication.service;
    await controlAgent.createSession('mp', 'async', 'charlie');
    await controlAgent.addPair('mp', 'a', 'a2');
    for (const [h1, h2] of [
      ['b', 'b2'],
      ['bt', 'bt2'],
      ['bl', 'bl2'],
    ]) {
      await controlAgent.addPair('mp', h1, h2, secondPlacement(primaries));
    }
    await controlAgent.act('mp', 'start');
    const atCharlie = () => s.charlie.replication.service.session('mp');
    await waitFor(() => controlAgent.session('mp').state === 'prepared' && atCharlie().state === 'prepared', 120_000, 'prepared');
    const outOfSync = (site: Site) => site.replication.service.info(site.replication.service.session('mp')).pairs.reduce((sum, p) => sum + p.outOfSyncTracks, 0);
    await waitFor(() => outOfSync(holder) === 0 && outOfSync(s.alpha) === 0, 60_000, 'initial copy done');

    // Dependent host writes at both primaries (stamp i to alpha's a, then after its acknowledgement to bravo's b).
    const stamps = (writer = new StampedWriter(TRACK));
    stamps.start({ a: alpha.exports.openExport('a'), b: bravo.exports.openExport('b') }, { stampIntervalMs: 2 });
    await waitFor(() => stamps.writes.length > 40, 20_000, 'writes going on');

    // Preserve mirror at b's primary agent while charlie applies nothing: the flash's hold must not wait for the stream.
    const bytesBefore = linkBytes(s, primaries);
    const writesBefore = stamps.writes.length;
    const release = await s.charlie.replication.service.applier.freeze(atCharlie().id);
    let frozen = true;
    const unfreeze = () => {
      if (frozen) release();
      frozen = false;
    };
    let preserved;
    try {
      const establishing = establish(bravo.flash, { name: 'pm', pairs: [{ source: 'b', target: 'bt' }], preserveMirror: true, backgroundCopy: false, holdTimeoutMs: 10_000 });
      establishing.catch(() => {});
      const started = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      // Host writes to the flashed volume went on while the secondary applied no round.
      const during = stamps.writes.filter((w) => w.volume === 'b' && w.ackedAt > started + 200).length;
      expect(during, 'host writes to b during the frozen stream').toBeGreaterThan(20);
      unfreeze();
      preserved = await establishing;
    } finally {
      unfreeze();
    }
    expect(preserved.pairs[0].mirror).toBe('preserved');
    console.log(`preserve mirror (${primaries} primary agents): writes held ${preserved.holdMs} ms while the secondary's applies were frozen 1500 ms`);
    expect(preserved.holdMs!).toBeLessThan(1000);
    expect(charlie.flash.get('pm').pairs.map((pair) => [pair.source, pair.target])).toEqual([['b2', 'bt2']]);
    // (b is being written: its marks come and go with the rounds; bt is not written.)
    const marksOf = (volume: string) => holder.replication.service.info(holder.replication.service.session('mp')).pairs.find((p) => p.h1Volume === volume)!.outOfSyncTracks;
    await waitFor(() => marksOf('bt') === 0, 30_000, "bt's marks cleared");
    expect(await same(holder, 'bt', s.charlie, 'bt2'), "charlie's flash target equals the primary's").toBe(true);
    const shipped = linkBytes(s, primaries) - bytesBefore;
    // (With one primary agent the same links carry a's stamps too.)
    const written = stamps.writes.slice(writesBefore).filter((w) => primaries === 1 || w.volume === 'b').length * 4096;
    console.log(`preserve mirror (${primaries} primary agents): ${shipped} bytes on the links of b's primary agent (host writes meanwhile: ${written} bytes)`);
    // 40 MiB of b stayed home: what crossed is the host writes, the rounds' requests and the marker.
    expect(shipped).toBeLessThan(written + 8 * MiB);

    // Coordinated points in time of a and of b, at once, writes still going on.
    const [pitA, pitB] = await Promise.all([
      establish(alpha.flash, { name: 'pa', coordinated: true, backgroundCopy: false, pairs: [{ source: 'a', target: 'at', remoteTarget: 'ra' }] }),
      establish(bravo.flash, { name: 'pb', coordinated: true, backgroundCopy: false, pairs: [{ source: 'b', target: 'bp', remoteTarget: 'rb' }] }),
    ]);
    expect(pitA.pairs[0].reason ?? null).toBeNull();
    expect(pitB.pairs[0].reason ?? null).toBeNull();
    expect(alpha.flash.get('pa').pairs[0].reason ?? null).toBeNull();
    expect(bravo.flash.get('pb').pairs[0].reason ?? null).toBeNull();
    expect(charlie.flash.get('pa').pairs.map((pair) => [pair.source, pair.target])).toEqual([['a2', 'ra']]);
    expect(charlie.flash.get('pb').pairs.map((pair) => [pair.source, pair.target])).toEqual([['b2', 'rb']]);
    // The stamps each target holds are one point of the writes, and the remote target holds the same.
    expect(await stamps.stampsOf(s.charlie.engine.device('ra'))).toEqual(await stamps.stampsOf(s.alpha.engine.device('at')));
    expect(await stamps.stampsOf(s.charlie.engine.device('rb'))).toEqual(await stamps.stampsOf(holder.engine.device('bp')));
    expect(await same(s.alpha, 'at', s.charlie, 'ra'), 'ra equals alpha at').toBe(true);
    expect(await same(holder, 'bp', s.charlie, 'rb'), 'rb equals bp').toBe(true);
    expect(await same(holder, 'bp', holder, 'b')).toBe(false); // b moved on after the point in time

    // A marker the secondary loses: it is never run there, the marks stay and the resync ships them.
    charlie.site.faults.loseFlashMirror.add('perform');
    const lost = await establish(bravo.flash, { name: 'pl', pairs: [{ source: 'b', target: 'bl' }], preserveMirror: true, backgroundCopy: false });
    expect(bravo.flash.get('pl').pairs[0].mirror).toBe('shipped');
    expect(lost.pairs.length).toBe(1);
    charlie.site.faults.loseFlashMirror.clear();
    await bravo.flash.withdraw('pl', { finishCopy: false });
    // The shipped tracks are copied; b's copy sets are duplex again (a preserved flash needs them so).
    await waitFor(() => holder.replication.service.session('mp').state === 'prepared' && marksOf('bl') === 0, 60_000, 'bl shipped, duplex again');
    // A marker the secondary refuses (a flash session of that name exists there): the reason is recorded, the marks ship.
    await establish(charlie.flash, { name: 'px', pairs: [{ source: 'spare', target: 'spare2' }], backgroundCopy: false });
    await establish(bravo.flash, { name: 'px', pairs: [{ source: 'b', target: 'bl' }], preserveMirror: true, backgroundCopy: false });
    expect(bravo.flash.get('px').pairs[0].mirror).toBe('shipped');
    expect(bravo.flash.get('px').pairs[0].reason).toMatch(/already exists/);
    expect(charlie.flash.get('px').pairs.map((pair) => pair.target)).toEqual(['spare2']);

    await writer.stop();
    const last = stamps.writes.at(-1)!.ackedAt;
    await waitFor(() => {
      const time = controlAgent.consistencyTime(controlAgent.session('mp'));
      return controlAgent.session('mp').state === 'prepared' && time !== null && Date.parse(time) > last;
    }, 60_000, 'caught up');
    await waitFor(() => outOfSync(holder) === 0 && outOfSync(s.alpha) === 0, 60_000, 'marks cleared at both primaries');
    for (const [primary, volume, secondary] of [
      [s.alpha, 'a', 'a2'],
      [holder, 'b', 'b2'],
      [holder, 'bt', 'bt2'],
      [holder, 'bl', 'bl2'],
    ] as const) {
      expect(await same(primary, volume, s.charlie, secondary), `${volume} equals ${secondary}`).toBe(true);
    }
    expect(await same(holder, 'bl', holder, 'bt')).toBe(false); // two points in time of b
  }, 300_000);
});

describe('flash copy of mirrored volumes in a multi-primary async session', () => {

  it('a marker whose part is dropped (the member suspends before the round is cut) is never performed at the secondary; the marks ship on resume', async () => {
    const s = (sites = await startThreeSites());
    const [, bravo, charlie] = [withFlash(s.alpha), withFlash(s.bravo), withFlash(s.charlie)];
    await s.alpha.engine.createVolume('a', 16 * MiB);
    for (const name of ['b', 'bt']) await s.bravo.engine.createVolume(name, 16 * MiB);
    for (const name of ['a2', 'b2', 'bt2']) await s.charlie.engine.createVolume(name, 16 * MiB);
    await fill(bravo.exports.openExport('b'), 0, 128);
    const controlAgent = s.alpha.replication.service;
    await controlAgent.createSession('mp', 'async', 'charlie');
    await controlAgent.addPair('mp', 'a', 'a2');
    await controlAgent.addPair('mp', 'b', 'b2', { primaryAgent: 'bravo' });
    await controlAgent.addPair('mp', 'bt', 'bt2', { primaryAgent: 'bravo' });
    await controlAgent.act('mp', 'start');
    const member = s.bravo.replication.service;
    const marks = () => member.info(member.session('mp')).pairs.reduce((sum, p) => sum + p.outOfSyncTracks, 0);
    await waitFor(() => controlAgent.session('mp').state === 'prepared' && s.charlie.replication.service.session('mp').state === 'prepared', 120_000, 'prepared');
    await waitFor(() => marks() === 0, 60_000, 'initial copy done');

    // Charlie applies nothing, so the control agent cuts no further round: the marker stays in bravo's open part.
    const release = await s.charlie.replication.service.applier.freeze(s.charlie.replication.service.session('mp').id);
    let frozen = true;
    try {
      const establishing = establish(bravo.flash, { name: 'pd', pairs: [{ source: 'b', target: 'bt' }], preserveMirror: true, backgroundCopy: false });
      establishing.catch(() => {});
      await waitFor(() => bravo.flash.list().some((info) => info.name === 'pd' && info.holdMs !== null), 20_000, 'the flash done at bravo');
      await bravo.exports.openExport('b').write(3 * TRACK, randomBytes(TRACK));
      // bravo stops mirroring: its open part (with the marker) is dropped.
      await member.mirroring.suspendSession(member.session('mp'), 'test: bravo stops', new ProblemError('link-down', 'test: bravo stops'));
      const info = await establishing;
      expect(info.pairs[0].mirror).toBe('shipped');
      expect(bravo.flash.get('pd').pairs[0].mirror).toBe('shipped');
      expect(marks(), "bt's changed tracks stay marked").toBeGreaterThan(0);
      release();
      frozen = false;
    } finally {
      if (frozen) release();
    }
    // The marker never reached charlie, and the primary's cancel makes sure no late copy of it would run.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(charlie.flash.list().map((info) => info.name)).not.toContain('pd');
    // The control agent suspends (bravo refuses its hold) and resumes by itself; the resync ships bt's marked tracks.
    await waitFor(() => controlAgent.session('mp').state === 'prepared' && member.session('mp').state === 'prepared' && marks() === 0, 120_000, 'resumed and shipped');
    expect(await same(s.bravo, 'bt', s.charlie, 'bt2'), 'bt equals bt2').toBe(true);
    expect(await same(s.bravo, 'b', s.charlie, 'b2'), 'b equals b2').toBe(true);
    expect(await same(s.bravo, 'bt', s.bravo, 'b')).toBe(false);
  }, 300_000);
});
