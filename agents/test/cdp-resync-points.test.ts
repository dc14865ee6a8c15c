import { afterEach, describe, expect, it } from 'vitest';
import type { JournalPoint } from '@tandem/contract';
import { readAll, startTwoSites, waitFor, type TwoSites } from './helpers/replication-sites.ts';

/**
 * The journal across a resync (issue 13): a resync copies marked tracks in
 * track order, so the replica is no consistent image until the session is
 * duplex again. The secondary bookmarks the replica before the resync
 * (`before-resync-TIME`) and makes no point until the source reports the
 * session prepared. Two sites in one process, real sockets.
 */

const MiB = 1024 * 1024;
const TRACK = 65536;

let sites: TwoSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

/** The image of the journal at `seq`, read whole through its NBD export device. */
async function imageBytes(s: TwoSites, seq: number): Promise<Buffer> {
  const journals = s.h2.replication.service.journals;
  const info = journals.openImage('s1', { seq });
  try {
    const device = journals.exports(s.h2.engine.exports).openExport(info.exports[0].export);
    const bytes = Buffer.alloc(device.sizeBytes);
    await device.readInto(0, bytes);
    return bytes;
  } finally {
    await journals.endImage('s1', info.id);
  }
}

describe('the journal across a resync', () => {
  it('sync: a bookmark of the replica before the resync, equal to it; no point while the resync runs, even when it stalls halfway', async () => {
    sites = await startTwoSites();
    const s = sites;
    const service = s.h1.replication.service;
    const journals = s.h2.replication.service.journals;
    await s.h1.engine.createVolume('prod', 8 * MiB);
    await s.h2.engine.createVolume('copy', 8 * MiB);
    await service.createSession('s1', 'sync', 'beta');
    await service.addPair('s1', 'prod', 'copy');
    await service.act('s1', 'start');
    await waitFor(() => service.session('s1').state === 'prepared', 30_000, 'prepared');
    const device = s.h1.replication.exports.openExport('prod');
    await device.write(0, Buffer.alloc(MiB, 0x41));
    await journals.set('s1', { budgetBytes: 256 * MiB, requiredWindowSeconds: 3600 });
    await device.write(MiB, Buffer.alloc(64 * 1024, 0x42));
    await waitFor(() => journals.points('s1', 0).points.length >= 2, 20_000, 'a point of the write after the journal was on');

    // Suspended: 48 tracks written at the primary are marked for the resync.
    await service.act('s1', 'suspend');
    await waitFor(() => s.h2.replication.service.session('s1').state === 'suspended', 20_000, 'suspended at beta');
    await device.write(2 * MiB, Buffer.alloc(48 * TRACK, 0x43));
    const before = await readAll(s.h2, 'copy');

    // The resync stalls halfway: 8 track copies arrive, the rest wait 2.5 s (two ticks of the point timer with records in).
    const target = s.h2.replication.service.target;
    const handle = target.handle.bind(target);
    let copies = 0;
    let stalled: Promise<void> | null = null;
    target.handle = (request) => {
      if (request.method === 'pair.write' && ++copies > 8) {
        stalled ??= new Promise((resolve) => setTimeout(resolve, 2500));
        return stalled.then(() => handle(request));
      }
      return handle(request);
    };
    await service.act('s1', 'resume');
    await waitFor(() => service.session('s1').state === 'prepared', 60_000, 'prepared after the resync');
    expect(copies).toBeGreaterThan(8);
    const after = await readAll(s.h1, 'prod');
    await waitFor(() => s.h2.replication.service.session('s1').state === 'prepared', 20_000, 'prepared at beta');

    // The bookmark before the resync: the replica as it was suspended.
    const points = (): JournalPoint[] => journals.points('s1', 0).points;
    const bookmark = points().find((point) => point.bookmark?.startsWith('before-resync-'));
    expect(bookmark, JSON.stringify(points())).toBeDefined();
    expect((await imageBytes(s, bookmark!.seq)).equals(before)).toBe(true);
    // Once duplex, points come again (the last resync records), and every point after the bookmark is the resynced image.
    await waitFor(() => points().some((point) => point.seq > bookmark!.seq), 20_000, 'a point after the resync');
    for (const point of points().filter((each) => each.seq > bookmark!.seq)) {
      expect((await imageBytes(s, point.seq)).equals(after), `point ${point.seq} is the image after the resync`).toBe(true);
    }
    // A bookmark is recorded as an event, marked automatic.
    const events = s.h2.engine.catalog.listEvents(0, 1000, { type: ['session.bookmark'] });
    expect(events.some((event) => event.data?.automatic === 'before-resync')).toBe(true);
  }, 120_000);
});
